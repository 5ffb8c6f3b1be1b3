#include <preflight/limits/invocation_profiles.hpp>
#include <preflight/limits/limits_config.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <map>

using namespace std::chrono_literals;
using preflight::config;
using preflight::config_error;
using preflight::config_inputs;
using preflight::config_registry;
using preflight::limits::invocation_limits_config;
using preflight::limits::invocation_profiles;
using preflight::limits::limits_profile_error;
using preflight::limits::plugin_manifest;

namespace {

std::uint64_t counter_max(const invocation_limits_config& l, std::string_view name) {
    for (const auto& c : l.counters) {
        if (c.name == name) return c.max;
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
}

// The message of the limits_profile_error `f` throws (empty when it throws none).
template <class F>
std::string profile_error_of(F f) {
    try {
        f();
    } catch (const limits_profile_error& e) {
        return e.what();
    }
    return {};
}

TEST(invocation_profiles, default_is_always_there_and_others_are_added_by_name) {
    invocation_profiles p;
    EXPECT_EQ(p.names(), std::vector<std::string>{"default"});
    ASSERT_NE(p.find("default"), nullptr);
    EXPECT_EQ(p.at("default").wall_clock, 250ms);
    invocation_limits_config batch;
    batch.wall_clock = 2s;
    batch.counters = {{"fuel", 500'000'000}};
    p.add("batch", batch);
    EXPECT_EQ(p.at("batch").wall_clock, 2s);
    EXPECT_EQ(p.for_manifest(plugin_manifest{"summarize", "batch"}).wall_clock, 2s);
    EXPECT_EQ(p.for_manifest(plugin_manifest{"rewrite"}).wall_clock, 250ms);  // a manifest without a profile
    EXPECT_EQ(p.find("bacth"), nullptr);
    EXPECT_EQ(p.names(), (std::vector<std::string>{"batch", "default"}));
}

TEST(invocation_profiles, an_unknown_profile_is_a_typed_error_naming_it) {
    invocation_profiles p;
    p.add("batch", {});
    try {
        (void)p.for_manifest(plugin_manifest{"summarize", "bacth"});
        ADD_FAILURE() << "no error";
    } catch (const limits_profile_error& e) {
        EXPECT_EQ(e.profile(), "bacth");
        EXPECT_EQ(e.field(), "");
        EXPECT_STREQ(e.what(), "invocation profile 'bacth' is not defined (defined: batch, default)");
    }
}

TEST(invocation_profiles, bad_profiles_are_typed_errors_naming_profile_field_and_value) {
    invocation_profiles p;
    invocation_limits_config zero;
    zero.wall_clock = 0ms;
    try {
        p.add("strict", zero);
        ADD_FAILURE() << "no error";
    } catch (const limits_profile_error& e) {
        EXPECT_EQ(e.profile(), "strict");
        EXPECT_EQ(e.field(), "wall_clock_ms");
        EXPECT_EQ(e.value(), "0");
        EXPECT_STREQ(e.what(), "invocation profile 'strict': wall_clock_ms = 0: must be >= 1");
    }
    invocation_limits_config dup;
    dup.counters = {{"fuel", 1}, {"fuel", 2}};
    EXPECT_EQ(
        profile_error_of([&] { p.add("dup", dup); }), "invocation profile 'dup': counters = 'fuel': is duplicated"
    );
    EXPECT_EQ(profile_error_of([&] { p.add("default", {}); }), "invocation profile 'default' is defined twice");
    EXPECT_EQ(
        profile_error_of([&] { p.add("Batch!", {}); }),
        "invocation profile 'Batch!' has a malformed name (lower-case letters, digits and '_' only)"
    );
    EXPECT_EQ(p.names(), std::vector<std::string>{"default"});       // nothing was added
    EXPECT_THROW(invocation_profiles{zero}, std::invalid_argument);  // limits_profile_error is an invalid_argument
}

config_inputs profile_inputs(std::optional<std::string> file, std::map<std::string, std::string> env = {}) {
    config_inputs in;
    if (file) in.file = boost::json::parse(*file);
    in.file_name = "plugins.json";
    in.getenv = [env](const std::string& n) -> std::optional<std::string> {
        auto it = env.find(n);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    std::vector<std::string> present;
    for (const auto& [k, v] : env) present.push_back(k + "=" + v);
    in.environment = present;
    return in;
}

config_registry host_registry(std::vector<std::string> profiles) {
    config_registry r;
    preflight::limits::register_config(r);
    for (const auto& p : profiles) preflight::limits::register_invocation_profile(r, p);
    return r;
}

TEST(invocation_profiles, config_keys_of_the_default_profile_and_the_breaker) {
    const auto cfg = config::resolve(host_registry({}), profile_inputs(std::nullopt));
    EXPECT_EQ(cfg.get_int("invocation.wall_clock_ms"), 250);
    EXPECT_EQ(cfg.get_int("invocation.memory_bytes"), 64 * 1024 * 1024);
    EXPECT_EQ(cfg.get_int("invocation.fuel"), 50'000'000);
    const auto s = preflight::limits::settings_from(cfg);
    EXPECT_EQ(s.invocation.wall_clock, 250ms);
    EXPECT_EQ(counter_max(s.invocation, "memory_bytes"), 64u * 1024 * 1024);
    EXPECT_EQ(counter_max(s.invocation, "fuel"), 50'000'000u);
    EXPECT_EQ(s.profiles.names(), std::vector<std::string>{"default"});
    EXPECT_EQ(s.breaker.trips, 5u);
    EXPECT_EQ(s.breaker.window, 60s);
    EXPECT_EQ(s.breaker.cool_down, 30s);
}

TEST(invocation_profiles, the_old_deadline_key_is_unknown) {
    try {
        (void)config::resolve(host_registry({}), profile_inputs(R"({"invocation": {"deadline_ms": 100}})"));
        ADD_FAILURE() << "no error";
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(), "config: invocation.deadline_ms from file plugins.json: unknown key");
    }
}

TEST(invocation_profiles, a_profile_sets_some_keys_and_inherits_the_rest_from_default) {
    const auto cfg = config::resolve(
        host_registry({"interactive", "batch"}),
        profile_inputs(
            R"({"invocation": {"fuel": 1000000, "http_fetches": 4,
                               "profiles": {"interactive": {"wall_clock_ms": 50},
                                            "batch": {"wall_clock_ms": 5000, "fuel": 900000000}}}})",
            {{"PREFLIGHT_INVOCATION_PROFILES_BATCH_DB_QUERIES", "128"}}
        )
    );
    const auto s = preflight::limits::settings_from(cfg);
    EXPECT_EQ(s.profiles.names(), (std::vector<std::string>{"batch", "default", "interactive"}));
    const auto& interactive = s.profiles.at("interactive");
    EXPECT_EQ(interactive.wall_clock, 50ms);
    EXPECT_EQ(counter_max(interactive, "fuel"), 1'000'000u);  // the default profile's configured value
    EXPECT_EQ(counter_max(interactive, "http_fetches"), 4u);
    EXPECT_EQ(counter_max(interactive, "db_queries"), 32u);
    const auto& batch = s.profiles.at("batch");
    EXPECT_EQ(batch.wall_clock, 5000ms);
    EXPECT_EQ(counter_max(batch, "fuel"), 900'000'000u);
    EXPECT_EQ(counter_max(batch, "db_queries"), 128u);  // from the environment
    EXPECT_EQ(counter_max(batch, "memory_bytes"), 64u * 1024 * 1024);
    EXPECT_EQ(s.profiles.at("default").wall_clock, 250ms);
}

TEST(invocation_profiles, config_errors_name_the_profile_key_and_value) {
    auto message_of = [](const std::vector<std::string>& profiles, const std::string& file) {
        try {
            (void)config::resolve(host_registry(profiles), profile_inputs(file));
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_EQ(
        message_of({"batch"}, R"({"invocation": {"profiles": {"batch": {"wall_clock_ms": 0}}}})"),
        "config: invocation.profiles.batch.wall_clock_ms = 0 from file plugins.json: must be >= 1"
    );
    EXPECT_EQ(
        message_of({"batch"}, R"({"invocation": {"profiles": {"bacth": {"fuel": 1}}}})"),
        "config: invocation.profiles.bacth from file plugins.json: unknown key"
    );
    EXPECT_EQ(
        message_of({}, R"({"invocation": {"breaker": {"trips": 0}}})"),
        "config: invocation.breaker.trips = 0 from file plugins.json: must be >= 1"
    );
}

TEST(invocation_profiles, registering_a_profile_checks_its_name) {
    config_registry r;
    preflight::limits::register_config(r);
    EXPECT_EQ(
        profile_error_of([&] { preflight::limits::register_invocation_profile(r, "default"); }),
        "invocation profile 'default' is the invocation.* keys, not invocation.profiles.*"
    );
    EXPECT_EQ(
        profile_error_of([&] { preflight::limits::register_invocation_profile(r, "a.b"); }),
        "invocation profile 'a.b' has a malformed name (lower-case letters, digits and '_' only)"
    );
    preflight::limits::register_invocation_profile(r, "batch");
    EXPECT_EQ(
        profile_error_of([&] { preflight::limits::register_invocation_profile(r, "batch"); }),
        "invocation profile 'batch' is registered twice"
    );
    EXPECT_NE(r.find("invocation.profiles.batch.memory_bytes"), nullptr);
}

}  // namespace
