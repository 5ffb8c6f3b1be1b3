#include "run_coro.hpp"
#include <preflight/clients/http_balance_source.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::clients::http_balance_config;
using preflight::clients::http_balance_source;
using preflight::server::http_request;
using preflight::server::http_response;
using preflight::server::json_response;

// A local Beast billing provider that answers by org id: allowed, blocked, 500, slowly, never, garbage.
class fake_provider {
public:
    fake_provider() {
        server_ = std::make_shared<preflight::server::http_server>(
            ctx_,
            preflight::server::http_server_config{.port = 0},
            [this](http_request req) -> asio::awaitable<http_response> {
                ++calls_;
                {
                    std::lock_guard lock(mutex_);
                    last_auth_ = std::string(req[boost::beast::http::field::authorization]);
                }
                const auto target = std::string(req.target());
                const auto org = target.substr(target.rfind('/') + 1);
                if (org == "org_allowed") co_return json_response(200, R"({"allowed":true,"remaining":41})");
                if (org == "org_blocked") {
                    co_return json_response(200, R"({"allowed":false,"remaining":0,"reason":"plan exhausted"})");
                }
                if (org == "org_500") co_return json_response(500, R"({"error":"boom"})");
                if (org == "org_garbage") co_return json_response(200, "not json");
                if (org == "org_slow" || org == "org_never") {
                    asio::steady_timer t(co_await asio::this_coro::executor, org == "org_slow" ? 1s : 30s);
                    co_await t.async_wait(asio::use_awaitable);
                    co_return json_response(200, R"({"allowed":true})");
                }
                if (org == "a%2Fb%20c") co_return json_response(200, R"({"allowed":true,"remaining":1})");
                co_return json_response(404, R"({"error":"unknown customer"})");
            }
        );
        server_->start();
        thread_ = std::thread([this] { ctx_.run(); });
    }
    ~fake_provider() {
        asio::post(ctx_, [this] { server_->stop([] {}); });
        ctx_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return server_->port(); }
    int calls() const { return calls_.load(); }
    std::string last_auth() const {
        std::lock_guard lock(mutex_);
        return last_auth_;
    }

private:
    asio::io_context ctx_;
    std::shared_ptr<preflight::server::http_server> server_;
    std::thread thread_;
    std::atomic<int> calls_{0};
    mutable std::mutex mutex_;
    std::string last_auth_;
};

class http_balance_test : public ::testing::Test {
protected:
    http_balance_config config() {
        http_balance_config c;
        c.port = provider_.port();
        c.api_key = "sk_test_123";
        c.timeout = 300ms;
        return c;
    }
    preflight::result<preflight::clients::balance_outcome> check(http_balance_source& src, std::string org) {
        return preflight::test::run_coro(ctx_, src.check(std::move(org)));
    }

    fake_provider provider_;
    asio::io_context ctx_;
};

TEST_F(http_balance_test, allowed_and_blocked_with_keep_alive_reuse) {
    http_balance_source src(ctx_.get_executor(), config());
    auto ok = check(src, "org_allowed");
    ASSERT_TRUE(ok.has_value()) << ok.error().message();
    EXPECT_TRUE(ok->allowed);
    EXPECT_EQ(ok->remaining, 41);
    auto blocked = check(src, "org_blocked");
    ASSERT_TRUE(blocked.has_value());
    EXPECT_FALSE(blocked->allowed);
    EXPECT_EQ(blocked->reason, "plan exhausted");
    EXPECT_EQ(src.connections_opened(), 1u);  // the second call reused the connection
    EXPECT_EQ(src.idle_connections(), 1u);
    EXPECT_EQ(provider_.last_auth(), "Bearer sk_test_123");
}

TEST_F(http_balance_test, failures_are_typed) {
    http_balance_source src(ctx_.get_executor(), config());
    EXPECT_EQ(check(src, "org_500").error(), errc::store_unavailable);
    EXPECT_EQ(check(src, "org_unknown").error(), errc::not_found);
    EXPECT_EQ(check(src, "org_garbage").error(), errc::protocol_error);
}

TEST_F(http_balance_test, slow_and_silent_providers_time_out_within_budget) {
    http_balance_source src(ctx_.get_executor(), config());
    // The provider answers after 1 s / 30 s; the 300 ms budget turns both into timeouts, not answers.
    EXPECT_EQ(check(src, "org_slow").error(), errc::timeout);
    EXPECT_EQ(check(src, "org_never").error(), errc::timeout);
    EXPECT_EQ(src.idle_connections(), 0u);  // timed-out connections are never reused
}

TEST_F(http_balance_test, nothing_listening_is_store_unavailable) {
    asio::ip::tcp::acceptor probe(ctx_, {asio::ip::make_address("127.0.0.1"), 0});
    auto c = config();
    c.port = probe.local_endpoint().port();
    probe.close();  // the port is now closed: connection refused
    http_balance_source src(ctx_.get_executor(), c);
    EXPECT_EQ(check(src, "org_allowed").error(), errc::store_unavailable);
}

TEST_F(http_balance_test, org_id_is_url_encoded) {
    http_balance_source src(ctx_.get_executor(), config());
    auto r = check(src, "a/b c");
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->remaining, 1);
    EXPECT_EQ(preflight::clients::url_encode_segment("a/b c~ü"), "a%2Fb%20c~%C3%BC");
}

}  // namespace
