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
using preflight::clients::http_balance_clients;
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

// ---- memoized clients (http_balance_clients) ---------------------------------------------------------------------

TEST_F(http_balance_test, one_client_per_credential_reused_with_its_connections) {
    http_balance_clients clients(ctx_.get_executor());
    auto a = clients.get(config());
    auto again = clients.get(config());
    ASSERT_EQ(a, again);  // same URL, same key: the memoized client
    EXPECT_EQ(clients.size(), 1u);
    ASSERT_TRUE(check(*a, "org_allowed").has_value());
    ASSERT_TRUE(check(*again, "org_blocked").has_value());
    EXPECT_EQ(a->connections_opened(), 1u);  // the second caller reused the first caller's keep-alive connection
    EXPECT_EQ(clients.stats().hits, 1u);
}

TEST_F(http_balance_test, distinct_client_per_credential) {
    http_balance_clients clients(ctx_.get_executor());
    auto c1 = config();
    auto c2 = config();
    c2.api_key = "sk_test_rotated";  // same URL, another secret (a rotated key)
    auto other_port = config();
    other_port.port = static_cast<std::uint16_t>(provider_.port() == 65535 ? 65534 : provider_.port() + 1);
    auto slower = config();
    slower.timeout = 900ms;  // same credential, other client settings
    auto a = clients.get(c1);
    auto b = clients.get(c2);
    EXPECT_NE(a, b);
    EXPECT_NE(clients.get(other_port), a);
    EXPECT_NE(clients.get(slower), a);
    EXPECT_EQ(clients.size(), 4u);
    ASSERT_TRUE(check(*a, "org_allowed").has_value());
    EXPECT_EQ(provider_.last_auth(), "Bearer sk_test_123");
    ASSERT_TRUE(check(*b, "org_allowed").has_value());
    EXPECT_EQ(provider_.last_auth(), "Bearer sk_test_rotated");  // each client sends its own key
    EXPECT_EQ(clients.get(c1), a);                               // the first key still has its client
}

TEST_F(http_balance_test, evicted_client_keeps_working_for_its_holder) {
    preflight::cache::client_memoizer_params p;
    p.capacity = 1;
    p.shards = 1;
    http_balance_clients clients(ctx_.get_executor(), p);
    auto held = clients.get(config());
    auto c2 = config();
    c2.api_key = "sk_other";
    auto other = clients.get(c2);  // evicts `held` from the memoizer
    EXPECT_EQ(clients.size(), 1u);
    EXPECT_NE(clients.get(config()), held);  // a new client now: the memoizer forgot the old one...
    auto r = check(*held, "org_allowed");    // ...but the holder's client is not closed
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(provider_.last_auth(), "Bearer sk_test_123");
}

TEST_F(http_balance_test, credentials_never_carry_the_secret) {
    auto creds = http_balance_clients::credentials_of(config());
    EXPECT_EQ(creds.base_url, "http://127.0.0.1:" + std::to_string(provider_.port()) + "/v1/balance/");
    EXPECT_EQ(creds.secret.reveal(), "sk_test_123");
    const auto key = preflight::cache::client_key::of(creds);
    EXPECT_EQ(key.str().find("sk_test_123"), std::string::npos);
    auto rotated = config();
    rotated.api_key = "sk_test_124";
    EXPECT_NE(preflight::cache::client_key::of(http_balance_clients::credentials_of(rotated)), key);
}

TEST(http_balance_url, parses_host_port_and_prefix) {
    using preflight::clients::parse_http_balance_url;
    auto c = parse_http_balance_url("http://billing.internal:9000/api/v2/balance");
    EXPECT_EQ(c.host, "billing.internal");
    EXPECT_EQ(c.port, 9000);
    EXPECT_EQ(c.path_prefix, "/api/v2/balance/");
    c = parse_http_balance_url("http://127.0.0.1");
    EXPECT_EQ(c.host, "127.0.0.1");
    EXPECT_EQ(c.port, 80);
    EXPECT_EQ(c.path_prefix, "/v1/balance/");
    c = parse_http_balance_url("http://[::1]:8081/");
    EXPECT_EQ(c.host, "::1");
    EXPECT_EQ(c.port, 8081);
    EXPECT_EQ(preflight::clients::http_balance_url(c), "http://[::1]:8081/v1/balance/");
    http_balance_config base;
    base.api_key = "k";
    base.timeout = 5s;
    c = parse_http_balance_url("http://h:1/b/", base);
    EXPECT_EQ(c.api_key, "k");  // other fields kept
    EXPECT_EQ(c.timeout, std::chrono::steady_clock::duration(5s));
}

TEST(http_balance_url, rejects_bad_urls_without_repeating_credentials) {
    using preflight::clients::parse_http_balance_url;
    for (const char* bad :
         {"https://h/",
          "ftp://h",
          "h:80",
          "http://",
          "http://:80/",
          "http://h:0/",
          "http://h:70000",
          "http://h:x/",
          "http://h:/",
          "http://h/?a=1",
          "http://[::1/",
          "http://::1/"}) {
        EXPECT_THROW((void)parse_http_balance_url(bad), std::invalid_argument) << bad;
    }
    try {
        (void)parse_http_balance_url("http://user:hunter2@h/");
        FAIL() << "credentials in the URL were accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
}

}  // namespace
