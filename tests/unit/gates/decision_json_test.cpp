// The one JSON writer of a decision (gates/decision_json.hpp): every member of the documented shape, escaping and
// UTF-8 repair, and the renderings built on it (decision::to_json, to_http) giving the same document.
#include <preflight/gates/decision_json.hpp>
#include <preflight/gates/http.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace {

namespace asio = boost::asio;
namespace g = preflight::gates;
namespace json = boost::json;
using namespace std::chrono_literals;

g::gate_trace traced_pass() {
    g::gate_trace pass{"ban", g::phase::read_only, g::gate_outcome::pass, 1500ns, 123456789ns, false, false, false, ""};
    pass.key = "rl:write:org:o\"1";
    pass.limiter = g::limiter_info{100, 7, std::chrono::seconds(20), std::chrono::seconds(3)};
    return pass;
}

g::gate_trace traced_error() {
    return g::gate_trace{
        "billing",
        g::phase::read_only,
        g::gate_outcome::error,
        0ns,
        7ns,
        true,
        true,
        true,
        "provider said \"no\"\n\t\x01 caf\xc3\xa9 bad:\xff\xc3 \xed\xa0\x80 end\\"};
}

TEST(decision_json, allowed_decision_has_every_documented_member) {
    asio::io_context ctx;
    g::decision d;
    g::release_function no_op = []() -> asio::awaitable<preflight::result<void>> {
        co_return preflight::result<void>{};
    };
    d.lease = g::lease("lease-\"1\"", std::move(no_op), ctx.get_executor(), {});
    d.trace = {traced_pass(), traced_error()};
    std::string text;
    g::append_decision_json(text, d);
    const auto doc = json::parse(text).as_object();
    EXPECT_EQ(doc.at("allowed"), true);
    EXPECT_EQ(doc.at("status"), 200);
    EXPECT_EQ(doc.at("lease_id"), "lease-\"1\"");
    EXPECT_FALSE(doc.contains("code"));
    const auto& pass = doc.at("trace").at(0).as_object();
    EXPECT_EQ(pass.at("gate"), "ban");
    EXPECT_EQ(pass.at("phase"), "read_only");
    EXPECT_EQ(pass.at("outcome"), "pass");
    EXPECT_DOUBLE_EQ(pass.at("started_us").to_number<double>(), 1.5);
    EXPECT_DOUBLE_EQ(pass.at("duration_us").to_number<double>(), 123456.789);
    EXPECT_EQ(pass.at("key"), "rl:write:org:o\"1");
    EXPECT_EQ(pass.at("limiter").at("limit"), 100);
    EXPECT_EQ(pass.at("limiter").at("remaining"), 7);
    EXPECT_EQ(pass.at("limiter").at("window_s"), 20);
    EXPECT_EQ(pass.at("limiter").at("reset_s"), 3);
    EXPECT_FALSE(pass.contains("reason"));
    const auto& err = doc.at("trace").at(1).as_object();
    EXPECT_EQ(err.at("outcome"), "error");
    EXPECT_EQ(err.at("fail_open"), true);
    EXPECT_EQ(err.at("shadow"), true);
    EXPECT_EQ(err.at("would_deny"), true);
    EXPECT_EQ(err.at("compensated"), false);
    // Escapes and control characters kept; each byte of a bad sequence becomes U+FFFD, the valid é stays.
    EXPECT_EQ(
        err.at("reason"),
        "provider said \"no\"\n\t\x01 caf\xc3\xa9 bad:\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
        "end\\"
    );
    // A duration of zero still reads back as a double.
    EXPECT_TRUE(err.at("started_us").is_double());
    // decision::to_json is the same document.
    EXPECT_EQ(json::value(d.to_json()), json::value(doc));
}

TEST(decision_json, denial_body_has_the_error_object_and_the_decision) {
    g::decision d;
    d.allowed = false;
    d.status = 429;
    d.code = "rate_limited";
    d.message = "slow down \xe2\x82";  // a truncated sequence: each byte repaired
    d.gate = "rate";
    d.retry_after = 1500ms;
    d.details = {{"banned_until", "2030-01-01T00:00:00Z"}};
    d.trace = {traced_pass()};
    std::string text;
    g::append_denial_json(text, d);
    const auto body = json::parse(text).as_object();
    const auto& err = body.at("error").as_object();
    EXPECT_EQ(err.at("code"), "rate_limited");
    EXPECT_EQ(err.at("message"), "slow down \xef\xbf\xbd\xef\xbf\xbd");  // each byte
    EXPECT_EQ(err.at("gate"), "rate");
    EXPECT_EQ(err.at("retry_after_ms"), 1500);
    EXPECT_EQ(err.at("banned_until"), "2030-01-01T00:00:00Z");
    const auto& dec = body.at("decision").as_object();
    EXPECT_EQ(dec.at("allowed"), false);
    EXPECT_EQ(dec.at("status"), 429);
    EXPECT_EQ(dec.at("code"), "rate_limited");
    EXPECT_EQ(dec.at("retry_after_ms"), 1500);
    EXPECT_EQ(dec.at("banned_until"), "2030-01-01T00:00:00Z");
    EXPECT_EQ(dec.at("trace").at(0).at("limiter").at("remaining"), 7);
    // The answer body is this for a denial, and to_http sends it.
    std::string answer;
    g::append_answer_json(answer, d);
    EXPECT_EQ(answer, text);
    EXPECT_EQ(g::to_http(d).body, text);
}

TEST(decision_json, appends_to_what_the_buffer_holds) {
    g::decision d;
    std::string text = "prefix:";
    g::append_decision_json(text, d);
    EXPECT_EQ(text, R"(prefix:{"allowed":true,"status":200,"trace":[]})");
}

}  // namespace
