#include "gates_support.hpp"
#include <preflight/core/strand.hpp>
#include <preflight/gates/pipeline.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <run_coro.hpp>
#include <thread>
#include <vector>

using namespace preflight::test;
using preflight::errc;
using preflight::result;
using preflight::test::run_coro;

namespace {

g::decision run_once(asio::io_context& ctx, const g::pipeline& p, g::request r) {
    return run_coro(ctx, p.run(std::move(r)));
}

/// A toy stateful store: consumes per key, refunds give them back.
struct toy_store {
    std::mutex m;
    std::map<std::string, int> used;
    int limit = 1000;
    std::vector<std::string> order;  // gate names in call order
};

g::gate_spec stateful_gate(std::string name, std::shared_ptr<toy_store> store, bool deny) {
    g::gate_spec s;
    s.name = name;
    s.phase = g::phase::stateful;
    s.check = [store, deny, name](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
        std::lock_guard lock(store->m);
        store->order.push_back(name);
        if (deny) {
            co_return g::verdict::deny(g::denial{
                429,
                "rate_limited",
                "slow down",
                std::chrono::milliseconds(1500),
                g::limiter_info{100, 0, std::chrono::seconds(60), std::chrono::seconds(30)}});
        }
        const std::string key = name + ":" + gc.req().subject.org;
        store->used[key]++;
        // The consume's undo knows what it took (no lookup from the request again).
        co_return g::verdict::pass_with_undo([store, key]() -> asio::awaitable<result<void>> {
            std::lock_guard undo_lock(store->m);
            store->used[key]--;
            co_return result<void>{};
        });
    };
    return s;
}

}  // namespace

TEST(pipeline, all_pass_allows_and_traces_every_gate) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto b = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("a", a, 0ms, act::pass))
                 .add_gate(scripted_gate("b", b, 2ms, act::pass))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.status, 200);
    ASSERT_EQ(d.trace.size(), 2U);
    EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::pass);
    EXPECT_EQ(d.trace[1].outcome, g::gate_outcome::pass);
    EXPECT_EQ(a->calls, 1);
    EXPECT_EQ(b->calls, 1);
}

TEST(pipeline, first_gate_denying_early_returns_and_cancels_pending_gates) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto b = std::make_shared<probe>();
    auto c = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("ban", a, 1ms, act::deny, 403))
                 .add_gate(scripted_gate("usage", b, 0ms, act::hang))
                 .add_gate(scripted_gate("balance", c, 0ms, act::hang))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.gate, "ban");
    EXPECT_EQ(d.status, 403);
    // The later gates were still pending when the decision was taken, and their coroutines saw cancellation.
    EXPECT_EQ(d.find("usage")->outcome, g::gate_outcome::cancelled);
    EXPECT_EQ(d.find("balance")->outcome, g::gate_outcome::cancelled);
    EXPECT_EQ(b->cancelled, 1);
    EXPECT_EQ(c->cancelled, 1);
    EXPECT_EQ(b->finished, 0);
}

TEST(pipeline, later_gate_denying_early_waits_for_earlier_gates) {
    for (auto first : {act::pass, act::deny}) {
        asio::io_context ctx;
        auto a = std::make_shared<probe>();
        auto b = std::make_shared<probe>();
        auto c = std::make_shared<probe>();
        auto p = g::pipeline_builder{}
                     .add_gate(scripted_gate("ban", a, 20ms, first, 403))
                     .add_gate(scripted_gate("usage", b, 1ms, act::deny, 402))
                     .add_gate(scripted_gate("balance", c, 0ms, act::hang))
                     .build();
        auto d = run_once(ctx, p, exec_request());
        EXPECT_FALSE(d.allowed);
        EXPECT_EQ(a->finished, 1);  // waited for the earlier gate
        if (first == act::pass) {
            EXPECT_EQ(d.gate, "usage");
            EXPECT_EQ(d.status, 402);
        } else {
            EXPECT_EQ(d.gate, "ban");
            EXPECT_EQ(d.status, 403);
        }
        EXPECT_EQ(d.find("ban")->outcome, first == act::pass ? g::gate_outcome::pass : g::gate_outcome::deny);
        EXPECT_EQ(d.find("usage")->outcome, g::gate_outcome::deny);
        EXPECT_EQ(d.find("balance")->outcome, g::gate_outcome::cancelled);
        EXPECT_EQ(c->cancelled, 1);
    }
}

TEST(pipeline, gates_after_an_inline_denial_are_not_started) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto b = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("ban", a, 0ms, act::deny))
                 .add_gate(scripted_gate("usage", b, 0ms, act::pass))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(d.gate, "ban");
    EXPECT_EQ(b->calls, 0);
    EXPECT_EQ(d.find("usage")->outcome, g::gate_outcome::skipped);
}

TEST(pipeline, stateful_gates_not_invoked_when_a_read_only_gate_denies) {
    asio::io_context ctx;
    auto store = std::make_shared<toy_store>();
    auto ro = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(stateful_gate("bucket", store, false))
                 .add_gate(scripted_gate("ban", ro, 3ms, act::deny))
                 .add_gate(stateful_gate("window", store, false))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_FALSE(d.allowed);
    EXPECT_TRUE(store->order.empty());
    EXPECT_TRUE(store->used.empty());
    EXPECT_EQ(d.find("bucket")->outcome, g::gate_outcome::skipped);
    EXPECT_EQ(d.find("window")->outcome, g::gate_outcome::skipped);
}

TEST(pipeline, stateful_gates_invoked_once_each_in_order_when_all_pass) {
    asio::io_context ctx;
    auto store = std::make_shared<toy_store>();
    auto ro = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(stateful_gate("bucket", store, false))
                 .add_gate(scripted_gate("ban", ro, 3ms, act::pass))
                 .add_gate(stateful_gate("window", store, false))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(store->order, (std::vector<std::string>{"bucket", "window"}));
    EXPECT_EQ(store->used["bucket:org_1"], 1);
    EXPECT_EQ(store->used["window:org_1"], 1);
    // Stateful gates start only after the read-only gate finished.
    EXPECT_GE(d.find("bucket")->started, d.find("ban")->started + d.find("ban")->duration);
}

TEST(pipeline, all_or_nothing_refunds_earlier_consumes) {
    asio::io_context ctx;
    auto store = std::make_shared<toy_store>();
    auto p = g::pipeline_builder{}
                 .add_gate(stateful_gate("bucket", store, false))
                 .add_gate(stateful_gate("window", store, true))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.gate, "window");
    EXPECT_EQ(d.status, 429);
    EXPECT_EQ(store->order, (std::vector<std::string>{"bucket", "window"}));
    EXPECT_EQ(store->used["bucket:org_1"], 0);  // refunded
    EXPECT_NE(d.find("bucket")->reason.find("refunded"), std::string::npos);
}

TEST(pipeline, commit_denial_refunds_stateful_consumes) {
    asio::io_context ctx;
    auto store = std::make_shared<toy_store>();
    auto c = std::make_shared<probe>();
    auto commit = scripted_gate("admission", c, 0ms, act::deny, 429);
    commit.phase = g::phase::commit;
    auto p = g::pipeline_builder{}.add_gate(stateful_gate("bucket", store, false)).add_gate(commit).build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(d.gate, "admission");
    EXPECT_EQ(store->used["bucket:org_1"], 0);
}

TEST(pipeline, fail_open_error_is_attempted_allowed_and_reported) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    std::vector<std::string> events;
    g::pipeline_config cfg;
    cfg.on_event = [&](const g::gate_event& e) {
        events.push_back(std::string(g::to_string(e.kind)) + ":" + std::string(e.gate));
    };
    auto p = g::pipeline_builder{cfg}
                 .add_gate(scripted_gate("billing", a, 1ms, act::error, 402, g::failure_policy::fail_open))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(a->calls, 1);  // attempted
    EXPECT_TRUE(d.allowed);  // allowed
    EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::error);
    EXPECT_TRUE(d.trace[0].fail_open);
    EXPECT_EQ(events, (std::vector<std::string>{"fail_open:billing"}));
    EXPECT_EQ(p.metrics().fail_open_count("billing"), 1U);
    EXPECT_EQ(p.metrics().count("billing", g::gate_outcome::error), 1U);
}

TEST(pipeline, fail_open_timeout_is_distinguished_from_error) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    int events = 0;
    g::pipeline_config cfg;
    cfg.on_event = [&](const g::gate_event& e) {
        EXPECT_EQ(e.code, make_error_code(errc::timeout));
        ++events;
    };
    auto gate = scripted_gate("billing", a, 0ms, act::hang, 402, g::failure_policy::fail_open);
    gate.budget = 5ms;
    auto p = g::pipeline_builder{cfg}.add_gate(gate).build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(a->calls, 1);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::timeout);
    EXPECT_TRUE(d.trace[0].fail_open);
    EXPECT_EQ(a->cancelled, 1);  // the timed-out check was cancelled
    EXPECT_EQ(events, 1);
}

TEST(pipeline, fail_closed_is_503_at_the_gates_precedence) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto b = std::make_shared<probe>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("billing", a, 5ms, act::error, 402, g::failure_policy::fail_closed))
                 .add_gate(scripted_gate("rate", b, 0ms, act::deny, 429))
                 .build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(d.status, 503);
    EXPECT_EQ(d.code, "gate_unavailable");
    EXPECT_EQ(d.gate, "billing");
    EXPECT_NE(d.message.find("billing"), std::string::npos);
}

TEST(pipeline, shadow_gate_denial_is_recorded_not_enforced) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto gate = scripted_gate("new_limit", a, 1ms, act::deny, 429);
    gate.shadow = true;
    auto p = g::pipeline_builder{}.add_gate(gate).build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::deny);
    EXPECT_TRUE(d.trace[0].shadow);
    EXPECT_TRUE(d.trace[0].would_deny);
    EXPECT_EQ(p.metrics().shadow_denial_count("new_limit"), 1U);
}

TEST(pipeline, fact_awaited_by_three_gates_loads_once) {
    asio::io_context ctx;
    auto loads = std::make_shared<std::atomic<int>>(0);
    g::pipeline_builder b;
    auto sub =
        b.add_fact<std::string>("subscription", [loads](const g::request& r) -> asio::awaitable<result<std::string>> {
            ++*loads;
            asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
            co_await t.async_wait(asio::use_awaitable);
            co_return "pro:" + r.subject.org;
        });
    auto seen = std::make_shared<std::vector<std::string>>();
    for (auto name : {"usage", "balance", "seats"}) {
        g::gate_spec s;
        s.name = name;
        s.facts = {"subscription"};
        s.check = [sub, seen](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
            const std::string& plan = co_await gc.fact(sub);
            seen->push_back(plan);
            co_return g::verdict::pass();
        };
        b.add_gate(s);
    }
    auto p = b.build();
    auto d = run_once(ctx, p, exec_request("org_7"));
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(*loads, 1);
    EXPECT_EQ(*seen, (std::vector<std::string>(3, "pro:org_7")));
    // A second run loads again (once per run).
    run_once(ctx, p, exec_request("org_8"));
    EXPECT_EQ(*loads, 2);
}

TEST(pipeline, fact_error_becomes_the_awaiting_gates_error) {
    asio::io_context ctx;
    g::pipeline_builder b;
    auto sub = b.add_fact<int>("subscription", [](const g::request&) -> asio::awaitable<result<int>> {
        co_return make_error_code(errc::store_unavailable);
    });
    g::gate_spec s;
    s.name = "usage";
    s.facts = {"subscription"};
    s.check = [sub](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
        (void)co_await gc.fact(sub);
        co_return g::verdict::pass();
    };
    b.add_gate(s);
    auto p = b.build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(d.status, 503);
    EXPECT_EQ(d.gate, "usage");
    EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::error);
    EXPECT_NE(d.trace[0].reason.find("subscription"), std::string::npos);
}

TEST(pipeline, fact_loads_concurrently_with_independent_gates) {
    asio::io_context ctx;
    struct span {
        std::chrono::steady_clock::time_point start, end;
    };
    auto fact_span = std::make_shared<span>();
    g::pipeline_builder b;
    auto sub = b.add_fact<int>("subscription", [fact_span](const g::request&) -> asio::awaitable<result<int>> {
        fact_span->start = std::chrono::steady_clock::now();
        asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        fact_span->end = std::chrono::steady_clock::now();
        co_return 42;
    });
    auto independent = std::make_shared<probe>();
    b.add_gate(scripted_gate("ban", independent, 20ms, act::pass));
    auto waiter = std::make_shared<probe>();
    g::gate_spec s;
    s.name = "usage";
    s.facts = {"subscription"};
    s.check = [sub, waiter](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
        waiter->started = std::chrono::steady_clock::now();
        int v = co_await gc.fact(sub);
        waiter->ended = std::chrono::steady_clock::now();
        co_return v == 42 ? g::verdict::pass() : g::verdict::deny({});
    };
    b.add_gate(s);
    auto p = b.build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_TRUE(d.allowed);
    // Overlap: the independent gate ran while the fact was loading (critical path, not sum).
    EXPECT_LT(independent->started, fact_span->end);
    EXPECT_LT(fact_span->start, independent->ended);
    // The fact started before any gate (eager), and the waiting gate started before the fact ended.
    EXPECT_LE(fact_span->start, independent->started);
    EXPECT_LT(waiter->started, fact_span->end);
    EXPECT_GE(waiter->ended, fact_span->end);
}

TEST(pipeline, resume_invokes_no_gate) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto store = std::make_shared<toy_store>();
    auto gate = scripted_gate("ban", a, 0ms, act::deny);
    gate.operations = {
        g::operation::execute, g::operation::execute_with_pause, g::operation::cancel, g::operation::read};
    auto p = g::pipeline_builder{}.add_gate(gate).add_gate(stateful_gate("bucket", store, true)).build();
    auto r = exec_request();
    r.op = g::operation::resume;
    auto d = run_once(ctx, p, r);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(a->calls, 0);
    EXPECT_TRUE(store->order.empty());
    for (const auto& t : d.trace) EXPECT_EQ(t.outcome, g::gate_outcome::skipped);
}

TEST(pipeline, gates_apply_only_to_their_operations) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto store = std::make_shared<toy_store>();
    auto p = g::pipeline_builder{}
                 .add_gate(scripted_gate("ban", a, 0ms, act::pass))
                 .add_gate(stateful_gate("bucket", store, true))
                 .build();
    auto r = exec_request();
    r.op = g::operation::cancel;  // default operations: execute, execute_with_pause
    auto d = run_once(ctx, p, r);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(a->calls, 0);
    EXPECT_TRUE(store->order.empty());
}

namespace {

struct lease_counter {
    std::atomic<int> releases{0};
};

g::gate_spec commit_gate(std::shared_ptr<lease_counter> lc) {
    g::gate_spec s;
    s.name = "admission";
    s.phase = g::phase::commit;
    s.check = [lc](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
        co_return g::verdict::pass_with_lease("lease-1", [lc]() -> asio::awaitable<result<void>> {
            ++lc->releases;
            co_return result<void>{};
        });
    };
    return s;
}

}  // namespace

TEST(pipeline, lease_released_once_even_when_released_twice) {
    asio::io_context ctx;
    auto lc = std::make_shared<lease_counter>();
    auto p = g::pipeline_builder{}.add_gate(commit_gate(lc)).build();
    run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto d = co_await p.run(exec_request());
        EXPECT_TRUE(d.allowed);
        EXPECT_TRUE(d.lease.held());
        EXPECT_EQ(d.lease.id(), "lease-1");
        EXPECT_TRUE(co_await d.lease.release());
        EXPECT_FALSE(d.lease.held());
        EXPECT_TRUE(co_await d.lease.release());  // harmless
        d.lease.release_detached();               // harmless
    }());
    EXPECT_EQ(lc->releases, 1);
}

TEST(pipeline, dropped_lease_is_released_by_its_destructor_once) {
    asio::io_context ctx;
    auto lc = std::make_shared<lease_counter>();
    auto p = g::pipeline_builder{}.add_gate(commit_gate(lc)).build();
    {
        auto d = run_once(ctx, p, exec_request());
        g::lease moved = std::move(d.lease);
        EXPECT_FALSE(d.lease.held());
        EXPECT_TRUE(moved.held());
    }
    ctx.restart();
    ctx.run();
    EXPECT_EQ(lc->releases, 1);
}

TEST(pipeline, caller_cancellation_cancels_running_gates) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto p = g::pipeline_builder{}.add_gate(scripted_gate("ban", a, 0ms, act::hang)).build();
    asio::cancellation_signal sig;
    spawned_run run;
    spawn_cancellable(ctx, p, exec_request(), sig, run);
    asio::steady_timer t(ctx, 5ms);
    t.async_wait([&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
    ctx.run();
    ASSERT_TRUE(run.completed);
    ASSERT_TRUE(run.error);
    EXPECT_THROW(std::rethrow_exception(run.error), boost::system::system_error);
    EXPECT_EQ(a->cancelled, 1);
}

// A stateful gate passed (its consume counted) and a later one is still running when the caller cancels: the run
// ends in cancellation and the consume is given back through its undo.
TEST(pipeline, caller_cancellation_runs_the_undo_of_every_passed_stateful_gate) {
    asio::io_context ctx;
    auto store = std::make_shared<toy_store>();
    auto hung = std::make_shared<probe>();
    g::gate_spec later = scripted_gate("later", hung, 0ms, act::hang);
    later.phase = g::phase::stateful;
    auto p = g::pipeline_builder{}.add_gate(stateful_gate("consume", store, false)).add_gate(std::move(later)).build();
    asio::cancellation_signal sig;
    spawned_run run;
    spawn_cancellable(ctx, p, exec_request(), sig, run);
    asio::steady_timer t(ctx, 5ms);
    t.async_wait([&](boost::system::error_code) {
        EXPECT_EQ(store->used["consume:org_1"], 1) << "consumed while the later gate runs";
        sig.emit(asio::cancellation_type::terminal);
    });
    ctx.run();
    ASSERT_TRUE(run.completed);
    EXPECT_TRUE(run.error);
    EXPECT_EQ(hung->cancelled, 1);
    EXPECT_EQ(store->used["consume:org_1"], 0) << "the undo gave the consume back";
}

TEST(pipeline, async_run_supports_callbacks_future_and_awaitable) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    auto p = g::pipeline_builder{}.add_gate(scripted_gate("ban", a, 1ms, act::deny, 403)).build();
    int callback_status = 0;
    p.async_run(ctx.get_executor(), exec_request(), [&](std::exception_ptr ep, g::decision d) {
        EXPECT_FALSE(ep);
        callback_status = d.status;
    });
    auto fut = p.async_run(ctx.get_executor(), exec_request(), asio::use_future);
    int awaited_status = run_coro(ctx, [&]() -> asio::awaitable<int> {
        auto d = co_await p.async_run(co_await asio::this_coro::executor, exec_request(), asio::use_awaitable);
        co_return d.status;
    }());
    EXPECT_EQ(callback_status, 403);
    EXPECT_EQ(fut.get().status, 403);
    EXPECT_EQ(awaited_status, 403);
}

TEST(pipeline, shared_by_threads_of_a_multi_threaded_io_context) {
    asio::io_context ctx(2);
    auto store = std::make_shared<toy_store>();
    std::vector<std::shared_ptr<probe>> probes;
    g::pipeline_builder b;
    for (int i = 0; i < 3; ++i) {
        probes.push_back(std::make_shared<probe>());
        g::gate_spec s;
        s.name = "ro" + std::to_string(i);
        // gate ro1 denies org_odd; latencies vary so that completions interleave across threads.
        s.check = [i](g::gate_context& c) -> asio::awaitable<result<g::verdict>> {
            const int n = std::stoi(c.req().subject.org.substr(4));
            if ((n + i) % 3 == 0) {
                asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::microseconds(100 * i));
                co_await t.async_wait(asio::use_awaitable);
            }
            if (i == 1 && n % 2 == 1)
                co_return g::verdict::deny(g::denial{403, "odd", "odd org", std::nullopt, std::nullopt});
            co_return g::verdict::pass();
        };
        b.add_gate(s);
    }
    b.add_gate(stateful_gate("bucket", store, false));
    auto p = b.build();
    constexpr int n = 2000;
    std::atomic<int> allowed{0}, denied{0}, wrong{0};
    for (int i = 0; i < n; ++i) {
        p.async_run(
            ctx.get_executor(),
            exec_request("org_" + std::to_string(i)),
            [&, i](std::exception_ptr ep, g::decision d) {
                if (ep || d.allowed != (i % 2 == 0) || (!d.allowed && d.gate != "ro1")) ++wrong;
                (d.allowed ? allowed : denied)++;
            }
        );
    }
    std::thread t([&] { ctx.run(); });
    ctx.run();
    t.join();
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(allowed, n / 2);
    EXPECT_EQ(denied, n / 2);
    int consumed = 0;
    for (auto& [k, v] : store->used) consumed += v;
    EXPECT_EQ(consumed, n / 2);
}

TEST(pipeline_builder, rejects_invalid_declarations_with_a_clear_error) {
    auto ok = [](std::string name) {
        return scripted_gate(std::move(name), std::make_shared<probe>(), 0ms, act::pass);
    };
    auto expect_error = [](g::pipeline_builder b, const std::string& needle) {
        try {
            (void)b.build();
            ADD_FAILURE() << "expected pipeline_config_error containing " << needle;
        } catch (const g::pipeline_config_error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(g::pipeline_builder{}, "no gates");
    expect_error(g::pipeline_builder{}.add_gate(ok("ban")).add_gate(ok("ban")), "duplicate gate 'ban'");
    auto unknown = ok("usage");
    unknown.facts = {"subscription"};
    expect_error(g::pipeline_builder{}.add_gate(unknown), "unknown fact 'subscription'");
    auto empty = ok("usage");
    empty.operations.clear();
    expect_error(g::pipeline_builder{}.add_gate(empty), "gate 'usage': applies to no operation");
    auto resume = ok("usage");
    resume.operations = {g::operation::resume};
    expect_error(g::pipeline_builder{}.add_gate(resume), "resume is never gated");
    expect_error(g::pipeline_builder{}.add_gate(ok("bad name")), "invalid gate name 'bad name'");
    auto c1 = ok("c1");
    c1.phase = g::phase::commit;
    auto c2 = ok("c2");
    c2.phase = g::phase::commit;
    expect_error(g::pipeline_builder{}.add_gate(c1).add_gate(c2), "more than one commit gate");
    auto nocheck = ok("x");
    nocheck.check = nullptr;
    expect_error(g::pipeline_builder{}.add_gate(nocheck), "gate 'x': no check");
    auto zero = ok("x");
    zero.budget = 0ms;
    expect_error(g::pipeline_builder{}.add_gate(zero), "gate 'x': time budget");
    g::pipeline_builder dup;
    (void)dup.add_fact<int>("f", [](const g::request&) -> asio::awaitable<result<int>> { co_return 1; });
    (void)dup.add_fact<int>("f", [](const g::request&) -> asio::awaitable<result<int>> { co_return 1; });
    dup.add_gate(ok("x"));
    expect_error(std::move(dup), "duplicate fact 'f'");
}

TEST(pipeline, try_check_answer_is_used_without_the_async_check) {
    asio::io_context ctx;
    auto async_calls = std::make_shared<std::atomic<int>>(0);
    g::gate_spec s;
    s.name = "ban";
    s.try_check = [](g::gate_context&) -> std::optional<result<g::verdict>> {
        return g::verdict::deny(g::denial{403, "banned", "banned", std::nullopt, std::nullopt});
    };
    s.check = [async_calls](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
        ++*async_calls;
        co_return g::verdict::pass();
    };
    auto p = g::pipeline_builder{}.add_gate(s).build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(d.gate, "ban");
    EXPECT_EQ(*async_calls, 0);
}

TEST(pipeline, try_check_falls_back_to_check_while_a_fact_is_loading) {
    asio::io_context ctx;
    g::pipeline_builder b;
    auto sub = b.add_fact<int>("subscription", [](const g::request&) -> asio::awaitable<result<int>> {
        asio::steady_timer t(co_await asio::this_coro::executor, 2ms);
        co_await t.async_wait(asio::use_awaitable);
        co_return 7;
    });
    auto tries = std::make_shared<std::atomic<int>>(0);
    auto checks = std::make_shared<std::atomic<int>>(0);
    g::gate_spec s;
    s.name = "usage";
    s.facts = {"subscription"};
    s.try_check = [sub, tries](g::gate_context& gc) -> std::optional<result<g::verdict>> {
        ++*tries;
        if (gc.try_fact(sub) == nullptr) return std::nullopt;
        return g::verdict::pass();
    };
    s.check = [sub, checks](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
        ++*checks;
        int v = co_await gc.fact(sub);
        co_return v == 7 ? g::verdict::deny(g::denial{402, "seven", "seven", std::nullopt, std::nullopt})
                         : g::verdict::pass();
    };
    auto p = b.add_gate(s).build();
    auto d = run_once(ctx, p, exec_request());
    EXPECT_EQ(*tries, 1);
    EXPECT_EQ(*checks, 1);
    EXPECT_EQ(d.gate, "usage");
    EXPECT_EQ(d.status, 402);
}

TEST(pipeline, fact_try_loader_answers_synchronously_and_errors_propagate) {
    asio::io_context ctx;
    for (bool fail : {false, true}) {
        g::pipeline_builder b;
        auto async_loads = std::make_shared<std::atomic<int>>(0);
        auto sub = b.add_fact<int>(
            "subscription",
            [async_loads](const g::request&) -> asio::awaitable<result<int>> {
                ++*async_loads;
                co_return 1;
            },
            [fail](const g::request&) -> std::optional<result<int>> {
                if (fail) return result<int>{make_error_code(errc::store_unavailable)};
                return result<int>{5};
            }
        );
        g::gate_spec s;
        s.name = "usage";
        s.facts = {"subscription"};
        s.try_check = [sub](g::gate_context& gc) -> std::optional<result<g::verdict>> {
            const int* v = gc.try_fact(sub);  // throws fact_error when the loader failed
            return *v == 5 ? g::verdict::pass() : g::verdict::deny({});
        };
        s.check = [](g::gate_context&) -> asio::awaitable<result<g::verdict>> { co_return g::verdict::deny({}); };
        auto p = b.add_gate(s).build();
        auto d = run_once(ctx, p, exec_request());
        EXPECT_EQ(*async_loads, 0);
        if (fail) {
            EXPECT_EQ(d.status, 503);
            EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::error);
            EXPECT_NE(d.trace[0].reason.find("subscription"), std::string::npos);
        } else {
            EXPECT_TRUE(d.allowed);
        }
    }
}

TEST(pipeline, fast_path_on_a_callers_strand_leaves_no_work_behind) {
    asio::io_context ctx;
    auto a = std::make_shared<probe>();
    g::gate_spec s = scripted_gate("ban", a, 0ms, act::pass);
    s.try_check = [](g::gate_context&) -> std::optional<result<g::verdict>> { return g::verdict::pass(); };
    auto p = g::pipeline_builder{}.add_gate(s).add_gate(scripted_gate("usage", a, 0ms, act::pass)).build();
    int allowed = 0;
    asio::co_spawn(
        asio::make_strand(ctx),
        [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 100; ++i) allowed += (co_await p.run(exec_request())).allowed ? 1 : 0;
        },
        asio::detached
    );
    ctx.run();
    EXPECT_EQ(allowed, 100);
    EXPECT_EQ(a->calls, 100);  // only the second gate ran its coroutine
}

// On an io_context that one thread runs (mark_single_threaded), a run needs no strand of its own: its checks run on
// the context's executor itself. On an unmarked context (any number of threads may run it) each run gets a strand.
TEST(pipeline, runs_in_place_on_a_context_marked_single_threaded_and_on_a_strand_otherwise) {
    struct seen {
        int strand = 0;
        int plain = 0;
    };
    auto observe = [](std::shared_ptr<seen> out) {
        return [out](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
            const auto ex = co_await asio::this_coro::executor;
            if (preflight::is_io_strand(ex)) ++out->strand;
            if (ex.target<asio::io_context::executor_type>() != nullptr) ++out->plain;
            co_return g::verdict::pass();
        };
    };
    for (const bool marked : {true, false}) {
        auto got = std::make_shared<seen>();
        g::gate_spec ban;
        ban.name = "ban";
        ban.check = observe(got);
        g::gate_spec usage;
        usage.name = "usage";
        usage.check = observe(got);
        auto p = g::pipeline_builder{}.add_gate(ban).add_gate(usage).build();
        asio::io_context ctx(1);
        if (marked) preflight::mark_single_threaded(ctx);
        for (int i = 0; i < 3; ++i) EXPECT_TRUE(run_once(ctx, p, exec_request()).allowed);
        EXPECT_EQ(got->plain, marked ? 6 : 0) << "marked " << marked;
        EXPECT_EQ(got->strand, marked ? 0 : 6) << "marked " << marked;
    }
}

// The driver of a run waits on a handler parked in the run itself (no timer); when the io_context goes away with the
// run still waiting, the parked handler must be destroyed with it, or the run and its coroutine keep each other (and
// the pipeline) alive.
TEST(pipeline, run_left_waiting_when_its_io_context_goes_away_is_freed) {
    auto sentinel = std::make_shared<int>(0);
    std::weak_ptr<int> watch = sentinel;
    auto a = std::make_shared<probe>();
    {
        g::pipeline_config cfg;
        cfg.on_event = [sentinel](const g::gate_event&) {};
        auto spec = scripted_gate("ban", a, 0ms, act::hang);
        spec.budget = std::chrono::seconds(60);
        auto p = g::pipeline_builder{cfg}.add_gate(spec).build();
        asio::io_context ctx;
        asio::co_spawn(ctx, p.run(exec_request()), asio::detached);
        ctx.run_for(20ms);  // the check hangs; the run's driver waits for it
        EXPECT_EQ(a->calls, 1);
        EXPECT_EQ(a->finished, 0);
    }  // the io_context goes first, then the pipeline
    sentinel.reset();
    EXPECT_TRUE(watch.expired()) << "a run left waiting kept its pipeline alive";
}

// A check, a fast path or a fact loader that throws is that gate's error: a typed 503 naming the gate under
// fail-closed, a pass (fail-open, with its event) under fail-open; never an exception out of run().
TEST(pipeline, a_throwing_check_fast_path_or_fact_loader_is_the_gates_error_never_an_exception) {
    enum class where { check, fast_path, fact_loader };
    for (const auto w : {where::check, where::fast_path, where::fact_loader}) {
        for (const auto pol : {g::failure_policy::fail_closed, g::failure_policy::fail_open}) {
            asio::io_context ctx;
            int events = 0;
            g::pipeline_config cfg;
            cfg.on_event = [&events](const g::gate_event& e) { events += e.kind == g::event_kind::fail_open; };
            g::pipeline_builder b{cfg};
            auto fact = b.add_fact<int>("plan", [w](const g::request&) -> asio::awaitable<result<int>> {
                if (w == where::fact_loader) throw std::runtime_error("loader exploded");
                co_return 1;
            });
            g::gate_spec s;
            s.name = "thrower";
            s.on_failure = pol;
            s.facts = {"plan"};
            s.check = [w, fact](g::gate_context& gc) -> asio::awaitable<result<g::verdict>> {
                if (w == where::check) throw std::logic_error("check exploded");
                (void)co_await gc.fact(fact);
                co_return g::verdict::pass();
            };
            if (w == where::fast_path) {
                s.try_check = [](g::gate_context&) -> std::optional<result<g::verdict>> {
                    throw std::runtime_error("fast path exploded");
                };
            }
            auto p = b.add_gate(std::move(s)).build();
            g::decision d;
            EXPECT_NO_THROW(d = run_once(ctx, p, exec_request()));
            ASSERT_EQ(d.trace.size(), 1U);
            EXPECT_EQ(d.trace[0].outcome, g::gate_outcome::error) << static_cast<int>(w);
            if (pol == g::failure_policy::fail_closed) {
                EXPECT_FALSE(d.allowed);
                EXPECT_EQ(d.status, 503);
                EXPECT_EQ(d.code, "gate_unavailable");
                EXPECT_EQ(d.gate, "thrower");
                EXPECT_EQ(events, 0);
            } else {
                EXPECT_TRUE(d.allowed) << static_cast<int>(w);
                EXPECT_TRUE(d.trace[0].fail_open);
                EXPECT_EQ(events, 1);
            }
        }
    }
}
