#include "gates_support.hpp"
#include <preflight/gates/http.hpp>
#include <preflight/gates/with_timeout.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <run_coro.hpp>

using namespace preflight::test;
using preflight::errc;
using preflight::result;

namespace {

g::decision denied(int status, std::optional<std::chrono::milliseconds> retry, std::optional<g::limiter_info> l = {}) {
    g::decision d;
    d.allowed = false;
    d.status = status;
    d.code = "rate_limited";
    d.message = "too many requests";
    d.gate = "org_rate";
    d.retry_after = retry;
    d.limiter = l;
    return d;
}

}  // namespace

TEST(http_mapping, denial_body_and_status) {
    auto r = g::to_http(denied(403, std::nullopt));
    EXPECT_EQ(r.status, 403);
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(body.at("error").at("code").as_string(), "rate_limited");
    EXPECT_EQ(body.at("error").at("message").as_string(), "too many requests");
    EXPECT_EQ(body.at("error").at("gate").as_string(), "org_rate");
    EXPECT_EQ(r.header("Retry-After"), nullptr);
    EXPECT_EQ(*r.header("Content-Type"), "application/json");
}

TEST(http_mapping, retry_after_is_whole_seconds_at_least_one_on_429) {
    EXPECT_EQ(*g::to_http(denied(429, std::chrono::milliseconds(1500))).header("Retry-After"), "2");
    EXPECT_EQ(*g::to_http(denied(429, std::chrono::milliseconds(2000))).header("Retry-After"), "2");
    EXPECT_EQ(*g::to_http(denied(429, std::chrono::milliseconds(200))).header("Retry-After"), "1");
    EXPECT_EQ(*g::to_http(denied(429, std::chrono::milliseconds(0))).header("Retry-After"), "1");
    EXPECT_EQ(*g::to_http(denied(429, std::nullopt)).header("Retry-After"), "1");
    EXPECT_EQ(g::to_http(denied(429, std::nullopt)).header("RateLimit"), nullptr);
}

TEST(http_mapping, ratelimit_fields_when_the_deciding_gate_is_a_limiter) {
    auto r = g::to_http(denied(
        429,
        std::chrono::milliseconds(30000),
        g::limiter_info{100, 0, std::chrono::seconds(60), std::chrono::seconds(30)}
    ));
    EXPECT_EQ(*r.header("RateLimit-Policy"), "\"org_rate\";q=100;w=60");
    EXPECT_EQ(*r.header("RateLimit"), "\"org_rate\";r=0;t=30");
    EXPECT_EQ(*r.header("Retry-After"), "30");
}

TEST(http_mapping, allowed_is_200_with_the_decision) {
    g::decision d;
    d.trace.push_back(g::gate_trace{
        "ban",
        g::phase::read_only,
        g::gate_outcome::pass,
        {},
        std::chrono::microseconds(3),
        false,
        false,
        false,
        {},
        false});
    auto r = g::to_http(d);
    EXPECT_EQ(r.status, 200);
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_TRUE(body.at("allowed").as_bool());
    EXPECT_EQ(body.at("trace").as_array().at(0).at("outcome").as_string(), "pass");
    EXPECT_DOUBLE_EQ(body.at("trace").as_array().at(0).at("duration_us").to_number<double>(), 3.0);
}

// Regressions from fuzz/fuzz_decision.cpp (docs/reliability.md, findings F1-F3).
TEST(http_mapping, gate_name_cannot_inject_a_header_line) {
    auto d = denied(429, std::chrono::milliseconds(1000), g::limiter_info{1, 0, std::chrono::seconds(1), {}});
    d.gate = "g\r\nSet-Cookie: x=1\x01\xff";
    const auto r = g::to_http(d);
    for (const auto& [name, value] : r.headers) {
        EXPECT_EQ(value.find_first_of("\r\n\x01\xff"), std::string::npos) << name << ": " << value;
    }
    EXPECT_EQ(*r.header("RateLimit"), "\"g??Set-Cookie: x=1??\";r=0;t=0");
}

TEST(http_mapping, invalid_utf8_text_still_gives_valid_json) {
    auto d = denied(403, std::nullopt);
    d.message = "bad \xff\xc0\xaf \xed\xa0\x80 ok \xc3\xa9";  // stray, overlong, surrogate; then a valid é
    d.code = "c\xe2\x82";                                     // truncated sequence
    d.trace.push_back(g::gate_trace{
        "ban", g::phase::read_only, g::gate_outcome::deny, {}, {}, false, false, false, "r\xfe", false});
    boost::system::error_code ec;
    const auto body = boost::json::parse(g::to_http(d).body, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(
        body.at("error").at("message").as_string(),
        "bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9"
    );
    EXPECT_EQ(body.at("error").at("code").as_string(), "c\xef\xbf\xbd\xef\xbf\xbd");
    const auto json = boost::json::parse(boost::json::serialize(d.to_json()), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(json.at("trace").at(0).at("reason").as_string(), "r\xef\xbf\xbd");
    EXPECT_EQ(json.at("message").as_string(), body.at("error").at("message").as_string());
}

TEST(http_mapping, retry_after_near_the_maximum_does_not_overflow) {
    const auto max = std::chrono::milliseconds(std::chrono::milliseconds::max());
    EXPECT_EQ(*g::to_http(denied(429, max)).header("Retry-After"), std::to_string(max.count() / 1000 + 1));
    EXPECT_EQ(*g::to_http(denied(429, std::chrono::milliseconds(-1500))).header("Retry-After"), "1");
}

TEST(decision_json, denial_carries_code_gate_and_trace) {
    auto d = denied(429, std::chrono::milliseconds(1500));
    d.trace.push_back(g::gate_trace{
        "org_rate", g::phase::stateful, g::gate_outcome::deny, {}, {}, false, false, false, "rate_limited", false});
    auto j = d.to_json();
    EXPECT_FALSE(j.at("allowed").as_bool());
    EXPECT_EQ(j.at("status").as_int64(), 429);
    EXPECT_EQ(j.at("retry_after_ms").as_int64(), 1500);
    EXPECT_EQ(j.at("trace").as_array().at(0).at("phase").as_string(), "stateful");
    EXPECT_EQ(j.at("trace").as_array().at(0).at("reason").as_string(), "rate_limited");
}

TEST(metrics, counts_outcomes_and_exports_prometheus_text) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto b = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("ban", a, 0ms, act::pass))
                 .add_gate(scripted_gate("usage", b, 0ms, act::deny, 402))
                 .build();
    for (int i = 0; i < 3; ++i) (void)run_coro(ctx, p.run(g::request{}));
    const auto& m = p.metrics();
    EXPECT_EQ(m.count("ban", g::gate_outcome::pass), 3U);
    EXPECT_EQ(m.count("usage", g::gate_outcome::deny), 3U);
    EXPECT_EQ(m.count("usage", g::gate_outcome::pass), 0U);
    EXPECT_EQ(m.decisions(false), 3U);
    const auto text = m.prometheus_text();
    EXPECT_NE(text.find("# TYPE preflight_gate_outcomes_total counter\n"), std::string::npos);
    EXPECT_NE(text.find("preflight_gate_outcomes_total{gate=\"usage\",outcome=\"deny\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE preflight_gate_duration_seconds histogram\n"), std::string::npos);
    EXPECT_NE(text.find("preflight_gate_duration_seconds_bucket{gate=\"ban\",le=\"+Inf\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("preflight_gate_duration_seconds_count{gate=\"ban\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("preflight_decisions_total{result=\"deny\"} 3\n"), std::string::npos);
    EXPECT_THROW((void)m.count("nope", g::gate_outcome::pass), std::out_of_range);
}

TEST(metrics, disabled_metrics_throw_on_access) {
    g::pipeline_config cfg;
    cfg.metrics = false;
    auto p = g::pipeline_builder{cfg}.add_gate(scripted_gate("ban", std::make_shared<probe>(), 0ms, act::pass)).build();
    EXPECT_THROW((void)p.metrics(), std::logic_error);
}

TEST(with_timeout, returns_the_result_when_in_time) {
    asio::io_context ctx;
    auto r = run_coro(
        ctx, g::with_timeout([]() -> asio::awaitable<result<int>> { co_return 7; }(), std::chrono::seconds(1))
    );
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 7);
}

TEST(with_timeout, cancels_the_operation_and_reports_timeout) {
    asio::io_context ctx;
    auto p = std::make_shared<probe>();
    auto r = run_coro(ctx, g::with_timeout(scripted(p, 0ms, act::hang, 0), std::chrono::milliseconds(5)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::timeout));
    EXPECT_EQ(p->cancelled, 1);
}

TEST(with_timeout, propagates_exceptions) {
    asio::io_context ctx;
    auto op = []() -> asio::awaitable<result<void>> {
        throw std::runtime_error("boom");
        co_return result<void>{};
    };
    EXPECT_THROW(run_coro(ctx, g::with_timeout(op(), std::chrono::seconds(1))), std::runtime_error);
}

namespace {

g::gate_trace limiter_trace(std::string gate, g::gate_outcome o, g::limiter_info l) {
    g::gate_trace t;
    t.gate = std::move(gate);
    t.phase = g::phase::stateful;
    t.outcome = o;
    t.limiter = l;
    return t;
}

}  // namespace

// RFC 9110 defines Retry-After for 503 and 3xx, RFC 6585 for 429: a 403 (even one that knows when it ends) has none.
TEST(http_fields, retry_after_only_on_429_and_a_503_that_has_one) {
    EXPECT_EQ(g::to_http(denied(403, std::chrono::milliseconds(60'000))).header("Retry-After"), nullptr);
    EXPECT_EQ(g::to_http(denied(402, std::chrono::milliseconds(60'000))).header("Retry-After"), nullptr);
    ASSERT_NE(g::to_http(denied(503, std::chrono::milliseconds(2'500))).header("Retry-After"), nullptr);
    EXPECT_EQ(*g::to_http(denied(503, std::chrono::milliseconds(2'500))).header("Retry-After"), "3");
    EXPECT_EQ(g::to_http(denied(503, std::nullopt)).header("Retry-After"), nullptr);
    EXPECT_EQ(*g::to_http(denied(429, std::nullopt)).header("Retry-After"), "1");
}

TEST(http_fields, an_allowed_answer_carries_every_passing_time_window_limiter) {
    g::decision d;
    d.trace.push_back(limiter_trace(
        "backstop", g::gate_outcome::pass, {1000, 990, std::chrono::seconds(3600), std::chrono::seconds(1200)}
    ));
    d.trace.push_back(limiter_trace(
        "rate_limit", g::gate_outcome::pass, {100, 42, std::chrono::seconds(20), std::chrono::seconds(12)}
    ));
    d.trace.push_back(limiter_trace("admission", g::gate_outcome::pass, {10, 9, {}, {}}));  // not a time window
    const auto r = g::to_http(d);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Retry-After"), nullptr);
    ASSERT_NE(r.header("RateLimit-Policy"), nullptr);
    EXPECT_EQ(*r.header("RateLimit-Policy"), R"("backstop";q=1000;w=3600, "rate_limit";q=100;w=20)");
    EXPECT_EQ(*r.header("RateLimit"), R"("backstop";r=990;t=1200, "rate_limit";r=42;t=12)");
    using fields = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(g::http_fields(d), (fields(r.headers.begin() + 1, r.headers.end())))
        << "to_http: Content-Type, then these";
}

// The visitor preflightd uses: the same fields in the same order, a reused thread buffer never leaking one answer's
// limiters into the next, and gate names escaped as sf-strings (no header injection).
TEST(http_fields, for_each_matches_the_list_and_reuses_nothing_between_answers) {
    using fields = std::vector<std::pair<std::string, std::string>>;
    const auto visit = [](const g::decision& d) {
        fields out;
        g::for_each_http_field(d, [&](std::string_view n, std::string_view v) { out.emplace_back(n, v); });
        return out;
    };
    g::decision two;
    two.trace.push_back(limiter_trace(
        "backstop", g::gate_outcome::pass, {1000, 990, std::chrono::seconds(3600), std::chrono::seconds(1200)}
    ));
    two.trace.push_back(limiter_trace(
        "rate_limit", g::gate_outcome::pass, {100, 42, std::chrono::seconds(20), std::chrono::seconds(12)}
    ));
    auto one = denied(429, std::chrono::milliseconds(1'001), g::limiter_info{5, 0, std::chrono::seconds(60), {}});
    one.gate = "a\"b\r\nX: y";
    EXPECT_EQ(visit(two), g::http_fields(two));
    EXPECT_EQ(
        visit(one),
        (fields{
            {"Retry-After", "2"},
            {"RateLimit-Policy", R"("a\"b??X: y";q=5;w=60)"},
            {"RateLimit", R"("a\"b??X: y";r=0;t=0)"}})
    );
    EXPECT_EQ(visit(two), g::http_fields(two));
    EXPECT_TRUE(visit(g::decision{}).empty());
}

// The concurrency limit is not a rate: its 429 says Retry-After and no RateLimit fields (no w=0 / t=0 beside it).
TEST(http_fields, the_concurrency_429_sends_no_rate_limit_fields) {
    auto d = denied(429, std::nullopt, g::limiter_info{10, 0, {}, {}});
    d.gate = "admission";
    const auto r = g::to_http(d);
    EXPECT_EQ(*r.header("Retry-After"), "1");
    EXPECT_EQ(r.header("RateLimit-Policy"), nullptr);
    EXPECT_EQ(r.header("RateLimit"), nullptr);
}

TEST(http_fields, denial_details_are_members_of_the_error_object) {
    auto d = denied(403, std::nullopt);
    d.details.emplace_back("banned_until", "2026-12-31T00:00:00Z");
    const auto body = boost::json::parse(g::to_http(d).body);
    EXPECT_EQ(body.at("error").at("banned_until").as_string(), "2026-12-31T00:00:00Z");
    EXPECT_EQ(d.to_json().at("banned_until").as_string(), "2026-12-31T00:00:00Z");
}

TEST(metrics, a_limiter_pass_under_the_near_limit_fraction_is_counted) {
    asio::io_context ctx;
    auto remaining = std::make_shared<int>(100);
    g::gate_spec s;
    s.name = "bucket";
    s.phase = g::phase::stateful;
    s.check = [remaining](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
        g::verdict v;
        v.set_limiter(g::limiter_info{100, static_cast<std::uint64_t>(--*remaining), std::chrono::seconds(10), {}});
        v.set_key("bucket:1");
        co_return v;
    };
    g::pipeline_config cfg;
    cfg.near_limit_fraction = 0.25;
    auto p = g::pipeline_builder{cfg}.add_gate(std::move(s)).build();
    g::decision last;
    for (int i = 0; i < 80; ++i) last = run_coro(ctx, p.run(exec_request()));  // remaining 99 … 20
    EXPECT_EQ(p.metrics().near_limit_count("bucket"), 5U) << "remaining 24, 23, 22, 21, 20 are under 25 of 100";
    EXPECT_NE(
        p.metrics().prometheus_text().find("preflight_gate_near_limit_total{gate=\"bucket\"} 5\n"), std::string::npos
    );
    ASSERT_EQ(last.trace.size(), 1U);
    EXPECT_EQ(last.trace[0].key, "bucket:1") << "the verdict's key is in the trace";
    ASSERT_TRUE(last.trace[0].limiter.has_value());
    EXPECT_EQ(last.trace[0].limiter->remaining, 20U);
    g::pipeline_config bad;
    bad.near_limit_fraction = 1.5;
    EXPECT_THROW(
        (void)g::pipeline_builder{bad}.add_gate(scripted_gate("a", std::make_shared<probe>(), 0ms, act::pass)).build(),
        g::pipeline_config_error
    );
}
