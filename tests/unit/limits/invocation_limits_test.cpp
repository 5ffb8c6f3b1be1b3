#include "run_coro.hpp"
#include <preflight/limits/invocation_limits.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::limits::action_outcome;
using preflight::limits::filter_outcome;
using preflight::limits::hook_policy;
using preflight::limits::invocation_context;
using preflight::limits::invocation_guard;
using preflight::limits::invocation_limits_config;
using preflight::test::run_coro;

namespace {

invocation_context ctx_for(hook_policy p = hook_policy::action) {
    return {"org_7", "before_run", "req-42", p};
}

asio::awaitable<void> tick() {
    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
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

struct counter_case {
    const char* name;
    std::uint64_t amount;
    std::uint64_t max;
};

class each_counter : public ::testing::TestWithParam<counter_case> {};

TEST_P(each_counter, trips_alone_cancels_and_records_the_trip) {
    const auto c = GetParam();
    invocation_guard g{invocation_limits_config{}, ctx_for()};
    int steps = 0;
    asio::io_context io;
    action_outcome out = run_coro(io, preflight::limits::run_action(g, charging_body(g, c.name, c.amount, steps)));
    const std::uint64_t allowed_steps = c.max / c.amount;
    EXPECT_EQ(steps, static_cast<int>(allowed_steps + 1));  // the step that tripped ran, nothing after it
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_TRUE(out.success);
    EXPECT_TRUE(out.neutral);
    EXPECT_EQ(out.trip->limit, c.name);
    EXPECT_EQ(out.trip->used, (allowed_steps + 1) * c.amount);
    EXPECT_EQ(out.trip->max, c.max);
    EXPECT_EQ(out.trip->subject, "org_7");
    EXPECT_EQ(out.trip->hook, "before_run");
    EXPECT_EQ(out.trip->request_id, "req-42");
    EXPECT_EQ(g.used(c.name), allowed_steps * c.amount);
    // Other counters are untouched, and every later charge fails.
    for (const char* other : {"http_fetches", "db_queries", "kv_bytes_written"}) {
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
        counter_case{"http_fetches", 1, 8},
        counter_case{"db_queries", 1, 32},
        counter_case{"kv_bytes_written", 100 * 1024, 1024 * 1024}
    )
);

TEST(invocation_limits, deadline_trips_and_cancels_a_slow_body) {
    invocation_limits_config lim;
    lim.deadline = 30ms;
    invocation_guard g{lim, ctx_for()};
    bool finished = false;
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            asio::steady_timer t(co_await asio::this_coro::executor, 1h);
                            co_await t.async_wait(asio::use_awaitable);
                            finished = true;
                        }));
    EXPECT_FALSE(finished);
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->limit, "deadline");
    EXPECT_EQ(out.trip->max, 30u);
    EXPECT_GE(out.trip->used, 30u);
}

TEST(invocation_limits, second_host_call_in_flight_trips_concurrency) {
    invocation_guard g{invocation_limits_config{}, ctx_for()};
    asio::io_context io;
    auto out = run_coro(io, preflight::limits::run_action(g, [&]() -> asio::awaitable<void> {
                            auto first = g.enter_host_call();
                            EXPECT_TRUE(first.has_value());
                            auto second = g.enter_host_call();
                            EXPECT_EQ(second.error(), preflight::errc::budget_exhausted);
                            co_await tick();
                            ADD_FAILURE() << "the body must be cancelled after the trip";
                        }));
    ASSERT_TRUE(out.trip.has_value());
    EXPECT_EQ(out.trip->limit, "host_concurrency");
    EXPECT_EQ(out.trip->used, 2u);
    EXPECT_EQ(out.trip->max, 1u);
}

TEST(invocation_limits, sequential_host_calls_are_fine) {
    invocation_guard g{invocation_limits_config{}, ctx_for()};
    for (int i = 0; i < 5; ++i) {
        auto scope = g.enter_host_call();
        ASSERT_TRUE(scope.has_value());
    }
    EXPECT_FALSE(g.tripped());
}

TEST(invocation_limits, two_limits_crossing_at_once_record_exactly_one_trip) {
    for (int round = 0; round < 200; ++round) {
        invocation_limits_config lim;
        lim.counters = {{"a", 1}, {"b", 1}};
        invocation_guard g{lim, ctx_for()};
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
    }
}

TEST(invocation_limits, counter_trip_then_deadline_keeps_the_first_trip) {
    invocation_guard g{invocation_limits_config{}, ctx_for()};
    EXPECT_EQ(g.charge("http_fetches", 9).error(), preflight::errc::budget_exhausted);
    EXPECT_FALSE(g.trip("deadline", 5000, 5000));  // the deadline fires afterwards: not recorded
    auto t = g.trip_info();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->limit, "http_fetches");
    EXPECT_EQ(t->used, 9u);
}

TEST(invocation_limits, filter_gets_its_input_back_when_a_limit_trips) {
    invocation_guard g{invocation_limits_config{}, ctx_for(hook_policy::filter)};
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
    EXPECT_EQ(out.trip->limit, "db_queries");
}

TEST(invocation_limits, filter_output_is_used_when_nothing_trips) {
    invocation_guard g{invocation_limits_config{}, ctx_for(hook_policy::filter)};
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
    invocation_guard g{invocation_limits_config{}, ctx_for()};
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
        R"({"limit":"kv_bytes_written","used":2097152,"max":1048576,"subject":"org_7","hook":"before_run","request_id":"req-42"})"
    );
}

TEST(invocation_limits, body_exception_without_trip_propagates) {
    invocation_guard g{invocation_limits_config{}, ctx_for()};
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
    invocation_guard g{invocation_limits_config{}, ctx_for()};
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
                asio::steady_timer t(co_await asio::this_coro::executor, 1h);
                co_await t.async_wait(asio::use_awaitable);
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
    invocation_limits_config bad;
    bad.deadline = 0ms;
    EXPECT_THROW(invocation_guard(bad, ctx_for()), std::invalid_argument);
}

}  // namespace
