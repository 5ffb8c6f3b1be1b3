// Precedence property: >= 1000 seeded trials through the real coroutine pipeline with Asio timers.
#include "gates_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <run_coro.hpp>
#include <vector>

using namespace preflight::test;
using preflight::errc;
using preflight::result;

namespace {

struct gate_plan {
    std::chrono::milliseconds latency{0};
    act action = act::pass;
    int status = 403;
    g::failure_policy policy = g::failure_policy::fail_closed;
    bool shadow = false;
};

/// The sequential oracle: evaluate gates one after another in declaration order.
expected oracle(const std::vector<gate_plan>& plans) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const auto& p = plans[i];
        if (p.shadow) continue;
        const auto name = "g" + std::to_string(i);
        switch (p.action) {
            case act::pass: break;
            case act::deny: return {false, name, p.status};
            case act::error:
            case act::hang:  // hang = time budget exceeded
                if (p.policy == g::failure_policy::fail_closed) return {false, name, 503};
                break;
        }
    }
    return {};
}

}  // namespace

TEST(pipeline_property, decision_equals_sequential_oracle_for_random_latencies_and_outcomes) {
    constexpr int trials = 1200;
    std::mt19937 rng(20261123);
    asio::io_context ctx;
    int denied_trials = 0;
    for (int trial = 0; trial < trials; ++trial) {
        std::vector<gate_plan> plans(4);
        std::vector<std::shared_ptr<probe>> probes;
        g::pipeline_builder b;
        for (std::size_t i = 0; i < plans.size(); ++i) {
            auto& p = plans[i];
            p.latency = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng));
            const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
            p.action = roll < 55 ? act::pass : roll < 80 ? act::deny : roll < 93 ? act::error : act::hang;
            p.status = std::array<int, 3>{403, 402, 429}[std::uniform_int_distribution<int>(0, 2)(rng)];
            p.policy = std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? g::failure_policy::fail_open
                                                                          : g::failure_policy::fail_closed;
            p.shadow = std::uniform_int_distribution<int>(0, 9)(rng) == 0;
            probes.push_back(std::make_shared<probe>());
            auto spec = scripted_gate("g" + std::to_string(i), probes.back(), p.latency, p.action, p.status, p.policy);
            spec.shadow = p.shadow;
            // Some gates answer on the synchronous fast path (same outcome), some decline it.
            const int fast = std::uniform_int_distribution<int>(0, 3)(rng);
            if (fast == 0 && p.latency.count() == 0 && p.action != act::hang) {
                spec.try_check = [a = p.action, st = p.status](g::gate_context&) -> std::optional<result<g::verdict>> {
                    if (a == act::pass) return g::verdict::pass();
                    if (a == act::deny)
                        return g::verdict::deny(g::denial{st, "denied", "no", std::nullopt, std::nullopt});
                    return result<g::verdict>{make_error_code(errc::store_unavailable)};
                };
            } else if (fast == 1) {
                spec.try_check = [](g::gate_context&) -> std::optional<result<g::verdict>> { return std::nullopt; };
            }
            spec.budget = p.action == act::hang ? 4ms : 10s;
            b.add_gate(spec);
        }
        auto pipeline = b.build();
        // Odd trials run on a caller's strand (the run stays on it), even ones on the plain executor (the run
        // makes its own strand).
        auto d =
            trial % 2 == 1
                ? run_coro(
                      ctx,
                      [&]() -> asio::awaitable<g::decision> {
                          g::request req;  // named: g++ 12 mishandles a temporary request inside a co_await operand
                          auto result = co_await asio::co_spawn(
                              asio::make_strand(ctx), pipeline.run(std::move(req)), asio::use_awaitable
                          );
                          co_return result;
                      }()
                  )
                : run_coro(ctx, pipeline.run(g::request{}));
        const auto want = oracle(plans);
        ASSERT_EQ(d.allowed, want.allowed) << "trial " << trial;
        ASSERT_EQ(d.gate, want.gate) << "trial " << trial;
        ASSERT_EQ(d.status, want.status) << "trial " << trial;
        if (!d.allowed) ++denied_trials;
        // Every started gate either finished or observed its cancellation (none is left running).
        for (std::size_t i = 0; i < plans.size(); ++i) {
            const auto& t = d.trace[i];
            if (t.outcome == g::gate_outcome::timeout) {
                ASSERT_EQ(probes[i]->cancelled, 1) << "trial " << trial << " gate " << i;
            }
            if (t.outcome == g::gate_outcome::cancelled) {
                // Cancelled while waiting, or its timer had already fired when the cancellation came (a race
                // Asio resolves in favour of the completed operation): either way it ended.
                ASSERT_EQ(probes[i]->cancelled + probes[i]->finished, 1) << "trial " << trial << " gate " << i;
            }
            if (t.outcome == g::gate_outcome::skipped) {
                ASSERT_EQ(probes[i]->calls, 0);
            }
        }
    }
    // The random mix exercises both results.
    EXPECT_GT(denied_trials, trials / 4);
    EXPECT_LT(denied_trials, trials);
}
