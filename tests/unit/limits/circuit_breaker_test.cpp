#include "run_coro.hpp"
#include <preflight/limits/circuit_breaker.hpp>
#include <preflight/limits/invocation_limits.hpp>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <stdexcept>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::manual_clock;
using preflight::limits::circuit_breaker;
using preflight::limits::circuit_breaker_config;
using preflight::limits::invocation_guard;
using preflight::limits::invocation_limits_config;
using preflight::limits::plugin_breakers;
using preflight::limits::trip_kind;
using preflight::test::run_coro;

namespace {

TEST(circuit_breaker, opens_after_n_trips_within_the_window) {
    manual_clock clk;
    circuit_breaker b{circuit_breaker_config{}, clk};  // 5 trips in 60 s, 30 s cool-down
    for (int i = 0; i < 4; ++i) {
        b.record_trip(trip_kind::fuel);
        clk.advance(10s);
    }
    EXPECT_FALSE(b.is_open());
    EXPECT_FALSE(b.try_admit().has_value());
    b.record_trip(trip_kind::wall_clock);  // the 5th within 40 s
    EXPECT_TRUE(b.is_open());
    auto s = b.stats();
    EXPECT_TRUE(s.open);
    EXPECT_EQ(s.opens, 1u);
    EXPECT_EQ(s.trips_of(trip_kind::fuel), 4u);
    EXPECT_EQ(s.trips_of(trip_kind::wall_clock), 1u);
}

TEST(circuit_breaker, trips_spread_wider_than_the_window_do_not_open_it) {
    manual_clock clk;
    circuit_breaker b{circuit_breaker_config{}, clk};
    for (int i = 0; i < 10; ++i) {
        b.record_trip(trip_kind::memory);
        clk.advance(15s);  // at most 4 trips fall within any 60 s
    }
    EXPECT_FALSE(b.is_open());
    EXPECT_EQ(b.stats().opens, 0u);
    EXPECT_EQ(b.stats().trips_of(trip_kind::memory), 10u);
}

TEST(circuit_breaker, refuses_while_open_and_closes_after_the_cool_down) {
    manual_clock clk;
    circuit_breaker b{circuit_breaker_config{.trips = 2, .window = 60s, .cool_down = 30s}, clk};
    b.record_trip(trip_kind::fuel);
    b.record_trip(trip_kind::fuel);
    auto r = b.try_admit();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->retry_after, 30s);
    clk.advance(10s);
    b.record_trip(trip_kind::fuel);  // reported by an invocation that started earlier: does not extend the cool-down
    clk.advance(19s);
    r = b.try_admit();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->retry_after, 1s);
    clk.advance(1s);
    EXPECT_FALSE(b.try_admit().has_value());
    EXPECT_FALSE(b.is_open());
    // Closed with nothing remembered: one trip does not reopen it.
    b.record_trip(trip_kind::fuel);
    EXPECT_FALSE(b.is_open());
    b.record_trip(trip_kind::fuel);
    EXPECT_TRUE(b.is_open());
    auto s = b.stats();
    EXPECT_EQ(s.opens, 2u);
    EXPECT_EQ(s.trips_of(trip_kind::fuel), 5u);
    EXPECT_EQ(s.trips_of(trip_kind::circuit_open), 2u);  // the two refusals
}

TEST(circuit_breaker, an_open_breaker_refuses_an_invocation_at_once) {
    manual_clock clk;
    plugin_breakers breakers{circuit_breaker_config{.trips = 3, .window = 60s, .cool_down = 30s}, clk};
    invocation_limits_config lim;
    lim.counters = {{"fuel", 100}};
    asio::io_context io;
    auto invoke = [&](bool& ran) {
        invocation_guard g{lim, {"summarize", "after_run", "req-1"}, &breakers.for_plugin("summarize"), clk};
        return run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            ran = true;
                            (void)g.charge("fuel", 1000);
                            co_return;
                        }));
    };
    for (int i = 0; i < 3; ++i) {
        bool ran = false;
        auto out = invoke(ran);
        EXPECT_TRUE(ran);
        ASSERT_TRUE(out.trip.has_value());
        EXPECT_EQ(out.trip->kind, trip_kind::fuel);
        clk.advance(1s);
    }
    bool ran = false;
    auto out = invoke(ran);
    EXPECT_FALSE(ran);
    EXPECT_TRUE(out.neutral);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->kind, trip_kind::circuit_open);
    EXPECT_EQ(out.trip->limit, "circuit_open");
    EXPECT_EQ(out.trip->used, 3u);
    EXPECT_EQ(out.trip->max, 3u);
    EXPECT_EQ(out.trip->retry_after, 29s);  // opened 1 s ago
    EXPECT_EQ(
        boost::json::serialize(preflight::limits::to_json(*out.trip)),
        R"({"kind":"circuit_open","limit":"circuit_open","used":3,"max":3,"subject":"summarize","hook":"after_run","request_id":"req-1","profile":"default","retry_after_ms":29000})"
    );
    // Other plugins are not affected.
    EXPECT_FALSE(breakers.for_plugin("rewrite").is_open());

    auto stats = breakers.stats();
    ASSERT_EQ(stats.size(), 2u);
    EXPECT_EQ(stats[0].first, "rewrite");
    EXPECT_EQ(stats[1].first, "summarize");
    EXPECT_EQ(stats[1].second.trips_of(trip_kind::fuel), 3u);
    EXPECT_EQ(stats[1].second.trips_of(trip_kind::circuit_open), 1u);
    EXPECT_EQ(stats[1].second.opens, 1u);
    EXPECT_TRUE(stats[1].second.open);

    // After the cool-down the plugin runs again.
    clk.advance(29s);
    ran = false;
    out = invoke(ran);
    EXPECT_TRUE(ran);
    EXPECT_EQ(out.trip->kind, trip_kind::fuel);
}

TEST(circuit_breaker, prometheus_text_counts_trips_per_kind_and_opens) {
    manual_clock clk;
    plugin_breakers breakers{circuit_breaker_config{.trips = 1, .window = 60s, .cool_down = 30s}, clk};
    breakers.for_plugin("a\"b").record_trip(trip_kind::wall_clock);  // opens: one trip is enough
    (void)breakers.for_plugin("a\"b").try_admit();                   // refused
    (void)breakers.for_plugin("c");
    const std::string want =
        "# HELP preflight_invocation_trips_total Invocation limit trips per plugin and kind.\n"
        "# TYPE preflight_invocation_trips_total counter\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"wall_clock\"} 1\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"memory\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"fuel\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"http_fetches\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"db_queries\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"kv_bytes_written\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"host_concurrency\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"circuit_open\"} 1\n"
        "preflight_invocation_trips_total{plugin=\"a\\\"b\",kind=\"custom\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"wall_clock\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"memory\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"fuel\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"http_fetches\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"db_queries\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"kv_bytes_written\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"host_concurrency\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"circuit_open\"} 0\n"
        "preflight_invocation_trips_total{plugin=\"c\",kind=\"custom\"} 0\n"
        "# HELP preflight_invocation_circuit_opens_total Times a plugin's circuit breaker opened.\n"
        "# TYPE preflight_invocation_circuit_opens_total counter\n"
        "preflight_invocation_circuit_opens_total{plugin=\"a\\\"b\"} 1\n"
        "preflight_invocation_circuit_opens_total{plugin=\"c\"} 0\n"
        "# HELP preflight_invocation_circuit_open 1 while a plugin's circuit breaker is open.\n"
        "# TYPE preflight_invocation_circuit_open gauge\n"
        "preflight_invocation_circuit_open{plugin=\"a\\\"b\"} 1\n"
        "preflight_invocation_circuit_open{plugin=\"c\"} 0\n";
    EXPECT_EQ(breakers.prometheus_text(), want);
}

TEST(circuit_breaker, a_bad_configuration_throws) {
    EXPECT_THROW(circuit_breaker(circuit_breaker_config{.trips = 0}), std::invalid_argument);
    EXPECT_THROW(circuit_breaker(circuit_breaker_config{.window = 0ms}), std::invalid_argument);
    EXPECT_THROW(plugin_breakers(circuit_breaker_config{.cool_down = -1ms}), std::invalid_argument);
}

}  // namespace
