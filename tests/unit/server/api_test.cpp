// Every endpoint of preflightd's API over a real loopback socket, with a pipeline built in the test:
// ban (403), usage (402), a stateful per-user limiter (429, write bucket of 2, cancel exempt), a gate that
// fails closed (503), and a commit gate that grants leases.
#include <preflight/gates/pipeline.hpp>
#include <preflight/server/api.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace g = preflight::gates;
namespace json = boost::json;
using preflight::server::api;
using preflight::server::api_params;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using response = http::response<http::string_body>;

struct shared_state {
    std::mutex mutex;
    std::map<std::string, int> consumed;  // per user, by the "rate" gate
    std::atomic<int> leases{0};
    std::atomic<int> releases{0};
    std::atomic<int> renewals{0};
};

g::pipeline make_pipeline(std::shared_ptr<shared_state> st) {
    g::pipeline_builder b;
    g::gate_spec ban;
    ban.name = "ban";
    ban.check = [](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        if (ctx.req().subject.user == "banned") {
            co_return g::verdict::deny(g::denial{403, "banned", "user is banned", std::nullopt, std::nullopt});
        }
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(ban));
    g::gate_spec usage;
    usage.name = "usage";
    usage.check = [](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        if (ctx.req().subject.org == "org_over") {
            co_return g::verdict::deny(g::denial{402, "usage_limit_exceeded", "usage", std::nullopt, std::nullopt});
        }
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(usage));
    g::gate_spec billing;
    billing.name = "billing";
    billing.check = [](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        if (ctx.req().subject.org == "org_down") co_return make_error_code(preflight::errc::store_unavailable);
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(billing));
    g::gate_spec rate;
    rate.name = "rate";
    rate.phase = g::phase::stateful;
    rate.check = [st](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        std::lock_guard lock(st->mutex);
        int& n = st->consumed[ctx.req().subject.user];
        if (n >= 2) {
            g::limiter_info info{2, 0, std::chrono::seconds{2}, std::chrono::seconds{2}};
            co_return g::verdict::deny(g::denial{429, "rate_limited", "slow down", 1500ms, info});
        }
        ++n;
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(rate));
    g::gate_spec admission;
    admission.name = "admission";
    admission.phase = g::phase::commit;
    admission.check = [st](g::gate_context&) -> asio::awaitable<preflight::result<g::verdict>> {
        std::string id = "lease-" + std::to_string(++st->leases);
        g::release_function release = [st]() -> asio::awaitable<preflight::result<void>> {
            ++st->releases;
            co_return preflight::result<void>{};
        };
        g::renew_function renew = [st]() -> asio::awaitable<preflight::result<bool>> {
            ++st->renewals;
            co_return true;
        };
        co_return g::verdict::pass_with_lease(
            std::move(id), std::move(release), g::lease_hooks{std::move(renew), {}, {}}
        );
    };
    b.add_gate(std::move(admission));
    return b.build();
}

class api_test : public ::testing::Test {
protected:
    void start(api_params params = {}) {
        preflight::server::http_server_config cfg;
        cfg.port = 0;
        api_ = std::make_unique<api>(make_pipeline(state_), std::move(params));
        server_ = std::make_shared<preflight::server::http_server>(ctx_, cfg, api_->handler());
        api_->attach(*server_);
        server_->start();
        for (int i = 0; i < 2; ++i) runners_.emplace_back([this] { ctx_.run(); });
    }

    void TearDown() override {
        if (server_) {
            std::promise<void> drained;
            server_->stop([&] { drained.set_value(); });
            EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
        }
        ctx_.stop();
        for (auto& t : runners_) t.join();
        api_.reset();
        server_.reset();
    }

    response send(http::verb verb, std::string target, std::string body = {}) {
        if (!client_) {
            client_.emplace(client_ctx_);
            client_->connect({asio::ip::make_address("127.0.0.1"), server_->port()});
        }
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "localhost");
        if (!body.empty()) req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
        http::write(*client_, req);
        boost::beast::flat_buffer buf;
        response res;
        http::read(*client_, buf, res);
        if (!res.keep_alive()) client_.reset();
        return res;
    }

    response preflight(std::string body) { return send(http::verb::post, "/v1/preflight", std::move(body)); }

    static json::object body_of(const response& r) { return json::parse(r.body()).as_object(); }

    // A 400 naming `field`, whose message contains `needle`.
    void expect_bad(const std::string& body, const std::string& field, const std::string& needle) {
        auto res = preflight(body);
        ASSERT_EQ(res.result_int(), 400) << body << " -> " << res.body();
        auto err = body_of(res).at("error").as_object();
        EXPECT_EQ(err.at("code"), "bad_request");
        EXPECT_EQ(err.at("field"), json::value(field)) << body;
        EXPECT_NE(std::string(err.at("message").as_string()).find(needle), std::string::npos)
            << body << " -> " << err.at("message");
    }

    std::shared_ptr<shared_state> state_ = std::make_shared<shared_state>();
    asio::io_context ctx_;
    asio::io_context client_ctx_;
    std::optional<tcp::socket> client_;
    std::unique_ptr<api> api_;
    std::shared_ptr<preflight::server::http_server> server_;
    std::vector<std::thread> runners_;
};

TEST_F(api_test, allowed_request_gets_200_with_lease_and_trace) {
    start();
    auto res = preflight(R"({"operation":"execute","subject":{"user":"u1","org":"org_1"},"extension":{"k":1}})");
    ASSERT_EQ(res.result_int(), 200) << res.body();
    EXPECT_EQ(res[http::field::content_type], "application/json");
    auto b = body_of(res);
    EXPECT_EQ(b.at("allowed"), true);
    EXPECT_EQ(b.at("lease_id"), "lease-1");
    const auto& trace = b.at("trace").as_array();
    ASSERT_EQ(trace.size(), 5u);
    EXPECT_EQ(trace[0].at("gate"), "ban");
    EXPECT_EQ(trace[0].at("outcome"), "pass");
    EXPECT_EQ(trace[4].at("gate"), "admission");
    EXPECT_EQ(api_->leases().held(), 1u);
}

// A batch is answered in order, each item as POST /v1/preflight would have answered it, one after another (the
// third execute of u3 meets the write bucket of 2 that the first two drained).
TEST_F(api_test, batch_answers_every_item_in_order) {
    start();
    const std::string item = R"({"operation":"execute","subject":{"user":"u3","org":"org_1"}})";
    auto res = send(
        http::verb::post,
        "/v1/preflight/batch",
        R"({"requests":[)" + item + "," + item + "," + item +
            R"(,{"operation":"execute","subject":{"user":"banned","org":"org_1"}}]})"
    );
    ASSERT_EQ(res.result_int(), 200) << res.body();
    const auto results = body_of(res).at("results").as_array();
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[0].at("status"), 200);
    EXPECT_EQ(results[0].at("body").at("allowed"), true);
    EXPECT_TRUE(results[0].at("body").as_object().contains("lease_id"));
    EXPECT_EQ(results[1].at("status"), 200);
    EXPECT_EQ(results[2].at("status"), 429);
    EXPECT_EQ(results[2].at("body").at("error").at("code"), "rate_limited");
    EXPECT_EQ(results[2].at("body").at("error").at("retry_after_ms"), 1500);
    EXPECT_EQ(results[3].at("status"), 403);
    EXPECT_EQ(results[3].at("body").at("decision").at("allowed"), false);
    EXPECT_EQ(api_->leases().held(), 2u);  // the two allowed items' leases are in the registry
    EXPECT_EQ(api_->stats().batch_requests.load(), 1u);
    EXPECT_EQ(api_->stats().preflight_requests.load(), 4u);
    // A lease from a batch is released like any other.
    const std::string id(results[0].at("body").at("lease_id").as_string());
    EXPECT_EQ(send(http::verb::post, "/v1/leases/" + id + "/release").result_int(), 200);
    EXPECT_EQ(api_->leases().held(), 1u);
}

TEST_F(api_test, batch_refuses_malformed_items_and_too_many_and_runs_none) {
    start();
    const auto expect = [&](const std::string& body, int status, const std::string& field) {
        auto res = send(http::verb::post, "/v1/preflight/batch", body);
        ASSERT_EQ(res.result_int(), status) << body << " -> " << res.body();
        EXPECT_EQ(body_of(res).at("error").at("field"), json::value(field)) << body;
    };
    const std::string good = R"({"operation":"execute","subject":{"user":"u4"}})";
    expect(R"({"requests":[)" + good + R"(,{"operation":"fly"}]})", 400, "requests[1].operation");
    expect(
        R"({"requests":[)" + good + R"(,{"operation":"read","subject":{"nick":"x"}}]})", 400, "requests[1].subject.nick"
    );
    expect(R"({"requests":[)" + good + R"(,7]})", 400, "requests[1]");
    expect(R"({"requests":[]})", 400, "requests");
    expect(R"({"requests":{}})", 400, "requests");
    expect(R"({"items":[]})", 400, "items");
    expect(R"([1])", 400, "");
    std::string many = R"({"requests":[)";
    for (int i = 0; i < 65; ++i) many += (i == 0 ? "" : ",") + good;
    many += "]}";
    expect(many, 413, "requests");
    EXPECT_EQ(
        body_of(send(http::verb::post, "/v1/preflight/batch", many)).at("error").at("code"),
        "too_many_requests_in_batch"
    );
    EXPECT_EQ(api_->stats().preflight_requests.load(), 0u);  // nothing of a refused batch ran
    EXPECT_EQ(api_->leases().held(), 0u);
    EXPECT_EQ(send(http::verb::get, "/v1/preflight/batch").result_int(), 405);
}

TEST_F(api_test, denials_carry_status_error_body_and_trace) {
    start();
    auto banned = preflight(R"({"operation":"execute","subject":{"user":"banned","org":"org_over"}})");
    EXPECT_EQ(banned.result_int(), 403);  // ban wins over usage
    auto b = body_of(banned);
    EXPECT_EQ(b.at("error").at("code"), "banned");
    EXPECT_EQ(b.at("error").at("gate"), "ban");
    EXPECT_EQ(b.at("decision").at("allowed"), false);
    EXPECT_EQ(b.at("decision").at("trace").as_array().size(), 5u);
    EXPECT_EQ(banned.count(http::field::retry_after), 0u);

    auto over = preflight(R"({"operation":"execute","subject":{"user":"u2","org":"org_over"}})");
    EXPECT_EQ(over.result_int(), 402);
    EXPECT_EQ(body_of(over).at("error").at("code"), "usage_limit_exceeded");

    auto down = preflight(R"({"operation":"execute","subject":{"user":"u2","org":"org_down"}})");
    EXPECT_EQ(down.result_int(), 503);
    EXPECT_EQ(body_of(down).at("error").at("gate"), "billing");
    EXPECT_EQ(state_->leases.load(), 0);
}

TEST_F(api_test, burst_reaches_429_with_retry_after_and_ratelimit_fields_cancel_and_resume_pass) {
    start();
    const std::string exec = R"({"operation":"execute","subject":{"user":"burst","org":"org_1"}})";
    EXPECT_EQ(preflight(exec).result_int(), 200);
    EXPECT_EQ(preflight(exec).result_int(), 200);
    auto limited = preflight(exec);
    ASSERT_EQ(limited.result_int(), 429);
    EXPECT_EQ(limited[http::field::retry_after], "2");  // 1.5 s rounded up
    EXPECT_EQ(limited["RateLimit-Policy"], R"("rate";q=2;w=2)");
    EXPECT_EQ(limited["RateLimit"], R"("rate";r=0;t=2)");
    auto b = body_of(limited);
    EXPECT_EQ(b.at("error").at("code"), "rate_limited");
    EXPECT_EQ(b.at("error").at("retry_after_ms"), 1500);

    // Cancel is not gated by the write bucket; resume is never gated.
    auto cancel = preflight(R"({"operation":"cancel","subject":{"user":"burst","org":"org_1"}})");
    EXPECT_EQ(cancel.result_int(), 200) << cancel.body();
    auto resume = preflight(R"({"operation":"resume","subject":{"user":"banned","org":"org_over"}})");
    EXPECT_EQ(resume.result_int(), 200) << resume.body();
    const auto resumed = body_of(resume);
    for (const auto& t : resumed.at("trace").as_array()) EXPECT_EQ(t.at("outcome"), "skipped");
}

TEST_F(api_test, every_bad_input_is_400_naming_the_field) {
    start();
    expect_bad(R"({"operation":"execute",)", "", "malformed JSON");
    expect_bad("", "", "malformed JSON");
    expect_bad(R"([1,2])", "", "must be a JSON object");
    expect_bad(R"({"subject":{"user":"u"}})", "operation", "operation is required");
    expect_bad(R"({"operation":"explode"})", "operation", "\"explode\"");
    expect_bad(R"({"operation":7})", "operation", "must be a string");
    expect_bad(R"({"operation":"execute","tenant":"x"})", "tenant", "unknown field \"tenant\"");
    expect_bad(R"({"operation":"execute","subject":"u1"})", "subject", "must be an object");
    expect_bad(R"({"operation":"execute","subject":{"name":"u1"}})", "subject.name", "unknown field");
    expect_bad(R"({"operation":"execute","subject":{"org":42}})", "subject.org", "must be a string");
    expect_bad(
        R"({"operation":"execute","subject":{"user":")" + std::string(300, 'x') + R"("}})",
        "subject.user",
        "longer than 256"
    );
    expect_bad(R"({"operation":"execute","extension":[1]})", "extension", "must be an object");
    expect_bad(R"({"operation":"execute","extension":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{}}}}}}}}})", "", "deeper");
    EXPECT_EQ(api_->stats().invalid_requests.load(), 13u);
    EXPECT_EQ(state_->leases.load(), 0);  // no bad request reached the pipeline

    // Over the body limit (64 KiB): 413 from the HTTP layer as soon as the header announces it, then the
    // connection is closed. (No body is sent, so the close cannot reset unread data.)
    {
        tcp::socket s(client_ctx_);
        s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
        asio::write(
            s,
            asio::buffer(std::string("POST /v1/preflight HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                     "application/json\r\nContent-Length: 70000\r\n\r\n"))
        );
        boost::beast::flat_buffer buf;
        response big;
        http::read(s, buf, big);
        EXPECT_EQ(big.result_int(), 413);
        EXPECT_FALSE(big.keep_alive());
    }
    // The server keeps serving.
    EXPECT_EQ(preflight(R"({"operation":"read"})").result_int(), 200);
}

TEST_F(api_test, lease_release_takes_what_the_execution_used_and_refuses_a_bad_body) {
    start();
    auto ok = preflight(R"({"operation":"execute","subject":{"user":"u1","org":"org_1"}})");
    ASSERT_EQ(ok.result_int(), 200) << ok.body();
    const std::string id(body_of(ok).at("lease_id").as_string());
    for (const char* bad : {R"({"used":-1})", R"({"used":"3"})", R"({"spent":3})", "[1]", "{"}) {
        auto res = send(http::verb::post, "/v1/leases/" + id + "/release", bad);
        EXPECT_EQ(res.result_int(), 400) << bad;
    }
    EXPECT_EQ(state_->releases.load(), 0) << "a refused body releases nothing";
    auto res = send(http::verb::post, "/v1/leases/" + id + "/release", R"({"used":3,"tokens":1200})");
    EXPECT_EQ(res.result_int(), 200) << res.body();
    EXPECT_EQ(state_->releases.load(), 1);
}

TEST_F(api_test, lease_renew_is_200_then_409_once_released_and_404_when_unknown) {
    start();
    auto ok = preflight(R"({"operation":"execute","subject":{"user":"u1","org":"org_1"}})");
    ASSERT_EQ(ok.result_int(), 200) << ok.body();
    const std::string id(body_of(ok).at("lease_id").as_string());
    auto renewed = send(http::verb::post, "/v1/leases/" + id + "/renew");
    EXPECT_EQ(renewed.result_int(), 200);
    EXPECT_EQ(body_of(renewed).at("renewed"), true);
    EXPECT_EQ(body_of(renewed).at("ttl_ms"), 300000);
    EXPECT_EQ(state_->renewals.load(), 1);
    EXPECT_EQ(send(http::verb::get, "/v1/leases/" + id + "/renew").result_int(), 405);
    ASSERT_EQ(send(http::verb::post, "/v1/leases/" + id + "/release").result_int(), 200);
    auto after = send(http::verb::post, "/v1/leases/" + id + "/renew");
    EXPECT_EQ(after.result_int(), 409);
    EXPECT_EQ(body_of(after).at("error").at("code"), "lease_released");
    EXPECT_EQ(send(http::verb::post, "/v1/leases/nope/renew").result_int(), 404);
    EXPECT_EQ(state_->renewals.load(), 1);
}

TEST_F(api_test, lease_release_is_200_then_idempotent_and_404_when_unknown) {
    start();
    auto res = preflight(R"({"operation":"execute","subject":{"user":"u1"}})");
    const std::string id(body_of(res).at("lease_id").as_string());
    auto first = send(http::verb::post, "/v1/leases/" + id + "/release");
    EXPECT_EQ(first.result_int(), 200);
    EXPECT_EQ(body_of(first).at("released"), true);
    EXPECT_EQ(state_->releases.load(), 1);
    EXPECT_EQ(api_->leases().held(), 0u);
    auto again = send(http::verb::post, "/v1/leases/" + id + "/release");
    EXPECT_EQ(again.result_int(), 200);
    EXPECT_EQ(body_of(again).at("already_released"), true);
    EXPECT_EQ(state_->releases.load(), 1);  // the store saw one release
    auto unknown = send(http::verb::post, "/v1/leases/nope/release");
    EXPECT_EQ(unknown.result_int(), 404);
    EXPECT_EQ(body_of(unknown).at("error").at("code"), "lease_not_found");
    auto wrong_method = send(http::verb::get, "/v1/leases/" + id + "/release");
    EXPECT_EQ(wrong_method.result_int(), 405);
    EXPECT_EQ(wrong_method[http::field::allow], "POST");
}

TEST_F(api_test, full_lease_registry_refuses_with_503_and_gives_the_slot_back) {
    api_params p;
    p.max_leases = 1;
    start(std::move(p));
    EXPECT_EQ(preflight(R"({"operation":"execute","subject":{"user":"a"}})").result_int(), 200);
    auto full = preflight(R"({"operation":"execute","subject":{"user":"b"}})");
    EXPECT_EQ(full.result_int(), 503);
    EXPECT_EQ(body_of(full).at("error").at("code"), "lease_registry_full");
    EXPECT_EQ(state_->leases.load(), 2);
    EXPECT_EQ(state_->releases.load(), 1);  // the second lease was released at once
    EXPECT_EQ(api_->stats().lease_registry_full.load(), 1u);
}

TEST_F(api_test, healthz_reports_the_health_check) {
    auto healthy = std::make_shared<std::atomic<bool>>(true);
    api_params p;
    p.health = [healthy]() -> asio::awaitable<preflight::result<void>> {
        if (!healthy->load()) co_return make_error_code(preflight::errc::store_unavailable);
        co_return preflight::result<void>{};
    };
    start(std::move(p));
    auto ok = send(http::verb::get, "/healthz");
    EXPECT_EQ(ok.result_int(), 200);
    EXPECT_EQ(body_of(ok).at("status"), "ok");
    healthy->store(false);
    auto bad = send(http::verb::get, "/healthz");
    EXPECT_EQ(bad.result_int(), 503);
    EXPECT_EQ(body_of(bad).at("status"), "unavailable");
    EXPECT_EQ(body_of(bad).at("error"), json::value(make_error_code(preflight::errc::store_unavailable).message()));
}

TEST_F(api_test, metrics_expose_pipeline_server_and_lease_figures) {
    api_params p;
    p.extra_metrics = [] { return std::string("preflight_extra 7\n"); };
    start(std::move(p));
    EXPECT_EQ(preflight(R"({"operation":"execute","subject":{"user":"u1"}})").result_int(), 200);
    EXPECT_EQ(preflight(R"({"operation":"execute","subject":{"user":"banned"}})").result_int(), 403);
    EXPECT_EQ(preflight("{").result_int(), 400);
    auto m = send(http::verb::get, "/metrics");
    ASSERT_EQ(m.result_int(), 200);
    EXPECT_EQ(m[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
    const std::string& t = m.body();
    auto has = [&](const std::string& line) {
        EXPECT_NE(t.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << t;
    };
    has(R"(preflight_decisions_total{result="allow"} 1)");
    has(R"(preflight_decisions_total{result="deny"} 1)");
    has(R"(preflight_gate_outcomes_total{gate="ban",outcome="deny"} 1)");
    has("preflight_http_requests_total 4");  // this /metrics request included
    has("preflight_api_invalid_requests_total 1");
    has("preflight_leases_held 1");
    has("preflight_lease_registry_capacity 100000");
    has("preflight_extra 7");
}

TEST_F(api_test, config_endpoint_serves_the_effective_configuration) {
    preflight::config_registry reg;
    preflight::server::register_server_config(reg);
    preflight::config_inputs in;
    in.environment = std::vector<std::string>{};
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    in.args = {"--server-port=9", "--server-postgres-url=postgresql://u:pw@h/db"};
    api_params p;
    p.effective_config = preflight::config::resolve(reg, in).to_json();
    start(std::move(p));
    auto res = send(http::verb::get, "/v1/config");
    ASSERT_EQ(res.result_int(), 200);
    auto b = body_of(res);
    EXPECT_EQ(b.at("server.port").at("value"), 9);
    EXPECT_EQ(b.at("server.port").at("source"), "flag");
    EXPECT_EQ(b.at("server.postgres_url").at("value"), "***");
    EXPECT_EQ(b.at("server.listen").at("source"), "default");
    EXPECT_EQ(res.body().find("pw@"), std::string::npos);
}

TEST_F(api_test, unknown_paths_are_404_and_wrong_methods_405) {
    start();
    auto nf = send(http::verb::get, "/v2/nothing");
    EXPECT_EQ(nf.result_int(), 404);
    EXPECT_EQ(body_of(nf).at("error").at("code"), "not_found");
    EXPECT_EQ(send(http::verb::post, "/v1/leases//release").result_int(), 404);
    auto get_preflight = send(http::verb::get, "/v1/preflight");
    EXPECT_EQ(get_preflight.result_int(), 405);
    EXPECT_EQ(get_preflight[http::field::allow], "POST");
    EXPECT_EQ(send(http::verb::post, "/metrics").result_int(), 405);
    EXPECT_EQ(send(http::verb::delete_, "/healthz").result_int(), 405);
    EXPECT_EQ(send(http::verb::put, "/v1/config").result_int(), 405);
    // The query string does not change the route.
    EXPECT_EQ(send(http::verb::get, "/healthz?verbose=1").result_int(), 200);
}

TEST(command_line, short_flags_map_to_server_keys_and_config_is_taken_out) {
    const char* argv[] = {
        "preflightd",
        "--config",
        "f.json",
        "--listen=0.0.0.0",
        "--port",
        "9000",
        "--postgres",
        "postgresql://x",
        "--threads=2",
        "--data",
        "d.json",
        "--rate-limit-x=1"};
    auto cl = preflight::server::translate_command_line(12, argv);
    EXPECT_EQ(cl.config_file, "f.json");
    std::vector<std::string> want{
        "--server-listen=0.0.0.0",
        "--server-port",
        "9000",
        "--server-postgres-url",
        "postgresql://x",
        "--server-threads=2",
        "--server-data",
        "d.json",
        "--rate-limit-x=1"};
    EXPECT_EQ(cl.args, want);
    const char* missing[] = {"preflightd", "--config"};
    EXPECT_THROW((void)preflight::server::translate_command_line(2, missing), preflight::config_error);
}

}  // namespace
