// Configuration of the built-in gates and the assembly of the default pipeline.
#include "scenario_support.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <type_traits>

namespace preflight::builtin_test {
namespace {

TEST(builtin_settings, DefaultsMatchTheDocumentation) {
    auto s = g::default_settings_from(make_config());
    EXPECT_EQ(s.ban_budget, std::chrono::milliseconds{1000});
    EXPECT_FALSE(s.ban_fail_open);
    EXPECT_FALSE(s.usage_fail_open);
    EXPECT_EQ(s.usage_limits[0], 1000U);
    EXPECT_EQ(s.usage_limits[3], 0U);
    EXPECT_TRUE(s.balance_enabled);
    EXPECT_EQ(s.balance_budget, std::chrono::milliseconds{2000});
    EXPECT_EQ(s.balance_cache_ttl, std::chrono::seconds{60});
    EXPECT_EQ(s.backstop.max, 1000U);
    EXPECT_EQ(s.backstop.period, std::chrono::seconds{3600});
    EXPECT_DOUBLE_EQ(s.rate_limits[0].read.rate_per_s, 1.0);
    EXPECT_DOUBLE_EQ(s.rate_limits[0].read.burst, 10.0);
    EXPECT_DOUBLE_EQ(s.rate_limits[0].write.burst, 20.0);
    EXPECT_DOUBLE_EQ(s.rate_limits[1].write.burst, 100.0);
    EXPECT_DOUBLE_EQ(s.rate_limits[3].write.rate_per_s, 25.0);
    EXPECT_TRUE(s.cancel_exempt);
    EXPECT_EQ(s.fleet_size, 1U);
    EXPECT_EQ(s.admission_max_concurrent, 10U);
    EXPECT_EQ(s.admission_lease_ttl, std::chrono::milliseconds{300'000});
    EXPECT_TRUE(s.admission_fail_open);
    EXPECT_TRUE(s.admission_enabled);
    EXPECT_EQ(s.stateful, g::stateful_call::automatic);
}

TEST(builtin_settings, StatefulCallIsAutoOrSeparate) {
    for (const auto& [text, want] :
         {std::pair{"separate", g::stateful_call::separate}, std::pair{"auto", g::stateful_call::automatic}}) {
        boost::json::object o;
        o["pipeline.stateful_call"] = text;
        EXPECT_EQ(g::default_settings_from(make_config(o)).stateful, want) << text;
    }
    boost::json::object bad;
    bad["pipeline.stateful_call"] = "sometimes";
    try {
        (void)g::default_settings_from(make_config(bad));
        FAIL() << "expected config_error";
    } catch (const preflight::config_error& e) {
        EXPECT_EQ(e.key(), "pipeline.stateful_call");
        EXPECT_EQ(e.value(), "sometimes");
        EXPECT_NE(std::string(e.what()).find("auto or separate"), std::string::npos) << e.what();
    }
}

TEST(builtin_settings, LayersApplyToBuiltinKeys) {
    preflight::config_registry reg;
    g::register_default_pipeline_config(reg);
    preflight::config_inputs in;
    in.file = boost::json::parse(R"({"usage": {"limits": {"pro": 7}}, "fleet": {"size": 3}})");
    in.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "PREFLIGHT_ADMISSION_MAX_CONCURRENT") return "4";
        return std::nullopt;
    };
    in.environment = std::vector<std::string>{"PREFLIGHT_ADMISSION_MAX_CONCURRENT=4"};
    in.args = {"--rate-limit-team-read-burst=33"};
    auto cfg = preflight::config::resolve(reg, in);
    auto s = g::default_settings_from(cfg);
    EXPECT_EQ(s.usage_limits[1], 7U);
    EXPECT_EQ(s.fleet_size, 3U);
    EXPECT_EQ(s.admission_max_concurrent, 4U);
    EXPECT_DOUBLE_EQ(s.rate_limits[2].read.burst, 33.0);
    EXPECT_EQ(cfg.source_of("admission.max_concurrent"), preflight::config_source::env);
}

TEST(builtin_settings, BadValuesNameTheKey) {
    boost::json::object o;
    o["balance.budget_ms"] = 0;
    try {
        (void)make_config(o);
        FAIL() << "expected config_error";
    } catch (const preflight::config_error& e) {
        EXPECT_EQ(e.key(), "balance.budget_ms");
    }
    boost::json::object o2;
    o2["rate_limit.pro.write_rps"] = 0;
    EXPECT_THROW((void)make_config(o2), preflight::config_error);
    boost::json::object o3;
    o3["fleet.size"] = 0;
    EXPECT_THROW((void)make_config(o3), preflight::config_error);
}

TEST(builtin_settings, UsagePeriodIsTheFirstOfTheUtcMonth) {
    using namespace std::chrono;
    EXPECT_EQ(g::usage_period_start(fixed_wall_time()), "2026-11-01");
    EXPECT_EQ(g::usage_period_start(sys_days{year{2027} / January / 1}), "2027-01-01");
    EXPECT_EQ(g::usage_period_start(sys_days{year{2026} / December / 31} + hours{23} + minutes{59}), "2026-12-01");
}

TEST(builtin_settings, LocalShareDividesByTheFleetSize) {
    auto l = g::local_share(limits::bucket_limit{10.0, 100.0}, 4);
    EXPECT_DOUBLE_EQ(l.rate_per_s, 2.5);
    EXPECT_DOUBLE_EQ(l.burst, 25.0);
    auto tiny = g::local_share(limits::bucket_limit{1.0, 2.0}, 8);
    EXPECT_DOUBLE_EQ(tiny.burst, 1.0);  // never below one token
    auto one = g::local_share(limits::bucket_limit{1.0, 20.0}, 1);
    EXPECT_DOUBLE_EQ(one.burst, 20.0);
}

struct assembly : ::testing::Test {
    manual_clock clock;
    clients::memory_fact_stores facts;
    g::default_pipeline_deps deps() {
        g::default_pipeline_deps d;
        d.stores = clients::make_memory_store_set(facts, clock);
        d.clock = &clock;
        return d;
    }
};

// The fixed signature (benchmarks take its address, so it must not be overloaded).
static_assert(std::is_same_v<
              decltype(&g::default_pipeline),
              g::pipeline (*)(const preflight::config&, g::default_pipeline_deps)>);

TEST_F(assembly, GatesInPrecedenceOrder) {
    auto p = g::default_pipeline(make_config(), deps());
    const auto names = p.gate_names();
    ASSERT_EQ(names.size(), g::default_gate_names.size());
    for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(names[i], g::default_gate_names[i]);
}

TEST_F(assembly, NoBalanceGateWhenDisabledOrWithoutSource) {
    boost::json::object o;
    o["balance.enabled"] = false;
    auto p = g::default_pipeline(make_config(o), deps());
    auto names = p.gate_names();
    EXPECT_EQ(std::find(names.begin(), names.end(), "balance"), names.end());
    auto d = deps();
    d.stores.balance = nullptr;
    auto p2 = g::default_pipeline(make_config(), std::move(d));
    names = p2.gate_names();
    EXPECT_EQ(std::find(names.begin(), names.end(), "balance"), names.end());
    EXPECT_EQ(names.size(), 7U);
}

TEST_F(assembly, MissingStoreIsAConfigError) {
    auto d = deps();
    d.stores.admissions = nullptr;  // (a missing window store only turns the backstop off: builtin_scenarios)
    try {
        (void)g::default_pipeline(make_config(), std::move(d));
        FAIL() << "expected pipeline_config_error";
    } catch (const g::pipeline_config_error& e) {
        EXPECT_NE(std::string(e.what()).find("admissions"), std::string::npos);
    }
    boost::json::object off;
    off["admission.enabled"] = false;
    auto without = deps();
    without.stores.admissions = nullptr;
    EXPECT_NO_THROW((void)g::default_pipeline(make_config(off), std::move(without))) << "no admission, no store needed";
}

// One clock by construction: left null the pipeline takes the store set's; another one is refused, naming both.
TEST_F(assembly, ThePipelineTakesTheStoreSetsClockAndRefusesAnother) {
    auto d = deps();
    d.clock = nullptr;
    auto p = g::default_pipeline(make_config(), std::move(d));
    asio::io_context io;
    g::request r;
    r.op = g::operation::execute;
    r.subject.org = "org_clock";
    auto d1 = run(io, p.run(r));
    ASSERT_EQ(d1.trace.size(), g::default_gate_names.size());
    for (const auto& t : d1.trace) {  // the steady clock would move between the gates
        EXPECT_EQ(t.started, std::chrono::nanoseconds{0}) << t.gate << ": timed on the store set's manual clock";
        EXPECT_EQ(t.duration, std::chrono::nanoseconds{0}) << t.gate;
    }
    manual_clock other;
    auto mismatched = deps();
    mismatched.clock = &other;
    try {
        (void)g::default_pipeline(make_config(), std::move(mismatched));
        FAIL() << "expected pipeline_config_error";
    } catch (const g::pipeline_config_error& e) {
        EXPECT_NE(std::string(e.what()).find("store_set.clock"), std::string::npos) << e.what();
    }
    auto same = deps();
    same.clock = &clock;
    EXPECT_NO_THROW((void)g::default_pipeline(make_config(), std::move(same)));
}

TEST_F(assembly, CancelDrawsFromTheWriteBucketWhenNotExempt) {
    boost::json::object o;
    o["rate_limit.cancel_exempt"] = false;
    o["rate_limit.write_burst"] = 1;
    o["rate_limit.write_rps"] = 0.001;
    auto p = g::default_pipeline(make_config(o), deps());
    asio::io_context io;
    g::request r;
    r.op = g::operation::cancel;
    r.subject.org = "org_c";
    auto first = run(io, p.run(r));
    EXPECT_TRUE(first.allowed);
    EXPECT_EQ(first.find("rate_limit")->outcome, g::gate_outcome::pass);
    auto second = run(io, p.run(r));
    EXPECT_EQ(second.status, 429);
    EXPECT_EQ(second.code, "rate_limited");
}

}  // namespace
}  // namespace preflight::builtin_test
