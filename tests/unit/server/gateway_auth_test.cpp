// GET/HEAD/POST /v1/auth (a gateway's authorisation subrequest), driven through `api::handle` without a socket:
// the subject and operation from X-Preflight-* headers, their validation (400 naming the header), the answers (200
// with no body and RateLimit fields; a denial's status, Retry-After, X-Preflight-Code/-Gate and a small JSON body), and
// a granted lease released before the answer (the admission store's slot is free again).
#include <preflight/gates/pipeline.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/server/api.hpp>
#include <preflight/server/gateway_auth.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <run_coro.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace g = preflight::gates;
namespace json = boost::json;
using preflight::server::http_request;
using preflight::server::http_response;
using preflight::server::request_error;
using namespace std::chrono_literals;

/// What the gateway test pipeline saw and holds.
struct gateway_state {
    std::atomic<int> runs{0};
    g::request last;  // the request of the last run (runs are sequential here)
    preflight::limits::memory_admission_store admissions;
};

/// ban (user "banned": 403), usage (org "org_over": 402), billing (org "org_down": fails closed, 503), a windowed
/// limiter (user "slow": 429 with a retry-after; a pass reports its figures), and a commit gate that takes one of ONE
/// admission slot per org from a memory store (org "org_release_fails": its release fails).
g::pipeline make_gateway_pipeline(std::shared_ptr<gateway_state> st) {
    g::pipeline_builder b;
    const std::vector<g::operation> all{g::operation::execute, g::operation::execute_with_pause, g::operation::read};
    g::gate_spec ban;
    ban.name = "ban";
    ban.operations = all;
    ban.check = [st](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        ++st->runs;
        st->last = ctx.req();
        if (ctx.req().subject.user == "banned") {
            co_return g::verdict::deny(g::denial{403, "banned", "subject 'banned' is banned", std::nullopt, {}});
        }
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(ban));
    g::gate_spec usage;
    usage.name = "usage";
    usage.check = [](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        if (ctx.req().subject.org == "org_over") {
            co_return g::verdict::deny(g::denial{402, "usage_limit_exceeded", "over the plan", std::nullopt, {}});
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
    rate.name = "rate_limit";
    rate.phase = g::phase::stateful;
    rate.operations = all;
    rate.check = [](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        if (ctx.req().subject.user == "slow") {
            g::limiter_info info{10, 0, std::chrono::seconds{20}, std::chrono::seconds{2}};
            co_return g::verdict::deny(g::denial{429, "rate_limited", "rate limit exceeded", 1500ms, info});
        }
        auto v = g::verdict::pass();
        v.set_limiter(g::limiter_info{10, 9, std::chrono::seconds{20}, std::chrono::seconds{1}});
        co_return v;
    };
    b.add_gate(std::move(rate));
    g::gate_spec admission;
    admission.name = "admission";
    admission.phase = g::phase::commit;
    admission.check = [st](g::gate_context& ctx) -> asio::awaitable<preflight::result<g::verdict>> {
        const std::string org = ctx.req().subject.org;
        auto grant = st->admissions.reserve_now("org:" + org, 1, 60s);
        if (!grant) co_return grant.error();
        if (!grant->admitted) {
            co_return g::verdict::deny(g::denial{429, "too_many_concurrent_executions", "busy", 1s, {}});
        }
        std::string id = grant->lease_id;
        g::release_function release = [st, id, org]() -> asio::awaitable<preflight::result<void>> {
            if (org == "org_release_fails") co_return make_error_code(preflight::errc::store_unavailable);
            (void)st->admissions.release_now(id);
            co_return preflight::result<void>{};
        };
        co_return g::verdict::pass_with_lease(std::move(id), std::move(release));
    };
    b.add_gate(std::move(admission));
    return b.build();
}

http_request auth_request(http::verb verb = http::verb::get, std::vector<std::pair<std::string, std::string>> h = {}) {
    http_request req{verb, "/v1/auth", 11};
    req.set(http::field::host, "localhost");
    for (auto& [name, value] : h) req.insert(name, value);
    return req;
}

std::string header_of(const http_response& res, std::string_view name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

class gateway_auth_test : public ::testing::Test {
protected:
    gateway_auth_test() : api_(make_gateway_pipeline(state_), {}) {}

    http_response handle(http_request req) { return preflight::test::run_coro(io_, api_.handle(std::move(req))); }

    std::size_t in_use(const std::string& org) const { return state_->admissions.in_use("org:" + org); }

    // Declared first: destroyed after the api (which holds the pipeline and its leases).
    asio::io_context io_;
    std::shared_ptr<gateway_state> state_ = std::make_shared<gateway_state>();
    preflight::server::api api_;
};

TEST(gateway_request_from_headers, maps_every_subject_header_and_the_operation) {
    auto req = auth_request(
        http::verb::post,
        {{"X-Preflight-User", "user_alice"},
         {"x-preflight-org", "org_acme"},  // names are case-insensitive
         {"X-PREFLIGHT-WORKSPACE", "ws_1"},
         {"X-Preflight-Ip", "203.0.113.7"},
         {"X-Preflight-Api-Key-Id", "key_9"},
         {"X-Preflight-Run-Id", "run-1"},
         {"X-Preflight-Request-Id", "req-1"},
         {"X-Preflight-Operation", "execute_with_pause"},
         {"X-User", "someone_else"}}  // not ours: ignored
    );
    req.body() = R"({"operation":"read","subject":{"user":"from_the_body"}})";  // the body is ignored
    req.prepare_payload();
    auto parsed = preflight::server::request_from_headers(req);
    ASSERT_TRUE(std::holds_alternative<g::request>(parsed)) << std::get<request_error>(parsed).message;
    const auto& r = std::get<g::request>(parsed);
    EXPECT_EQ(r.op, g::operation::execute_with_pause);
    EXPECT_EQ(r.subject.user, "user_alice");
    EXPECT_EQ(r.subject.org, "org_acme");
    EXPECT_EQ(r.subject.workspace, "ws_1");
    EXPECT_EQ(r.subject.ip, "203.0.113.7");
    EXPECT_EQ(r.subject.api_key_id, "key_9");
    EXPECT_EQ(r.subject.run_id, "run-1");
    EXPECT_EQ(r.subject.request_id, "req-1");
    EXPECT_TRUE(r.extension.empty());
}

TEST(gateway_request_from_headers, operation_defaults_to_execute_and_absent_keys_are_empty) {
    auto parsed = preflight::server::request_from_headers(auth_request(http::verb::get, {{"X-Preflight-Org", "o"}}));
    ASSERT_TRUE(std::holds_alternative<g::request>(parsed));
    const auto& r = std::get<g::request>(parsed);
    EXPECT_EQ(r.op, g::operation::execute);
    EXPECT_EQ(r.subject.org, "o");
    EXPECT_EQ(r.subject.user, "");
    EXPECT_EQ(r.subject.run_id, "");
    for (const char* op : {"execute", "execute_with_pause", "resume", "cancel", "read"}) {
        auto p =
            preflight::server::request_from_headers(auth_request(http::verb::get, {{"X-Preflight-Operation", op}}));
        ASSERT_TRUE(std::holds_alternative<g::request>(p)) << op;
        EXPECT_EQ(g::to_string(std::get<g::request>(p).op), op);
    }
}

// Each refusal names the header at fault, as the JSON body's refusals name the field.
TEST(gateway_request_from_headers, every_bad_header_is_an_error_naming_it) {
    struct bad_case {
        std::vector<std::pair<std::string, std::string>> headers;
        std::string field;
        std::string needle;
    };
    const std::string max(256, 'u');
    const std::vector<bad_case> cases{
        {{{"X-Preflight-User", max + "u"}}, "X-Preflight-User", "X-Preflight-User is longer than 256 bytes"},
        {{{"x-preflight-org", max + "o"}}, "X-Preflight-Org", "X-Preflight-Org is longer than 256 bytes"},
        {{{"X-Preflight-Run-Id", max + "r"}}, "X-Preflight-Run-Id", "longer than 256 bytes"},
        {{{"X-Preflight-Operation", "explode"}},
         "X-Preflight-Operation",
         "unknown operation \"explode\" in X-Preflight-Operation (expected execute, execute_with_pause"},
        {{{"X-Preflight-Operation", ""}}, "X-Preflight-Operation", "unknown operation \"\""},
        {{{"X-Preflight-Operation", "Execute"}}, "X-Preflight-Operation", "unknown operation \"Execute\""},
        {{{"X-Preflight-Operation", std::string(100, 'x')}}, "X-Preflight-Operation", "xxx...\""},
        {{{"X-Preflight-User", "a"}, {"X-Preflight-User", "b"}},
         "X-Preflight-User",
         "X-Preflight-User is given more than once"},
        {{{"X-Preflight-Operation", "read"}, {"x-preflight-operation", "read"}},
         "X-Preflight-Operation",
         "given more than once"},
        {{{"X-Preflight-Usr", "alice"}},
         "X-Preflight-Usr",
         "unknown header X-Preflight-Usr (expected X-Preflight-User"},
        {{{"X-Preflight-Lease", "abc"}}, "X-Preflight-Lease", "unknown header X-Preflight-Lease"},
    };
    for (const auto& c : cases) {
        auto parsed = preflight::server::request_from_headers(auth_request(http::verb::get, c.headers));
        ASSERT_TRUE(std::holds_alternative<request_error>(parsed)) << c.field << " / " << c.needle;
        const auto& err = std::get<request_error>(parsed);
        EXPECT_EQ(err.field, c.field) << err.message;
        EXPECT_NE(err.message.find(c.needle), std::string::npos) << err.message;
    }
    // Exactly at the limit is fine; the limit is the api's (request_limits::max_key_bytes).
    auto at_limit = preflight::server::request_from_headers(auth_request(http::verb::get, {{"X-Preflight-User", max}}));
    EXPECT_TRUE(std::holds_alternative<g::request>(at_limit));
    auto small = preflight::server::request_from_headers(
        auth_request(http::verb::get, {{"X-Preflight-Org", "abcde"}}), {.max_key_bytes = 4}
    );
    ASSERT_TRUE(std::holds_alternative<request_error>(small));
    EXPECT_EQ(std::get<request_error>(small).message, "X-Preflight-Org is longer than 4 bytes");
}

TEST(gateway_auth_response, header_values_never_carry_control_or_non_ascii_bytes) {
    g::decision d;
    d.allowed = false;
    d.status = 403;
    d.code = "bad\r\nSet-Cookie: x=1";
    d.gate = "g\xc3\xa9";
    d.message = "caf\xc3\xa9 \xff";
    auto res = preflight::server::auth_response(d, 11, true);
    EXPECT_EQ(res.result_int(), 403);
    EXPECT_EQ(header_of(res, "X-Preflight-Code"), "bad??Set-Cookie: x=1");
    EXPECT_EQ(header_of(res, "X-Preflight-Gate"), "g??");
    EXPECT_EQ(res.count("Set-Cookie"), 0u);
    const auto body = json::parse(res.body());  // valid JSON: the invalid byte is repaired
    EXPECT_EQ(body.at("error").at("message"), "caf\xc3\xa9 \xef\xbf\xbd");
}

TEST_F(gateway_auth_test, allowed_is_200_with_no_body_ratelimit_fields_and_the_lease_released_at_once) {
    auto res =
        handle(auth_request(http::verb::get, {{"X-Preflight-User", "user_alice"}, {"X-Preflight-Org", "org_a"}}));
    ASSERT_EQ(res.result_int(), 200) << res.body();
    EXPECT_EQ(res.body(), "");
    EXPECT_EQ(header_of(res, "Content-Length"), "0");
    EXPECT_EQ(header_of(res, "RateLimit-Policy"), R"("rate_limit";q=10;w=20)");
    EXPECT_EQ(header_of(res, "RateLimit"), R"("rate_limit";r=9;t=1)");
    EXPECT_EQ(res.count("Retry-After"), 0u);
    EXPECT_EQ(res.count("X-Preflight-Lease"), 0u);
    EXPECT_EQ(res.count("X-Preflight-Code"), 0u);
    EXPECT_EQ(res.count("X-Preflight-Release-Error"), 0u);
    EXPECT_EQ(header_of(res, "Server"), "preflightd");
    EXPECT_EQ(state_->last.subject.user, "user_alice");
    EXPECT_EQ(state_->last.op, g::operation::execute);
    // The slot went back before the answer: the store holds none, the registry none, and the org's only slot is free
    // for the next decision (it would be a 429 too_many_concurrent_executions otherwise).
    EXPECT_EQ(in_use("org_a"), 0u);
    EXPECT_EQ(api_.leases().held(), 0u);
    EXPECT_EQ(api_.stats().auth_requests.load(), 1u);
    for (int i = 0; i < 3; ++i) {
        auto again = handle(auth_request(http::verb::post, {{"X-Preflight-Org", "org_a"}}));
        EXPECT_EQ(again.result_int(), 200) << again.body();
        EXPECT_EQ(in_use("org_a"), 0u);
    }
    EXPECT_EQ(api_.stats().auth_requests.load(), 4u);
    EXPECT_EQ(api_.stats().release_failures.load(), 0u);
}

TEST_F(gateway_auth_test, denials_carry_status_code_gate_headers_and_a_small_json_body) {
    auto banned =
        handle(auth_request(http::verb::get, {{"X-Preflight-User", "banned"}, {"X-Preflight-Org", "org_over"}}));
    EXPECT_EQ(banned.result_int(), 403);  // ban wins over usage, as on /v1/preflight
    EXPECT_EQ(header_of(banned, "X-Preflight-Code"), "banned");
    EXPECT_EQ(header_of(banned, "X-Preflight-Gate"), "ban");
    EXPECT_EQ(header_of(banned, "Content-Type"), "application/json");
    EXPECT_EQ(banned.count("Retry-After"), 0u);
    EXPECT_EQ(banned.count("RateLimit"), 0u);
    const auto b = json::parse(banned.body()).as_object();
    EXPECT_EQ(b.size(), 1u);
    const auto& err = b.at("error").as_object();
    EXPECT_EQ(err.size(), 3u) << banned.body();
    EXPECT_EQ(err.at("code"), "banned");
    EXPECT_EQ(err.at("message"), "subject 'banned' is banned");
    EXPECT_EQ(err.at("gate"), "ban");

    auto over = handle(auth_request(http::verb::post, {{"X-Preflight-Org", "org_over"}}));
    EXPECT_EQ(over.result_int(), 402);
    EXPECT_EQ(header_of(over, "X-Preflight-Code"), "usage_limit_exceeded");
    EXPECT_EQ(header_of(over, "X-Preflight-Gate"), "usage");
    EXPECT_EQ(over.count("Retry-After"), 0u);

    auto slow = handle(auth_request(http::verb::get, {{"X-Preflight-User", "slow"}, {"X-Preflight-Org", "org_s"}}));
    EXPECT_EQ(slow.result_int(), 429);
    EXPECT_EQ(header_of(slow, "Retry-After"), "2");  // 1500 ms, rounded up
    EXPECT_EQ(header_of(slow, "RateLimit-Policy"), R"("rate_limit";q=10;w=20)");
    EXPECT_EQ(header_of(slow, "RateLimit"), R"("rate_limit";r=0;t=2)");
    EXPECT_EQ(header_of(slow, "X-Preflight-Code"), "rate_limited");
    EXPECT_EQ(header_of(slow, "X-Preflight-Gate"), "rate_limit");
    EXPECT_EQ(in_use("org_s"), 0u);  // a denial takes no slot

    auto down = handle(auth_request(http::verb::get, {{"X-Preflight-Org", "org_down"}}));
    EXPECT_EQ(down.result_int(), 503);
    EXPECT_EQ(header_of(down, "X-Preflight-Code"), "gate_unavailable");
    EXPECT_EQ(header_of(down, "X-Preflight-Gate"), "billing");
    EXPECT_EQ(down.count("Retry-After"), 0u);  // fail closed: no delay is known

    // The denial answers carry no lease and no decision trace.
    for (const auto* r : {&banned, &over, &slow, &down}) {
        EXPECT_EQ(r->count("X-Preflight-Lease"), 0u);
        EXPECT_EQ(r->body().find("trace"), std::string::npos) << r->body();
    }
}

TEST_F(gateway_auth_test, a_bad_header_is_400_naming_it_and_never_reaches_the_pipeline) {
    auto res = handle(auth_request(http::verb::get, {{"X-Preflight-Org", std::string(300, 'o')}}));
    ASSERT_EQ(res.result_int(), 400);
    EXPECT_EQ(header_of(res, "X-Preflight-Code"), "bad_request");
    EXPECT_EQ(header_of(res, "X-Preflight-Field"), "X-Preflight-Org");
    const auto err = json::parse(res.body()).at("error");
    EXPECT_EQ(err.at("code"), "bad_request");
    EXPECT_EQ(err.at("field"), "X-Preflight-Org");
    EXPECT_EQ(err.at("message"), "X-Preflight-Org is longer than 256 bytes");
    auto op = handle(auth_request(http::verb::post, {{"X-Preflight-Operation", "expl\xff"}}));
    ASSERT_EQ(op.result_int(), 400);
    EXPECT_EQ(json::parse(op.body()).at("error").at("field"), "X-Preflight-Operation");  // valid JSON despite the byte
    EXPECT_EQ(state_->runs.load(), 0);
    EXPECT_EQ(api_.stats().invalid_requests.load(), 2u);
    EXPECT_EQ(api_.stats().auth_requests.load(), 2u);
}

TEST_F(gateway_auth_test, get_head_and_post_are_answered_other_methods_405) {
    auto head = handle(auth_request(http::verb::head, {{"X-Preflight-User", "banned"}}));
    EXPECT_EQ(head.result_int(), 403);
    EXPECT_EQ(head.body(), "");  // no body on HEAD, the headers all the same
    EXPECT_EQ(header_of(head, "X-Preflight-Code"), "banned");
    auto head_ok = handle(auth_request(http::verb::head, {{"X-Preflight-Org", "org_h"}}));
    EXPECT_EQ(head_ok.result_int(), 200);
    EXPECT_EQ(in_use("org_h"), 0u);

    auto post = auth_request(http::verb::post, {{"X-Preflight-Org", "org_p"}, {"X-Preflight-Operation", "read"}});
    post.body() = "not JSON at all";  // ignored
    post.prepare_payload();
    auto posted = handle(std::move(post));
    EXPECT_EQ(posted.result_int(), 200) << posted.body();
    EXPECT_EQ(state_->last.op, g::operation::read);

    auto put = handle(auth_request(http::verb::put, {{"X-Preflight-Org", "org_p"}}));
    EXPECT_EQ(put.result_int(), 405);
    EXPECT_EQ(header_of(put, "Allow"), "GET, HEAD, POST");
    auto query = auth_request(http::verb::get, {{"X-Preflight-Org", "org_q"}});
    query.target("/v1/auth?from=nginx");  // the query is not part of the route
    EXPECT_EQ(handle(std::move(query)).result_int(), 200);
    EXPECT_EQ(state_->runs.load(), 4);
}

TEST_F(gateway_auth_test, a_failed_release_keeps_the_decision_and_is_counted_and_named) {
    auto res = handle(auth_request(http::verb::get, {{"X-Preflight-Org", "org_release_fails"}}));
    EXPECT_EQ(res.result_int(), 200);
    const std::string note = header_of(res, "X-Preflight-Release-Error");
    EXPECT_NE(note.find("releasing lease "), std::string::npos) << note;
    EXPECT_NE(note.find(" failed: "), std::string::npos) << note;
    EXPECT_EQ(api_.stats().release_failures.load(), 1u);
    EXPECT_EQ(api_.leases().held(), 0u);
}

TEST_F(gateway_auth_test, metrics_count_auth_requests) {
    (void)handle(auth_request(http::verb::get, {{"X-Preflight-Org", "org_m"}}));
    (void)handle(auth_request(http::verb::get, {{"X-Preflight-User", "banned"}}));
    const std::string m = "\n" + api_.metrics_text();
    EXPECT_NE(m.find("\npreflight_api_auth_requests_total 2\n"), std::string::npos) << m;
    EXPECT_NE(m.find("\npreflight_api_preflight_requests_total 0\n"), std::string::npos) << m;
}

}  // namespace
