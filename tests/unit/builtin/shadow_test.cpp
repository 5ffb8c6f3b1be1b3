// Shadow mode of the default pipeline on the in-memory stores: per gate (`<gate>.shadow`) and for the whole pipeline
// (`pipeline.shadow`) a gate decides, traces `would_deny`, counts and reports (event shadow_denial), and never denies.
#include "memory_pipeline_fixture.hpp"

#include <gtest/gtest.h>

#include <string>

namespace preflight::builtin_test {
namespace {

using shadow_test = memory_pipeline_test;

TEST_F(shadow_test, AShadowRateLimitAllowsTheFloodAndReportsEachWouldBeDenial) {
    boost::json::object o;
    o["rate_limit.shadow"] = true;
    o["admission.enabled"] = false;
    auto p = build(o);
    const int flood = 150;  // the pro write bucket holds 100
    int would_deny = 0;
    for (int i = 0; i < flood; ++i) {
        auto d = decide(p, "org_ok", "user_ok");
        ASSERT_TRUE(d.allowed) << i << ": " << d.code;
        const auto* t = d.find("rate_limit");
        ASSERT_NE(t, nullptr);
        EXPECT_TRUE(t->shadow);
        if (t->would_deny) {
            ++would_deny;
            EXPECT_EQ(t->reason, "rate_limited");
        }
        EXPECT_FALSE(d.find("ban")->shadow) << "only the rate limit is in shadow mode";
    }
    EXPECT_EQ(would_deny, flood - 100);
    EXPECT_EQ(events_.count("shadow_denial:rate_limit"), static_cast<std::size_t>(flood - 100));
    EXPECT_EQ(p.metrics().shadow_denial_count("rate_limit"), static_cast<std::uint64_t>(flood - 100));
}

TEST_F(shadow_test, AGateNotInShadowModeStillDenies) {
    boost::json::object o;
    o["rate_limit.shadow"] = true;
    auto p = build(o);
    auto d = decide(p, "org_ok", "user_banned");
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.code, "banned");
    EXPECT_EQ(events_.count("shadow_denial:ban"), 0U);
}

TEST_F(shadow_test, AShadowPipelineAllowsEveryRequestAndSaysWhichGateWouldHaveDenied) {
    boost::json::object o;
    o["pipeline.shadow"] = true;
    auto p = build(o);
    auto banned = decide(p, "org_ok", "user_banned");
    EXPECT_TRUE(banned.allowed);
    EXPECT_TRUE(banned.find("ban")->would_deny);
    auto over = decide(p, "org_over", "user_x");
    EXPECT_TRUE(over.allowed);
    EXPECT_TRUE(over.find("usage")->would_deny);
    EXPECT_EQ(over.find("usage")->reason, "usage_limit_exceeded");
    auto capped = decide(p, "org_capped", "user_capped");
    EXPECT_TRUE(capped.allowed);
    EXPECT_TRUE(capped.find("member_cap")->would_deny);
    EXPECT_EQ(events_.count("shadow_denial:ban"), 1U);
    EXPECT_EQ(events_.count("shadow_denial:usage"), 1U);
    EXPECT_EQ(events_.count("shadow_denial:member_cap"), 1U);
    for (const auto* name : g::default_gate_names) {
        const auto* t = banned.find(name);
        ASSERT_NE(t, nullptr) << name;
        EXPECT_TRUE(t->shadow) << name;
    }
    EXPECT_TRUE(run(io_, banned.lease.release()).has_value());
    EXPECT_TRUE(run(io_, over.lease.release()).has_value());
    EXPECT_TRUE(run(io_, capped.lease.release()).has_value());
}

TEST_F(shadow_test, ShadowKeysAreBooleansNamedInTheirErrors) {
    boost::json::object o;
    o["admission.shadow"] = "yes";
    try {
        (void)make_config(o);
        FAIL() << "a string for a boolean key";
    } catch (const config_error& e) {
        EXPECT_EQ(e.key(), "admission.shadow");
    }
}

}  // namespace
}  // namespace preflight::builtin_test
