// The speculative stateful phase (pipeline_config::speculative_stateful): same decision as the sequential phase,
// every pass undone after a denial, every stateful gate and the commit started together.
#include "gates_support.hpp"
#include <preflight/gates/pipeline.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <optional>
#include <random>
#include <run_coro.hpp>
#include <vector>

using namespace preflight::test;
using preflight::errc;
using preflight::result;

namespace {

/// A store shared by the stateful gates and the commit of one trial: net consumes per gate, leases held.
/// Single-threaded use (one io_context thread).
struct spec_store {
    std::map<std::string, int> net;  // consumes minus refunds, per gate
    int leases_held = 0;
    int releases = 0;
    int refunds = 0;
};

struct step {
    std::chrono::milliseconds latency{0};
    act action = act::pass;
    g::failure_policy policy = g::failure_policy::fail_closed;
    bool shadow = false;
    bool inline_answer = false;  // answered by try_check
};

g::denial make_denial(int status) {
    return g::denial{status, "denied_" + std::to_string(status), "no", std::nullopt, std::nullopt};
}

/// A scripted check that consumes (stateful) or reserves a lease (commit) when it passes.
asio::awaitable<result<g::verdict>> consuming(std::shared_ptr<spec_store> s, std::string name, step st, bool commit) {
    if (st.latency.count() > 0 || st.action == act::hang) {
        asio::steady_timer t(
            co_await asio::this_coro::executor, st.action == act::hang ? std::chrono::hours(1) : st.latency
        );
        auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return make_error_code(errc::cancelled);  // cancelled before it consumed anything
    }
    switch (st.action) {
        case act::pass:
            if (commit) {
                ++s->leases_held;
                co_return g::verdict::pass_with_lease("lease_" + name, [s]() -> asio::awaitable<result<void>> {
                    --s->leases_held;
                    ++s->releases;
                    co_return result<void>{};
                });
            }
            ++s->net[name];
            co_return g::verdict::pass();
        case act::deny: co_return g::verdict::deny(make_denial(429));
        default: co_return make_error_code(errc::store_unavailable);
    }
}

g::gate_spec consuming_gate(std::shared_ptr<spec_store> s, std::string name, step st, bool commit) {
    g::gate_spec spec;
    spec.name = name;
    spec.phase = commit ? g::phase::commit : g::phase::stateful;
    spec.on_failure = st.policy;
    spec.shadow = st.shadow;
    spec.budget = st.action == act::hang ? std::chrono::milliseconds(4) : std::chrono::milliseconds(10000);
    spec.check = [s, name, st, commit](g::gate_context&) { return consuming(s, name, st, commit); };
    if (st.inline_answer && st.latency.count() == 0 && st.action != act::hang) {
        spec.try_check = [s, name, st, commit](g::gate_context&) -> std::optional<result<g::verdict>> {
            switch (st.action) {
                case act::pass:
                    if (commit) {
                        ++s->leases_held;
                        return g::verdict::pass_with_lease("lease_" + name, [s]() -> asio::awaitable<result<void>> {
                            --s->leases_held;
                            ++s->releases;
                            co_return result<void>{};
                        });
                    }
                    ++s->net[name];
                    return g::verdict::pass();
                case act::deny: return g::verdict::deny(make_denial(429));
                default: return result<g::verdict>{make_error_code(errc::store_unavailable)};
            }
        };
    }
    if (!commit) {
        spec.compensate = [s, name](const g::request&) -> asio::awaitable<result<void>> {
            --s->net[name];
            ++s->refunds;
            co_return result<void>{};
        };
    }
    return spec;
}

/// The sequential oracle over the stateful gates then the commit, in declaration order.
expected oracle(const std::vector<step>& steps, const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& p = steps[i];
        if (p.shadow) continue;
        switch (p.action) {
            case act::pass: break;
            case act::deny: return {false, names[i], 429};
            case act::error:
            case act::hang:
                if (p.policy == g::failure_policy::fail_closed) return {false, names[i], 503};
                break;
        }
    }
    return {};
}

g::pipeline_config speculative_config() {
    g::pipeline_config c;
    c.speculative_stateful = true;
    return c;
}

}  // namespace

TEST(speculative, decision_equals_sequential_oracle_and_denials_leave_no_consume_or_lease) {
    constexpr int trials = 1200;
    std::mt19937 rng(20261123);
    asio::io_context ctx;
    int denied = 0;
    int denied_before_a_later_pass = 0;  // trials where a gate after the decider passed and had to be undone
    for (int trial = 0; trial < trials; ++trial) {
        const std::size_t stateful = std::uniform_int_distribution<std::size_t>(2, 3)(rng);
        std::vector<step> steps(stateful + 1);
        std::vector<std::string> names;
        auto store = std::make_shared<spec_store>();
        g::pipeline_builder b(speculative_config());
        // A read-only gate in front (always passes) so that the speculative phase starts from a real run.
        b.add_gate(scripted_gate("ro", std::make_shared<probe>(), 0ms, act::pass));
        for (std::size_t i = 0; i < steps.size(); ++i) {
            auto& st = steps[i];
            const bool commit = i == stateful;
            st.latency = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng));
            const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
            st.action = roll < 60 ? act::pass : roll < 80 ? act::deny : roll < 92 ? act::error : act::hang;
            st.policy = std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? g::failure_policy::fail_open
                                                                           : g::failure_policy::fail_closed;
            st.shadow = !commit && std::uniform_int_distribution<int>(0, 9)(rng) == 0;
            st.inline_answer = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
            names.push_back(commit ? "commit" : "s" + std::to_string(i));
            b.add_gate(consuming_gate(store, names.back(), st, commit));
        }
        auto pipeline = b.build();
        auto d = trial % 2 == 1 ? run_coro(
                                      ctx,
                                      [&]() -> asio::awaitable<g::decision> {
                                          g::request req = exec_request();
                                          auto res = co_await asio::co_spawn(
                                              asio::make_strand(ctx), pipeline.run(std::move(req)), asio::use_awaitable
                                          );
                                          co_return res;
                                      }()
                                  )
                                : run_coro(ctx, pipeline.run(exec_request()));
        const auto want = oracle(steps, names);
        ASSERT_EQ(d.allowed, want.allowed) << "trial " << trial;
        ASSERT_EQ(d.gate, want.gate) << "trial " << trial;
        ASSERT_EQ(d.status, want.status) << "trial " << trial;
        if (!d.allowed) {
            ++denied;
            for (const auto& [gate, net] : store->net) ASSERT_EQ(net, 0) << "trial " << trial << " gate " << gate;
            ASSERT_EQ(store->leases_held, 0) << "trial " << trial;
            ASSERT_FALSE(d.lease.held());
            // Gates after the decider: skipped when the decider answered before they started, otherwise their
            // real outcome; a pass among them is undone.
            bool after = false;
            for (const auto& name : names) {
                const auto* t = d.find(name);
                if (after && t->outcome == g::gate_outcome::pass && !t->shadow) {
                    ASSERT_TRUE(t->compensated) << "trial " << trial << " gate " << name;
                    ++denied_before_a_later_pass;
                }
                if (name == d.gate) after = true;
            }
        } else {
            // Allowed: every passing stateful gate consumed exactly once, and the lease is the decision's.
            for (std::size_t i = 0; i < stateful; ++i) {
                const int want_net = steps[i].action == act::pass ? 1 : 0;
                ASSERT_EQ(store->net[names[i]], want_net) << "trial " << trial << " gate " << names[i];
            }
            ASSERT_EQ(store->leases_held, steps[stateful].action == act::pass ? 1 : 0) << "trial " << trial;
            ASSERT_EQ(d.lease.held(), steps[stateful].action == act::pass);
            if (d.lease.held()) {
                auto r = run_coro(ctx, d.lease.release());
                ASSERT_TRUE(r);
            }
            ASSERT_EQ(store->leases_held, 0);
            ASSERT_EQ(store->refunds, 0);
        }
        for (const auto& name : names)
            ASSERT_TRUE(d.find(name)->speculative || d.find(name)->outcome == g::gate_outcome::skipped);
    }
    EXPECT_GT(denied, trials / 4);
    EXPECT_LT(denied, trials);
    EXPECT_GT(denied_before_a_later_pass, 50);  // the undo path of gates after the decider is exercised
}

TEST(speculative, every_stateful_gate_and_the_commit_start_before_the_first_completes) {
    // Each check records how many checks had started when it began, then waits on its own timer (never expiring)
    // until the last one to start releases everybody: no wall time involved. Sequentially, the first check would
    // wait alone until its budget ran out.
    struct latch {
        int started = 0;
        int completed = 0;
        std::vector<int> started_at_completion;
        std::vector<asio::steady_timer*> waiting;
    };
    auto l = std::make_shared<latch>();
    constexpr int total = 3;
    auto gate = [l](std::string name, g::phase ph) {
        g::gate_spec s;
        s.name = std::move(name);
        s.phase = ph;
        s.budget = std::chrono::milliseconds(2000);  // only reached when the checks do not start together
        s.check = [l, ph](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
            ++l->started;
            if (l->started == total) {
                for (auto* w : l->waiting) w->cancel();  // manual completion of every check at once
            } else {
                asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
                l->waiting.push_back(&t);
                co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            l->started_at_completion.push_back(l->started);
            ++l->completed;
            if (ph == g::phase::commit) {
                co_return g::verdict::pass_with_lease("slot", []() -> asio::awaitable<result<void>> {
                    co_return result<void>{};
                });
            }
            co_return g::verdict::pass();
        };
        if (ph == g::phase::stateful) {
            s.compensate = [](const g::request&) -> asio::awaitable<result<void>> { co_return result<void>{}; };
        }
        return s;
    };
    asio::io_context ctx;
    auto p = g::pipeline_builder(speculative_config())
                 .add_gate(scripted_gate("ban", std::make_shared<probe>(), 0ms, act::pass))
                 .add_gate(gate("backstop", g::phase::stateful))
                 .add_gate(gate("rate", g::phase::stateful))
                 .add_gate(gate("admission", g::phase::commit))
                 .build();
    auto d = run_coro(ctx, p.run(exec_request()));
    ASSERT_TRUE(d.allowed);
    EXPECT_TRUE(d.lease.held());
    EXPECT_EQ(l->completed, total);
    EXPECT_EQ(l->started_at_completion, (std::vector<int>{total, total, total}));
    for (const char* n : {"backstop", "rate", "admission"}) {
        EXPECT_EQ(d.find(n)->outcome, g::gate_outcome::pass) << n;
        EXPECT_TRUE(d.find(n)->speculative) << n;
        EXPECT_FALSE(d.find(n)->compensated) << n;
    }
    EXPECT_FALSE(d.find("ban")->speculative);
    // Stateful gates and the commit started in declaration order.
    EXPECT_LE(d.find("backstop")->started, d.find("rate")->started);
    EXPECT_LE(d.find("rate")->started, d.find("admission")->started);
}

TEST(speculative, a_denial_undoes_later_passes_and_the_trace_says_so) {
    asio::io_context ctx;
    auto store = std::make_shared<spec_store>();
    step pass_late{std::chrono::milliseconds(2), act::pass};
    step deny_early{std::chrono::milliseconds(1), act::deny};
    auto p = g::pipeline_builder(speculative_config())
                 .add_gate(consuming_gate(store, "backstop", pass_late, false))
                 .add_gate(consuming_gate(store, "rate", deny_early, false))
                 .add_gate(consuming_gate(store, "window", pass_late, false))
                 .add_gate(consuming_gate(store, "admission", pass_late, true))
                 .build();
    auto d = run_coro(ctx, p.run(exec_request()));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.gate, "rate");
    EXPECT_EQ(d.status, 429);
    EXPECT_EQ(store->net["backstop"], 0);
    EXPECT_EQ(store->net["window"], 0);
    EXPECT_EQ(store->leases_held, 0);
    EXPECT_EQ(store->releases, 1);
    EXPECT_EQ(store->refunds, 2);
    EXPECT_FALSE(d.lease.held());
    for (const char* n : {"backstop", "window", "admission"}) {
        EXPECT_EQ(d.find(n)->outcome, g::gate_outcome::pass) << n;
        EXPECT_TRUE(d.find(n)->compensated) << n;
    }
    EXPECT_NE(d.find("window")->reason.find("refunded: denied by 'rate'"), std::string::npos);
    EXPECT_NE(d.find("admission")->reason.find("lease released: denied by 'rate'"), std::string::npos);
    EXPECT_FALSE(d.find("rate")->compensated);
    const auto j = d.to_json();
    const auto& t = j.at("trace").as_array();
    EXPECT_TRUE(t.at(2).as_object().at("compensated").as_bool());
    EXPECT_TRUE(t.at(2).as_object().at("speculative").as_bool());
    EXPECT_FALSE(t.at(1).as_object().at("compensated").as_bool());
}

TEST(speculative, an_inline_denial_does_not_start_later_gates) {
    asio::io_context ctx;
    auto store = std::make_shared<spec_store>();
    step pass_now{std::chrono::milliseconds(0), act::pass, g::failure_policy::fail_closed, false, true};
    step deny_now{std::chrono::milliseconds(0), act::deny, g::failure_policy::fail_closed, false, true};
    auto p = g::pipeline_builder(speculative_config())
                 .add_gate(consuming_gate(store, "backstop", pass_now, false))
                 .add_gate(consuming_gate(store, "rate", deny_now, false))
                 .add_gate(consuming_gate(store, "admission", pass_now, true))
                 .build();
    auto d = run_coro(ctx, p.run(exec_request()));
    EXPECT_EQ(d.gate, "rate");
    EXPECT_EQ(d.find("admission")->outcome, g::gate_outcome::skipped);
    EXPECT_EQ(store->releases, 0);
    EXPECT_EQ(store->net["backstop"], 0);
    EXPECT_TRUE(d.find("backstop")->compensated);
}

namespace {

/// Caller cancellation while `window` hangs: both phases undo what passed (the commit has passed only when
/// speculative).
void cancel_while_a_stateful_gate_hangs(bool speculative) {
    SCOPED_TRACE(speculative ? "speculative" : "sequential");
    asio::io_context ctx;
    auto store = std::make_shared<spec_store>();
    step pass_now{std::chrono::milliseconds(0), act::pass};
    step hang{std::chrono::milliseconds(0), act::hang};
    auto hanging = consuming_gate(store, "window", hang, false);
    hanging.budget = std::chrono::milliseconds(60000);
    std::vector<std::string> events;
    g::pipeline_config cfg;
    cfg.speculative_stateful = speculative;
    cfg.on_event = [&events](const g::gate_event& e) {
        events.push_back(std::string(e.gate) + ": " + std::string(e.reason));
    };
    auto p = g::pipeline_builder(cfg)
                 .add_gate(consuming_gate(store, "backstop", pass_now, false))
                 .add_gate(std::move(hanging))
                 .add_gate(consuming_gate(store, "admission", pass_now, true))
                 .build();
    asio::cancellation_signal sig;
    spawned_run run;
    spawn_cancellable(ctx, p, exec_request(), sig, run);
    // Cancel once both passing gates have answered and the hanging one waits.
    asio::steady_timer t(ctx, 5ms);
    t.async_wait([&](boost::system::error_code) {
        EXPECT_EQ(store->net["backstop"], 1);
        EXPECT_EQ(store->leases_held, speculative ? 1 : 0);
        sig.emit(asio::cancellation_type::terminal);
    });
    ctx.run();
    ASSERT_TRUE(run.completed);
    ASSERT_TRUE(run.error);
    EXPECT_THROW(std::rethrow_exception(run.error), boost::system::system_error);
    EXPECT_EQ(store->net["backstop"], 0);
    EXPECT_EQ(store->net["window"], 0);
    EXPECT_EQ(store->leases_held, 0);
    EXPECT_EQ(store->releases, speculative ? 1 : 0);
    EXPECT_EQ(store->refunds, 1);
    EXPECT_TRUE(events.empty()) << events.front();
}

}  // namespace

TEST(speculative, caller_cancellation_undoes_every_pass) {
    cancel_while_a_stateful_gate_hangs(true);
    cancel_while_a_stateful_gate_hangs(false);
}

TEST(speculative, build_requires_compensation_on_stateful_gates_after_another) {
    auto store = std::make_shared<spec_store>();
    auto first = consuming_gate(store, "backstop", step{}, false);
    auto second = consuming_gate(store, "rate_limit", step{}, false);
    second.compensate = nullptr;
    try {
        (void)g::pipeline_builder(speculative_config()).add_gate(first).add_gate(second).build();
        FAIL() << "expected pipeline_config_error";
    } catch (const g::pipeline_config_error& e) {
        EXPECT_NE(std::string(e.what()).find("'rate_limit'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("speculative_stateful"), std::string::npos) << e.what();
    }
    // The first stateful gate needs none (as without the option, a later denial refunds it only when it has a
    // hook), and without the option nothing changes.
    first.compensate = nullptr;
    EXPECT_NO_THROW((void)g::pipeline_builder(speculative_config()).add_gate(first).build());
    EXPECT_NO_THROW((void)g::pipeline_builder{}.add_gate(first).add_gate(second).build());
    // Gates that never run after each other (different operations) need none either.
    auto reads = consuming_gate(store, "reads", step{}, false);
    reads.compensate = nullptr;
    reads.operations = {g::operation::read};
    EXPECT_NO_THROW((void)g::pipeline_builder(speculative_config()).add_gate(first).add_gate(reads).build());
}

TEST(run_recycling, a_recycled_run_state_carries_nothing_over) {
    // Run states are pooled per pipeline: a run after a denied, compensated, speculative run must look fresh.
    asio::io_context ctx;
    auto store = std::make_shared<spec_store>();
    auto deny_now = std::make_shared<bool>(true);
    g::gate_spec ro;
    ro.name = "ban";
    ro.try_check = [deny_now](g::gate_context&) -> std::optional<result<g::verdict>> { return g::verdict::pass(); };
    ro.check = [](g::gate_context&) -> asio::awaitable<result<g::verdict>> { co_return g::verdict::pass(); };
    g::gate_spec window;
    window.name = "window";
    window.phase = g::phase::stateful;
    window.check = [deny_now](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
        if (*deny_now) co_return g::verdict::deny(make_denial(429));
        co_return g::verdict::pass();
    };
    window.compensate = [](const g::request&) -> asio::awaitable<result<void>> { co_return result<void>{}; };
    auto p = g::pipeline_builder(speculative_config())
                 .add_gate(ro)
                 .add_gate(consuming_gate(store, "backstop", step{std::chrono::milliseconds(1), act::pass}, false))
                 .add_gate(window)
                 .add_gate(consuming_gate(store, "admission", step{}, true))
                 .build();
    for (int i = 0; i < 3; ++i) {
        auto d = run_coro(ctx, p.run(exec_request()));
        ASSERT_FALSE(d.allowed);
        EXPECT_TRUE(d.find("backstop")->compensated);
    }
    *deny_now = false;
    auto d = run_coro(ctx, p.run(exec_request()));
    ASSERT_TRUE(d.allowed);
    EXPECT_TRUE(d.lease.held());
    EXPECT_EQ(d.code, "");
    for (const auto& t : d.trace) {
        EXPECT_EQ(t.outcome, g::gate_outcome::pass) << t.gate;
        EXPECT_FALSE(t.compensated) << t.gate;
        EXPECT_EQ(t.reason, "") << t.gate;
        EXPECT_FALSE(t.would_deny) << t.gate;
    }
    EXPECT_EQ(store->net["backstop"], 1);
    EXPECT_EQ(store->leases_held, 1);
    // A resume on the same pipeline runs nothing.
    g::request resume = exec_request();
    resume.op = g::operation::resume;
    auto r = run_coro(ctx, p.run(std::move(resume)));
    EXPECT_TRUE(r.allowed);
    EXPECT_EQ(store->net["backstop"], 1);
}
