// What a client sees of the default pipeline's denials (in-memory stores): a timed ban's 403 carries no Retry-After
// and says when it ends only with ban.expose_until; denial messages name subjects, never store keys (those stay in
// the trace); the near-limit counter of the rate limit.
#include "memory_pipeline_fixture.hpp"
#include <preflight/gates/http.hpp>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <string>

namespace preflight::builtin_test {
namespace {

class http_answers : public memory_pipeline_test {
protected:
    [[nodiscard]] boost::json::value seed_document() const override {
        auto seed = memory_pipeline_test::seed_document();
        // A ban of user_timed until 2026-12-31T00:00:00Z (after the fixed wall time of the tests).
        seed.as_object()["bans"].as_array().push_back(boost::json::object{
            {"subject_id", "user_timed"}, {"reason", "cool-off"}, {"until_unix_s", 1798675200}});
        return seed;
    }
};

TEST_F(http_answers, ATimedBanIsA403WithoutRetryAfterAndSaysItsEndOnlyWhenConfigured) {
    auto p = build();
    auto d = decide(p, "org_ok", "user_timed");
    ASSERT_EQ(d.status, 403);
    EXPECT_EQ(d.code, "banned");
    EXPECT_FALSE(d.retry_after.has_value()) << "no retry-after in the body either";
    auto http = g::to_http(d);
    EXPECT_EQ(http.header("Retry-After"), nullptr);
    EXPECT_FALSE(boost::json::parse(http.body).at("error").as_object().contains("banned_until"));

    boost::json::object o;
    o["ban.expose_until"] = true;
    auto exposed = decide(build(o), "org_ok", "user_timed");
    ASSERT_EQ(exposed.status, 403);
    auto body = boost::json::parse(g::to_http(exposed).body);
    EXPECT_EQ(body.at("error").at("banned_until").as_string(), "2026-12-31T00:00:00Z");
    EXPECT_EQ(g::to_http(exposed).header("Retry-After"), nullptr);
    // A ban without an end has nothing to expose.
    auto forever = decide(build(o), "org_ok", "user_banned");
    EXPECT_FALSE(boost::json::parse(g::to_http(forever).body).at("error").as_object().contains("banned_until"));
}

TEST_F(http_answers, ARateLimitDenialNamesTheSubjectAndTheTraceTheKey) {
    boost::json::object o;
    o["admission.enabled"] = false;
    o["rate_limit.pro.read_burst"] = 2;
    auto p = build(o);
    g::decision d;
    for (int i = 0; i < 3; ++i) d = decide(p, "org_ok", "user_ok", g::operation::read);
    ASSERT_EQ(d.code, "rate_limited");
    EXPECT_EQ(d.message, "rate limit exceeded for org 'org_ok' (read requests)");
    EXPECT_EQ(d.message.find("rl:"), std::string::npos);
    g::request r;
    r.op = g::operation::read;
    r.subject.org = "org_ok";
    EXPECT_EQ(d.find("rate_limit")->key, g::rate_limit_key(r));
    const auto text = boost::json::serialize(d.to_json());
    EXPECT_NE(text.find(R"("key":"rl:read:org:org_ok")"), std::string::npos) << text;
}

TEST_F(http_answers, PassesNearTheLimitAreCountedPerGate) {
    boost::json::object o;
    o["admission.enabled"] = false;
    o["rate_limit.pro.write_burst"] = 10;
    o["pipeline.near_limit_fraction"] = 0.5;
    auto p = build(o);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(decide(p, "org_ok", "user_ok").allowed) << i;
    // Remaining after each pass: 9 … 0; under 5 of 10 for 4, 3, 2, 1, 0.
    EXPECT_EQ(p.metrics().near_limit_count("rate_limit"), 5U);
    EXPECT_EQ(p.metrics().near_limit_count("backstop"), 0U) << "10 of 1000";
}

}  // namespace
}  // namespace preflight::builtin_test
