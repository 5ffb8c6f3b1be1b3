#include "run_coro.hpp"
#include <preflight/limits/invocation_limits.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::manual_clock;
using preflight::limits::action_outcome;
using preflight::limits::filter_outcome;
using preflight::limits::hook_policy;
using preflight::limits::invocation_context;
using preflight::limits::invocation_guard;
using preflight::limits::invocation_limits_config;
using preflight::limits::trip_kind;
using preflight::test::run_coro;

namespace {

invocation_context ctx_for(hook_policy p = hook_policy::action) {
    return {"org_7", "before_run", "req-42", p};
}

asio::awaitable<void> tick() {
    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
    co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> wait_an_hour() {
    asio::steady_timer t(co_await asio::this_coro::executor, 1h);
    co_await t.async_wait(asio::use_awaitable);
}

// Charges `amount` to `counter` up to 1000 times, one step per timer tick; counts completed steps.
std::function<asio::awaitable<void>()> charging_body(
    invocation_guard& g, std::string counter, std::uint64_t amount, int& steps
) {
    return [&g, counter, amount, &steps]() -> asio::awaitable<void> {
        for (int i = 0; i < 1000; ++i) {
            (void)g.charge(counter, amount);  // the host ignores the error: cancellation must stop it anyway
            ++steps;
            co_await tick();
        }
    };
}

TEST(invocation_limits, defaults_of_the_plugin_host) {
    const invocation_limits_config d;
    EXPECT_EQ(d.wall_clock, 250ms);
    EXPECT_EQ(d.host_concurrency, 1u);
    std::vector<std::pair<std::string, std::uint64_t>> counters;
    for (const auto& c : d.counters) counters.emplace_back(c.name, c.max);
    const std::vector<std::pair<std::string, std::uint64_t>> want{
        {"http_fetches", 8},
        {"db_queries", 32},
        {"kv_bytes_written", 1024 * 1024},
        {"memory_bytes", 64 * 1024 * 1024},
        {"fuel", 50'000'000},
    };
    EXPECT_EQ(counters, want);
}

TEST(invocation_limits, trip_kinds_have_fixed_names) {
    const std::vector<std::pair<trip_kind, std::string_view>> kinds{
        {trip_kind::wall_clock, "wall_clock"},
        {trip_kind::memory, "memory"},
        {trip_kind::fuel, "fuel"},
        {trip_kind::http_fetches, "http_fetches"},
        {trip_kind::db_queries, "db_queries"},
        {trip_kind::kv_bytes_written, "kv_bytes_written"},
        {trip_kind::host_concurrency, "host_concurrency"},
        {trip_kind::circuit_open, "circuit_open"},
        {trip_kind::custom, "custom"},
    };
    ASSERT_EQ(kinds.size(), preflight::limits::trip_kind_count);
    for (const auto& [k, name] : kinds) EXPECT_EQ(preflight::limits::to_string(k), name);
    EXPECT_EQ(preflight::limits::trip_kind_of("memory_bytes"), trip_kind::memory);
    EXPECT_EQ(preflight::limits::trip_kind_of("fuel"), trip_kind::fuel);
    EXPECT_EQ(preflight::limits::trip_kind_of("wall_clock"), trip_kind::wall_clock);
    EXPECT_EQ(preflight::limits::trip_kind_of("smtp_sends"), trip_kind::custom);
    EXPECT_EQ(preflight::limits::trip_kind_of("memory"), trip_kind::custom);  // the counter is memory_bytes
    EXPECT_EQ(preflight::limits::limit_name(trip_kind::memory), "memory_bytes");
    EXPECT_EQ(preflight::limits::limit_name(trip_kind::custom), "");
}

struct counter_case {
    const char* name;
    std::uint64_t amount;
    std::uint64_t max;
    trip_kind kind;
};

class each_counter : public ::testing::TestWithParam<counter_case> {};

TEST_P(each_counter, trips_alone_cancels_and_records_the_trip) {
    const auto c = GetParam();
    manual_clock clk;  // stands still: only the counter can trip
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    int steps = 0;
    asio::io_context io;
    action_outcome out = run_coro(io, preflight::limits::run_action(g, charging_body(g, c.name, c.amount, steps)));
    const std::uint64_t allowed_steps = c.max / c.amount;
    EXPECT_EQ(steps, static_cast<int>(allowed_steps + 1));  // the step that tripped ran, nothing after it
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_TRUE(out.success);
    EXPECT_TRUE(out.neutral);
    EXPECT_EQ(out.trip->kind, c.kind);
    EXPECT_EQ(out.trip->limit, c.name);
    EXPECT_EQ(out.trip->used, (allowed_steps + 1) * c.amount);
    EXPECT_EQ(out.trip->max, c.max);
    EXPECT_EQ(out.trip->subject, "org_7");
    EXPECT_EQ(out.trip->hook, "before_run");
    EXPECT_EQ(out.trip->request_id, "req-42");
    EXPECT_EQ(out.trip->profile, "default");
    EXPECT_EQ(g.used(c.name), allowed_steps * c.amount);
    // Other counters are untouched, and every later charge fails.
    for (const char* other : {"http_fetches", "db_queries", "kv_bytes_written", "memory_bytes", "fuel"}) {
        if (std::string_view(other) != c.name) {
            EXPECT_EQ(g.used(other), 0u);
        }
    }
    EXPECT_EQ(g.charge("db_queries").error(), preflight::errc::budget_exhausted);
}

INSTANTIATE_TEST_SUITE_P(
    counters,
    each_counter,
    ::testing::Values(
        counter_case{"http_fetches", 1, 8, trip_kind::http_fetches},
        counter_case{"db_queries", 1, 32, trip_kind::db_queries},
        counter_case{"kv_bytes_written", 100 * 1024, 1024 * 1024, trip_kind::kv_bytes_written},
        counter_case{"memory_bytes", 16 * 1024 * 1024, 64 * 1024 * 1024, trip_kind::memory},
        counter_case{"fuel", 10'000'000, 50'000'000, trip_kind::fuel}
    )
);

TEST(invocation_limits, a_counter_of_the_hosts_own_trips_as_custom_with_its_name) {
    manual_clock clk;
    invocation_limits_config lim;
    lim.counters.push_back({"smtp_sends", 2});
    invocation_guard g{lim, ctx_for(), nullptr, clk};
    EXPECT_TRUE(g.charge("smtp_sends", 2).has_value());
    EXPECT_EQ(g.charge("smtp_sends").error(), preflight::errc::budget_exhausted);
    auto t = g.trip_info();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->kind, trip_kind::custom);
    EXPECT_EQ(t->limit, "smtp_sends");
    EXPECT_EQ(t->used, 3u);
}

TEST(invocation_limits, memory_is_a_gauge_the_host_sets) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    constexpr std::uint64_t mib = 1024 * 1024;
    EXPECT_TRUE(g.set_used("memory_bytes", 10 * mib).has_value());
    EXPECT_TRUE(g.set_used("memory_bytes", 60 * mib).has_value());  // a level, not added to the 10 MiB
    EXPECT_EQ(g.used("memory_bytes"), 60 * mib);
    EXPECT_TRUE(g.set_used("memory_bytes", 64 * mib).has_value());  // exactly the limit
    EXPECT_TRUE(g.set_used("memory_bytes", 20 * mib).has_value());  // freed
    EXPECT_EQ(g.set_used("memory_bytes", 64 * mib + 1).error(), preflight::errc::budget_exhausted);
    EXPECT_EQ(g.used("memory_bytes"), 20 * mib);  // nothing stored
    auto t = g.trip_info();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->kind, trip_kind::memory);
    EXPECT_EQ(t->limit, "memory_bytes");
    EXPECT_EQ(t->used, 64 * mib + 1);
    EXPECT_EQ(t->max, 64 * mib);
}

TEST(invocation_limits, wall_clock_runs_on_the_injected_clock_and_trips_at_the_next_host_call) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    clk.advance(249ms);
    EXPECT_TRUE(g.check_wall_clock().has_value());
    EXPECT_TRUE(g.charge("fuel", 1000).has_value());
    clk.advance(1ms);  // 250 ms: the wall clock has run out
    EXPECT_EQ(g.charge("fuel", 1000).error(), preflight::errc::budget_exhausted);
    EXPECT_EQ(g.used("fuel"), 1000u);
    auto t = g.trip_info();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->kind, trip_kind::wall_clock);
    EXPECT_EQ(t->limit, "wall_clock");
    EXPECT_EQ(t->used, 250u);
    EXPECT_EQ(t->max, 250u);
    EXPECT_EQ(g.check_wall_clock().error(), preflight::errc::budget_exhausted);
}

TEST(invocation_limits, wall_clock_trips_on_entering_a_host_call_and_on_a_gauge) {
    {
        manual_clock clk;
        invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
        clk.advance(300ms);
        asio::io_context io;
        const auto ec = run_coro(io, [&]() -> asio::awaitable<boost::system::error_code> {
            auto r = co_await g.enter_host_call();
            co_return r.has_value() ? boost::system::error_code{} : r.error();
        }());
        EXPECT_EQ(ec, preflight::errc::budget_exhausted);
        ASSERT_TRUE(g.tripped());
        EXPECT_EQ(g.trip_info()->kind, trip_kind::wall_clock);
        EXPECT_EQ(g.trip_info()->used, 300u);
    }
    {
        manual_clock clk;
        invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
        clk.advance(250ms);
        EXPECT_EQ(g.set_used("memory_bytes", 1).error(), preflight::errc::budget_exhausted);
        EXPECT_EQ(g.trip_info()->kind, trip_kind::wall_clock);
    }
}

TEST(invocation_limits, the_runs_timer_reads_the_injected_clock) {
    // A manual clock that stands still never runs out, however long the body takes in real time.
    {
        manual_clock clk;
        invocation_limits_config lim;
        lim.wall_clock = 1ms;
        invocation_guard g{lim, ctx_for(), nullptr, clk};
        asio::io_context io;
        int ticks = 0;
        auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                                for (; ticks < 5; ++ticks) co_await tick();  // >= 5 ms real, timer fires repeatedly
                            }));
        EXPECT_EQ(ticks, 5);
        EXPECT_FALSE(out.trip.has_value());
    }
    // Moving it past the wall clock trips the run at the timer's next look, and cancels the body.
    {
        manual_clock clk;
        invocation_limits_config lim;
        lim.wall_clock = 2ms;
        invocation_guard g{lim, ctx_for(), nullptr, clk};
        asio::io_context io;
        bool finished = false;
        auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                                co_await tick();
                                clk.advance(3ms);
                                co_await wait_an_hour();
                                finished = true;
                            }));
        EXPECT_FALSE(finished);
        ASSERT_TRUE(out.trip.has_value());
        EXPECT_EQ(out.trip->kind, trip_kind::wall_clock);
        EXPECT_EQ(out.trip->used, 3u);
        EXPECT_EQ(out.trip->max, 2u);
    }
}

TEST(invocation_limits, wall_clock_trips_and_cancels_a_slow_body_on_the_steady_clock) {
    // The one test on real time: the timer of the run on the process's steady clock.
    invocation_limits_config lim;
    lim.wall_clock = 30ms;
    invocation_guard g{lim, ctx_for()};
    bool finished = false;
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            co_await wait_an_hour();
                            finished = true;
                        }));
    EXPECT_FALSE(finished);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->kind, trip_kind::wall_clock);
    EXPECT_EQ(out.trip->limit, "wall_clock");
    EXPECT_EQ(out.trip->max, 30u);
    EXPECT_GE(out.trip->used, 30u);
}

// A host call that holds its slot for `hold` ticks, logging when it gets in and out.
asio::awaitable<void> host_call(invocation_guard& g, std::string name, int hold, std::vector<std::string>& log) {
    auto scope = co_await g.enter_host_call();
    EXPECT_TRUE(scope.has_value()) << name;
    log.push_back(name + " in");
    EXPECT_EQ(g.host_calls_in_flight(), 1u);
    for (int i = 0; i < hold; ++i) co_await tick();
    log.push_back(name + " out");
}

TEST(invocation_limits, a_second_concurrent_host_call_waits_for_the_first) {
    using namespace asio::experimental::awaitable_operators;
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    std::vector<std::string> log;
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            co_await (host_call(g, "a", 3, log) && host_call(g, "b", 1, log));
                        }));
    EXPECT_FALSE(out.trip.has_value());
    EXPECT_EQ(log, (std::vector<std::string>{"a in", "a out", "b in", "b out"}));
    EXPECT_EQ(g.host_calls_in_flight(), 0u);
}

TEST(invocation_limits, waiting_host_calls_get_in_first_come_first_served) {
    using namespace asio::experimental::awaitable_operators;
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    std::vector<std::string> log;
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            co_await (
                                host_call(g, "a", 2, log) && host_call(g, "b", 1, log) && host_call(g, "c", 1, log) &&
                                host_call(g, "d", 1, log)
                            );
                        }));
    EXPECT_FALSE(out.trip.has_value());
    EXPECT_EQ(log, (std::vector<std::string>{"a in", "a out", "b in", "b out", "c in", "c out", "d in", "d out"}));
}

TEST(invocation_limits, host_concurrency_above_one_lets_that_many_in) {
    manual_clock clk;
    invocation_limits_config lim;
    lim.host_concurrency = 2;
    invocation_guard g{lim, ctx_for(), nullptr, clk};
    asio::io_context io;
    run_coro(io, [&]() -> asio::awaitable<void> {
        auto a = co_await g.enter_host_call();
        auto b = co_await g.enter_host_call();
        EXPECT_TRUE(a.has_value());
        EXPECT_TRUE(b.has_value());
        EXPECT_EQ(g.host_calls_in_flight(), 2u);
        EXPECT_EQ(g.host_calls_waiting(), 0u);
    }());
    EXPECT_EQ(g.host_calls_in_flight(), 0u);
}

TEST(invocation_limits, sequential_host_calls_are_fine) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    asio::io_context io;
    run_coro(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) {
            auto scope = co_await g.enter_host_call();
            EXPECT_TRUE(scope.has_value());
        }
    }());
    EXPECT_FALSE(g.tripped());
}

class each_cancellation_type : public ::testing::TestWithParam<asio::cancellation_type> {};

TEST_P(each_cancellation_type, a_cancelled_wait_leaves_the_queue) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    asio::io_context io;
    asio::cancellation_signal stop;
    bool aborted = false;
    bool got_in = false;
    run_coro(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {
            auto first = co_await g.enter_host_call();
            EXPECT_TRUE(first.has_value());
            asio::co_spawn(
                ex,
                [&]() -> asio::awaitable<void> {
                    // Let partial and total cancellation through to the wait, not only terminal.
                    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
                    try {
                        auto second = co_await g.enter_host_call();
                        got_in = true;
                    } catch (const boost::system::system_error& e) {
                        aborted = e.code() == asio::error::operation_aborted;
                    }
                },
                asio::bind_cancellation_slot(stop.slot(), asio::detached)
            );
            co_await tick();
            EXPECT_EQ(g.host_calls_waiting(), 1u);
            stop.emit(GetParam());
            co_await tick();
            EXPECT_TRUE(aborted);
            EXPECT_EQ(g.host_calls_waiting(), 0u);
        }
        // The slot freed by `first` went to nobody: the next host call gets in at once.
        EXPECT_EQ(g.host_calls_in_flight(), 0u);
        auto third = co_await g.enter_host_call();
        EXPECT_TRUE(third.has_value());
    }());
    EXPECT_FALSE(got_in);
    EXPECT_FALSE(g.tripped());  // a cancellation is not a trip
}

INSTANTIATE_TEST_SUITE_P(
    invocation_limits,
    each_cancellation_type,
    ::testing::Values(
        asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total
    )
);

TEST(invocation_limits, a_trip_wakes_waiting_host_calls) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    asio::io_context io;
    std::optional<boost::system::error_code> second_error;
    run_coro(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto first = co_await g.enter_host_call();
        EXPECT_TRUE(first.has_value());
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
                auto second = co_await g.enter_host_call();
                second_error = second.has_value() ? boost::system::error_code{} : second.error();
            },
            asio::detached
        );
        co_await tick();
        EXPECT_EQ(g.host_calls_waiting(), 1u);
        EXPECT_EQ(g.charge("db_queries", 33).error(), preflight::errc::budget_exhausted);
        co_await tick();
        EXPECT_EQ(g.host_calls_waiting(), 0u);
    }());
    ASSERT_TRUE(second_error.has_value());
    EXPECT_EQ(*second_error, preflight::errc::budget_exhausted);
    EXPECT_EQ(g.host_calls_in_flight(), 0u);
}

TEST(invocation_limits, a_waiting_host_call_is_bounded_by_the_wall_clock) {
    using namespace asio::experimental::awaitable_operators;
    manual_clock clk;
    invocation_limits_config lim;
    lim.wall_clock = 5ms;
    invocation_guard g{lim, ctx_for(), nullptr, clk};
    asio::io_context io;
    std::optional<boost::system::error_code> waiter_error;
    bool held_to_the_end = false;
    auto holder = [&]() -> asio::awaitable<void> {
        auto scope = co_await g.enter_host_call();
        EXPECT_TRUE(scope.has_value());
        co_await tick();
        clk.advance(10ms);  // the wall clock runs out while the holder is in its host call
        co_await wait_an_hour();
        held_to_the_end = true;
    };
    auto waiter = [&]() -> asio::awaitable<void> {
        auto scope = co_await g.enter_host_call();
        waiter_error = scope.has_value() ? boost::system::error_code{} : scope.error();
    };
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            co_await (holder() && waiter());
                        }));
    EXPECT_FALSE(held_to_the_end);
    ASSERT_TRUE(waiter_error.has_value());
    EXPECT_EQ(*waiter_error, preflight::errc::budget_exhausted);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->kind, trip_kind::wall_clock);
    EXPECT_EQ(out.trip->used, 10u);
}

TEST(invocation_limits, two_limits_crossing_at_once_record_exactly_one_trip) {
    for (int round = 0; round < 200; ++round) {
        manual_clock clk;
        invocation_limits_config lim;
        lim.counters = {{"a", 1}, {"b", 1}};
        invocation_guard g{lim, ctx_for(), nullptr, clk};
        std::atomic<int> notified{0};
        g.on_trip = [&](const preflight::limits::trip_record&) { notified.fetch_add(1); };
        std::barrier sync{2};
        auto over = [&](const char* name) {
            sync.arrive_and_wait();
            (void)g.charge(name, 2);
        };
        std::thread ta(over, "a");
        std::thread tb(over, "b");
        ta.join();
        tb.join();
        ASSERT_EQ(notified.load(), 1) << "round " << round;
        auto t = g.trip_info();
        ASSERT_TRUE(t.has_value());
        EXPECT_TRUE(t->limit == "a" || t->limit == "b");
        EXPECT_EQ(t->kind, trip_kind::custom);
    }
}

TEST(invocation_limits, counter_trip_then_wall_clock_keeps_the_first_trip) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    EXPECT_EQ(g.charge("http_fetches", 9).error(), preflight::errc::budget_exhausted);
    clk.advance(1s);
    EXPECT_EQ(g.check_wall_clock().error(), preflight::errc::budget_exhausted);  // not recorded
    EXPECT_FALSE(g.trip(trip_kind::wall_clock, 1000, 250));
    auto t = g.trip_info();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->kind, trip_kind::http_fetches);
    EXPECT_EQ(t->used, 9u);
}

TEST(invocation_limits, a_tripped_guard_does_not_run_its_body) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    EXPECT_TRUE(g.trip(trip_kind::fuel, 51'000'000, 50'000'000));
    bool ran = false;
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            ran = true;
                            co_return;
                        }));
    EXPECT_FALSE(ran);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->kind, trip_kind::fuel);
    EXPECT_EQ(out.trip->limit, "fuel");
}

TEST(invocation_limits, filter_gets_its_input_back_when_a_limit_trips) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(hook_policy::filter), nullptr, clk};
    asio::io_context io;
    boost::json::value input = {{"prompt", "hello"}};
    filter_outcome out = run_coro(
        io,
        preflight::limits::run_filter(
            g,
            input,
            [&](boost::json::value v) -> asio::awaitable<boost::json::value> {
                v.as_object()["prompt"] = "rewritten";
                (void)g.charge("db_queries", 33);
                co_await tick();
                co_return v;
            }
        )
    );
    EXPECT_TRUE(out.neutral);
    EXPECT_EQ(out.value, input);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->kind, trip_kind::db_queries);
    EXPECT_EQ(out.trip->limit, "db_queries");
}

TEST(invocation_limits, filter_output_is_used_when_nothing_trips) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(hook_policy::filter), nullptr, clk};
    asio::io_context io;
    filter_outcome out = run_coro(
        io,
        preflight::limits::run_filter(
            g,
            {{"n", 1}},
            [&](boost::json::value v) -> asio::awaitable<boost::json::value> {
                EXPECT_TRUE(g.charge("http_fetches").has_value());
                co_await tick();
                v.as_object()["n"] = 2;
                co_return v;
            }
        )
    );
    EXPECT_FALSE(out.neutral);
    EXPECT_FALSE(out.trip.has_value());
    EXPECT_EQ(out.value.at("n"), 2);
}

TEST(invocation_limits, action_trip_is_logged_and_reported_as_success) {
    manual_clock clk;
    invocation_context ctx = ctx_for();
    ctx.profile = "batch";
    invocation_guard g{invocation_limits_config{}, ctx, nullptr, clk};
    std::vector<std::string> log;
    g.on_trip = [&](const preflight::limits::trip_record& t) {
        log.push_back(boost::json::serialize(preflight::limits::to_json(t)));
    };
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            (void)g.charge("kv_bytes_written", 2 * 1024 * 1024);
                            co_await tick();
                        }));
    EXPECT_TRUE(out.success);
    EXPECT_TRUE(out.neutral);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(
        log[0],
        R"({"kind":"kv_bytes_written","limit":"kv_bytes_written","used":2097152,"max":1048576,"subject":"org_7","hook":"before_run","request_id":"req-42","profile":"batch"})"
    );
}

TEST(invocation_limits, body_exception_without_trip_propagates) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    asio::io_context io;
    EXPECT_THROW(
        run_coro(
            io,
            preflight::limits::run_action(
                g,
                []() -> asio::awaitable<void> {
                    co_await tick();
                    throw std::runtime_error("hook failed");
                }
            )
        ),
        std::runtime_error
    );
}

TEST(invocation_limits, caller_cancellation_reaches_the_body_and_is_not_a_trip) {
    manual_clock clk;
    invocation_guard g{invocation_limits_config{}, ctx_for(), nullptr, clk};
    asio::io_context io;
    asio::cancellation_signal stop;
    bool finished = false;
    std::exception_ptr result_error;
    bool completed = false;
    asio::co_spawn(
        io,
        preflight::limits::run_action(
            g,
            [&]() -> asio::awaitable<void> {
                co_await wait_an_hour();
                finished = true;
            }
        ),
        asio::bind_cancellation_slot(
            stop.slot(),
            [&](std::exception_ptr e, action_outcome) {
                result_error = e;
                completed = true;
            }
        )
    );
    asio::post(io, [&] { stop.emit(asio::cancellation_type::terminal); });
    io.run();
    EXPECT_TRUE(completed);
    EXPECT_FALSE(finished);
    EXPECT_TRUE(result_error != nullptr);  // the caller sees its cancellation as an error, not a neutral result
    EXPECT_FALSE(g.tripped());
}

TEST(invocation_limits, misuse_throws) {
    invocation_guard g{invocation_limits_config{}, ctx_for()};
    EXPECT_THROW((void)g.charge("smtp_sends"), std::invalid_argument);
    EXPECT_THROW((void)g.set_used("smtp_sends", 1), std::invalid_argument);
    invocation_limits_config bad;
    bad.wall_clock = 0ms;
    try {
        invocation_guard(bad, ctx_for());
        ADD_FAILURE() << "a wall clock of 0 ms was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "invocation.wall_clock_ms must be >= 1, got 0");
    }
    invocation_limits_config dup;
    dup.counters.push_back({"fuel", 1});
    EXPECT_THROW(invocation_guard(dup, ctx_for()), std::invalid_argument);
    invocation_limits_config none;
    none.host_concurrency = 0;
    EXPECT_THROW(invocation_guard(none, ctx_for()), std::invalid_argument);
}

}  // namespace
