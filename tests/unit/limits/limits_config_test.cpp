#include <preflight/limits/limits_config.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <map>

using preflight::config;
using preflight::config_error;
using preflight::config_inputs;
using preflight::config_registry;
using preflight::config_source;

namespace {

config_registry limits_registry() {
    config_registry r;
    preflight::limits::register_config(r);
    return r;
}

config_inputs inputs(
    std::optional<std::string> file, std::map<std::string, std::string> env, std::vector<std::string> args
) {
    config_inputs in;
    if (file) in.file = boost::json::parse(*file);
    in.file_name = "preflight.json";
    in.getenv = [env](const std::string& n) -> std::optional<std::string> {
        auto it = env.find(n);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    std::vector<std::string> present;
    for (const auto& [k, v] : env) present.push_back(k + "=" + v);
    in.environment = present;
    in.args = std::move(args);
    return in;
}

TEST(limits_config, defaults) {
    auto cfg = config::resolve(limits_registry(), inputs(std::nullopt, {}, {}));
    auto s = preflight::limits::settings_from(cfg);
    EXPECT_EQ(s.rate_limit.read.rate_per_s, 1.0);
    EXPECT_EQ(s.rate_limit.read.burst, 10.0);
    EXPECT_EQ(s.rate_limit.write.rate_per_s, 1.0);
    EXPECT_EQ(s.rate_limit.write.burst, 20.0);
    EXPECT_TRUE(s.rate_limit.cancel_exempt);
    EXPECT_EQ(s.backstop.max, 1000u);
    EXPECT_EQ(s.backstop.period, std::chrono::seconds{3600});
    EXPECT_EQ(s.run_budget.max_mutating_calls, 20u);
    EXPECT_EQ(s.invocation.wall_clock, std::chrono::milliseconds{250});
    ASSERT_EQ(s.invocation.counters.size(), 5u);
    EXPECT_EQ(s.invocation.counters[2].max, 1024u * 1024u);
    EXPECT_EQ(s.invocation.counters[3].max, 64u * 1024u * 1024u);
    EXPECT_EQ(s.invocation.counters[4].max, 50'000'000u);
    EXPECT_EQ(cfg.source_of("rate_limit.write_rps"), config_source::default_value);
}

TEST(limits_config, flag_over_env_over_file_over_default) {
    auto cfg = config::resolve(
        limits_registry(),
        inputs(
            R"({"rate_limit": {"write_rps": 2, "write_burst": 30, "read_rps": 3}, "backstop.max": 50})",
            {{"PREFLIGHT_RATE_LIMIT_WRITE_RPS", "4"}, {"PREFLIGHT_RATE_LIMIT_WRITE_BURST", "40"}},
            {"--rate-limit-write-rps=5", "--rate-limit-cancel-exempt", "false"}
        )
    );
    EXPECT_EQ(cfg.get_number("rate_limit.write_rps"), 5.0);
    EXPECT_EQ(cfg.source_of("rate_limit.write_rps"), config_source::flag);
    EXPECT_EQ(cfg.get_number("rate_limit.write_burst"), 40.0);
    EXPECT_EQ(cfg.source_of("rate_limit.write_burst"), config_source::env);
    EXPECT_EQ(cfg.get_number("rate_limit.read_rps"), 3.0);
    EXPECT_EQ(cfg.source_of("rate_limit.read_rps"), config_source::file);
    EXPECT_EQ(cfg.get_int("backstop.max"), 50);
    EXPECT_FALSE(cfg.get_bool("rate_limit.cancel_exempt"));
    EXPECT_EQ(cfg.get_number("rate_limit.read_burst"), 10.0);
    EXPECT_EQ(cfg.source_of("rate_limit.read_burst"), config_source::default_value);

    // The printed effective configuration round-trips through a file.
    const boost::json::value printed = cfg.to_json();
    EXPECT_EQ(printed.at("rate_limit.write_rps").at("source"), "flag");
    EXPECT_EQ(printed.at("rate_limit.write_burst").at("value"), 40.0);
    boost::json::object as_file;
    for (const auto& [k, v] : printed.as_object()) as_file[k] = v.at("value");
    auto again = config::resolve(limits_registry(), inputs(boost::json::serialize(as_file), {}, {}));
    for (const auto& [k, v] : printed.as_object()) EXPECT_EQ(again.get(k), v.at("value")) << k;
}

struct bad_case {
    const char* what;
    std::optional<std::string> file;
    std::map<std::string, std::string> env;
    std::vector<std::string> args;
    const char* key;
    config_source source;
    const char* message;
};

class bad_input : public ::testing::TestWithParam<bad_case> {};

TEST_P(bad_input, names_key_source_and_value) {
    const auto& c = GetParam();
    try {
        (void)config::resolve(limits_registry(), inputs(c.file, c.env, c.args));
        FAIL() << c.what << ": expected config_error";
    } catch (const config_error& e) {
        EXPECT_EQ(e.key(), c.key) << c.what;
        EXPECT_EQ(e.source(), c.source) << c.what;
        EXPECT_STREQ(e.what(), c.message) << c.what;
    }
}

INSTANTIATE_TEST_SUITE_P(
    each_kind,
    bad_input,
    ::testing::Values(
        bad_case{
            "unknown file key",
            R"({"rate_limit": {"write_rsp": 2}})",
            {},
            {},
            "rate_limit.write_rsp",
            config_source::file,
            "config: rate_limit.write_rsp from file preflight.json: unknown key"},
        bad_case{
            "unknown file section",
            R"({"ratelimit": {"write_rps": 2}})",
            {},
            {},
            "ratelimit",
            config_source::file,
            "config: ratelimit from file preflight.json: unknown key"},
        bad_case{
            "negative in file",
            R"({"rate_limit": {"read_rps": -1}})",
            {},
            {},
            "rate_limit.read_rps",
            config_source::file,
            "config: rate_limit.read_rps = -1 from file preflight.json: must be > 0"},
        bad_case{
            "string in file",
            R"({"backstop": {"max": "many"}})",
            {},
            {},
            "backstop.max",
            config_source::file,
            R"(config: backstop.max = "many" from file preflight.json: must be an integer)"},
        bad_case{
            "burst 0 in env",
            std::nullopt,
            {{"PREFLIGHT_RATE_LIMIT_WRITE_BURST", "0"}},
            {},
            "rate_limit.write_burst",
            config_source::env,
            R"(config: rate_limit.write_burst = "0" from env PREFLIGHT_RATE_LIMIT_WRITE_BURST: must be >= 1)"},
        bad_case{
            "non-numeric env",
            std::nullopt,
            {{"PREFLIGHT_RATE_LIMIT_READ_RPS", "fast"}},
            {},
            "rate_limit.read_rps",
            config_source::env,
            R"(config: rate_limit.read_rps = "fast" from env PREFLIGHT_RATE_LIMIT_READ_RPS: must be a number)"},
        bad_case{
            "unknown env in a known group",
            std::nullopt,
            {{"PREFLIGHT_RATE_LIMIT_WRIT_RPS", "2"}},
            {},
            "rate_limit_writ_rps",
            config_source::env,
            "config: rate_limit_writ_rps from env PREFLIGHT_RATE_LIMIT_WRIT_RPS: unknown key"},
        bad_case{
            "negative flag",
            std::nullopt,
            {},
            {"--rate-limit-write-rps=-3"},
            "rate_limit.write_rps",
            config_source::flag,
            R"(config: rate_limit.write_rps = "-3" from flag --rate-limit-write-rps: must be > 0)"},
        bad_case{
            "bad boolean flag",
            std::nullopt,
            {},
            {"--rate-limit-cancel-exempt=maybe"},
            "rate_limit.cancel_exempt",
            config_source::flag,
            R"(config: rate_limit.cancel_exempt = "maybe" from flag --rate-limit-cancel-exempt: must be a boolean (true/false))"},
        bad_case{
            "unknown flag",
            std::nullopt,
            {},
            {"--rate-limit-burst=3"},
            "rate_limit_burst",
            config_source::flag,
            "config: rate_limit_burst from flag --rate-limit-burst: unknown flag"},
        bad_case{
            "flag without value",
            std::nullopt,
            {},
            {"--backstop-max"},
            "backstop.max",
            config_source::flag,
            "config: backstop.max from flag --backstop-max: needs a value"}
    )
);

TEST(limits_config, unrelated_preflight_variables_are_ignored) {
    auto cfg =
        config::resolve(limits_registry(), inputs(std::nullopt, {{"PREFLIGHT_TEST_PG_URL", "postgres://x"}}, {}));
    EXPECT_EQ(cfg.source_of("rate_limit.read_rps"), config_source::default_value);
}

// Regressions from fuzz/fuzz_config.cpp (docs/reliability.md): host_concurrency was truncated to uint32 by
// settings_from (4294967297 became 1), and a backstop period above 9223372036 s overflowed the fixed window's
// nanoseconds. Both are now rejected with the key, source and value named.
TEST(limits_config, values_that_do_not_fit_their_setting_are_rejected) {
    const auto message_of = [](std::vector<std::string> args) {
        try {
            (void)config::resolve(limits_registry(), inputs(std::nullopt, {}, std::move(args)));
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(
        message_of({"--invocation-host-concurrency=4294967297"}),
        R"(config: invocation.host_concurrency = "4294967297" from flag --invocation-host-concurrency: must be <= 4294967295)"
    );
    EXPECT_EQ(
        message_of({"--backstop-period-s=9223372037"}),
        R"(config: backstop.period_s = "9223372037" from flag --backstop-period-s: must be <= 9223372036)"
    );
    const auto cfg = config::resolve(
        limits_registry(),
        inputs(std::nullopt, {}, {"--invocation-host-concurrency=4294967295", "--backstop-period-s=9223372036"})
    );
    const auto s = preflight::limits::settings_from(cfg);
    EXPECT_EQ(s.invocation.host_concurrency, 4294967295u);
    EXPECT_EQ(s.backstop.period, std::chrono::seconds{9223372036});
}

}  // namespace
