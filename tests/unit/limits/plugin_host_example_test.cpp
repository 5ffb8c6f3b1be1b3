// The plugin host example (examples/plugin_host/): its demo logic, run on the example's own plugins.json.
#include "plugin_host.hpp"
#include "source_paths.hpp"
#include <preflight/core/config.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

struct demo_output {
    std::vector<json::value> events;  // the JSON lines
    std::string prometheus;           // the rest
};

demo_output run_demo(std::vector<std::string> flags = {}) {
    preflight::config_inputs in;
    in.file_name = "plugins.json";
    in.environment = std::vector<std::string>{};  // the caller's PREFLIGHT_… variables stay out of the test
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    in.args = std::move(flags);
    std::ostringstream out;
    preflight::examples::run_plugin_host_demo(
        preflight::load_config_file(std::string(preflight::test::source_dir) + "/examples/plugin_host/plugins.json"),
        std::move(in),
        out
    );
    demo_output r;
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("{")) {
            r.events.push_back(json::parse(line));
        } else {
            r.prometheus += line + "\n";
        }
    }
    return r;
}

TEST(invocation_limits_example, plugin_host_trips_the_wall_clock_burns_fuel_and_opens_the_breaker) {
    const auto out = run_demo();
    ASSERT_EQ(out.events.size(), 7u);

    // The profiles the manifests name, from the file's config; unset keys inherit the default profile.
    const auto& profiles = out.events[0].at("profiles");
    EXPECT_EQ(profiles.at("interactive").at("wall_clock_ms"), 50);
    EXPECT_EQ(profiles.at("interactive").at("http_fetches"), 2);
    EXPECT_EQ(profiles.at("interactive").at("fuel"), 50'000'000);
    EXPECT_EQ(profiles.at("batch").at("fuel"), 1'000'000);
    EXPECT_EQ(profiles.at("default").at("wall_clock_ms"), 250);
    EXPECT_EQ(profiles.at("default").at("memory_bytes"), 64 * 1024 * 1024);

    // The filter hook: two host calls one after the other, then its wall clock trips; the host gets the input back.
    const auto& filter = out.events[1];
    EXPECT_EQ(filter.at("plugin"), "rewrite_prompt");
    EXPECT_EQ(filter.at("neutral"), true);
    EXPECT_EQ(filter.at("output"), json::parse(R"({"prompt":"hello"})"));
    EXPECT_EQ(filter.at("fetches"), 2);
    EXPECT_EQ(filter.at("max_host_calls_in_flight"), 1);
    EXPECT_EQ(filter.at("trip").at("kind"), "wall_clock");
    EXPECT_EQ(filter.at("trip").at("profile"), "interactive");
    EXPECT_EQ(filter.at("trip").at("max"), 50);
    EXPECT_GE(filter.at("trip").at("used").to_number<std::int64_t>(), 50);

    // The action hook runs out of fuel three times; the third trip opens the breaker, the fourth run is refused.
    for (int i = 2; i <= 4; ++i) {
        const auto& a = out.events[static_cast<std::size_t>(i)];
        EXPECT_EQ(a.at("plugin"), "summarize") << i;
        EXPECT_EQ(a.at("ran"), true) << i;
        EXPECT_EQ(a.at("success"), true) << i;
        EXPECT_EQ(a.at("fuel_used"), 900'000) << i;
        EXPECT_EQ(a.at("trip").at("kind"), "fuel") << i;
        EXPECT_EQ(a.at("trip").at("used"), 1'200'000) << i;
        EXPECT_EQ(a.at("trip").at("max"), 1'000'000) << i;
    }
    const auto& refused = out.events[5];
    EXPECT_EQ(refused.at("ran"), false);
    EXPECT_EQ(refused.at("neutral"), true);
    EXPECT_EQ(refused.at("trip").at("kind"), "circuit_open");
    EXPECT_EQ(refused.at("trip").at("subject"), "summarize");
    const auto retry = refused.at("trip").at("retry_after_ms").to_number<std::int64_t>();
    EXPECT_GT(retry, 0);
    EXPECT_LE(retry, 30'000);

    const auto& metrics = out.events[6].at("plugins");
    EXPECT_EQ(metrics, json::parse(R"([
            {"plugin":"rewrite_prompt","trips":{"wall_clock":1},"opens":0,"open":false},
            {"plugin":"summarize","trips":{"fuel":3,"circuit_open":1},"opens":1,"open":true}
        ])"));
    EXPECT_NE(
        out.prometheus.find("preflight_invocation_trips_total{plugin=\"summarize\",kind=\"fuel\"} 3\n"),
        std::string::npos
    ) << out.prometheus;
    EXPECT_NE(
        out.prometheus.find("preflight_invocation_circuit_opens_total{plugin=\"summarize\"} 1\n"), std::string::npos
    );
    EXPECT_NE(out.prometheus.find("preflight_invocation_circuit_open{plugin=\"summarize\"} 1\n"), std::string::npos);
}

TEST(invocation_limits_example, a_flag_overrides_a_profile_key) {
    const auto out = run_demo({"--invocation-profiles-batch-fuel=500000", "--invocation-breaker-trips=1"});
    ASSERT_EQ(out.events.size(), 5u);  // profiles, filter, one fuel trip, one refusal, metrics
    EXPECT_EQ(out.events[0].at("profiles").at("batch").at("fuel"), 500'000);
    EXPECT_EQ(out.events[2].at("trip").at("kind"), "fuel");
    EXPECT_EQ(out.events[2].at("trip").at("used"), 600'000);
    EXPECT_EQ(out.events[3].at("trip").at("kind"), "circuit_open");
}

}  // namespace
