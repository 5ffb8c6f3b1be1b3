#pragma once

// The seed scenarios of issue 7 as a typed test over a store kind, so that one suite runs on the in-memory
// stores (memory_scenarios_test.cpp) and on the Postgres stores (instantiated by the integration tests).
//
// A Factory provides (keep it this small):
//
//   struct my_factory {
//       // Builds an EMPTY store set (the Postgres factory truncates its tables). Limit stores that run on a
//       // clock use `clk` when they can (in-memory); Postgres uses its own. May GTEST_SKIP() (no Postgres).
//       // `io` and `clk` outlive the factory.
//       void set_up(boost::asio::io_context& io, const preflight::clock& clk);
//       // The stores (the suite may replace single members with failing wrappers).
//       preflight::clients::store_set stores();
//       // Adds fact data in the format of `clients::load_fact_data` (bans, subscriptions, usage, members,
//       // balances).
//       void seed(const boost::json::value& facts);
//       // Optional: pins `pipeline.stateful_call` ("auto" / "separate") for every scenario.
//       static constexpr const char* stateful_call = "separate";
//   };
//
// Instantiate with `INSTANTIATE_TYPED_TEST_SUITE_P(memory, builtin_scenarios, memory_scenario_factory);`.
// The suite's pipeline clock is a manual_clock (trace, balance cache); the wall clock is fixed at
// 2026-11-15T12:00:00Z, so the usage period is "2026-11-01". Bans in the seed data use `until_unix_s` far in
// the future (or none).

#include "scenario_support.hpp"
#include <preflight/gates/http.hpp>

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

namespace preflight::builtin_test {

template <class Factory>
class builtin_scenarios : public ::testing::Test {
protected:
    void SetUp() override {
        factory_.set_up(io_, clock_);
        if (::testing::Test::IsSkipped()) return;
        factory_.seed(boost::json::parse(standard_seed));
    }

    /// The default pipeline over the factory's stores with `stores` edits applied by the caller.
    g::pipeline build(const boost::json::object& overrides = {}, clients::store_set* stores = nullptr) {
        boost::json::object o = overrides;
        // A factory may pin the stateful phase (`static constexpr const char* speculative = "on";`), so that every
        // scenario also runs with the mode that is not its store kind's default.
        if constexpr (requires { Factory::stateful_call; }) o["pipeline.stateful_call"] = Factory::stateful_call;
        g::default_pipeline_deps deps;
        deps.stores = stores != nullptr ? *stores : factory_.stores();
        deps.clock = &clock_;
        deps.on_event = events_.hook();
        g::default_pipeline_options opts;
        opts.wall_clock = [] { return fixed_wall_time(); };
        opts.monitor = monitor_;
        return g::default_pipeline_with_options(make_config(o), std::move(deps), std::move(opts));
    }

    static g::request req(g::operation op, std::string org, std::string user) {
        g::request r;
        r.op = op;
        r.subject.org = std::move(org);
        r.subject.user = std::move(user);
        return r;
    }

    g::decision decide(const g::pipeline& p, g::request r) { return run(io_, p.run(std::move(r))); }

    /// A fail-closed 503 `gate_unavailable` decided by `gate`.
    static void expect_unavailable(const g::decision& d, const std::string& gate) {
        EXPECT_FALSE(d.allowed);
        EXPECT_EQ(d.status, 503);
        EXPECT_EQ(d.code, "gate_unavailable");
        EXPECT_EQ(d.gate, gate);
    }

    void release(g::decision& d) {
        auto r = run(io_, d.lease.release());
        ASSERT_TRUE(r) << r.error().message();
    }

    /// Tokens left in bucket `key` (a peek: quantity 0 changes nothing).
    double tokens(clients::store_set& s, const std::string& key, limits::bucket_limit limit) {
        auto r = run(io_, s.rate_limits->acquire(key, limit, 0));
        EXPECT_TRUE(r);
        return r ? r->remaining : -1;
    }

    /// An execute request of `org` (for its limiter keys).
    static g::request exec_of(const std::string& org) {
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = org;
        return r;
    }

    /// Tokens left in the write bucket of `org` (`gates::rate_limit_key`).
    double write_tokens(clients::store_set& s, const std::string& org, limits::bucket_limit limit) {
        return tokens(s, g::rate_limit_key(exec_of(org)), limit);
    }

    /// Units counted in the backstop window of `org` (consume of 0 changes nothing).
    std::uint64_t backstop_count(clients::store_set& s, const std::string& org) {
        limits::window_limit l;
        auto r = run(io_, s.windows->consume(g::backstop_key(exec_of(org)), l, 0));
        EXPECT_TRUE(r);
        return r ? r->count : 0;
    }

    // The clock first: it outlives the io_context, whose destruction runs the releases of leases dropped in a test
    // (release_now against the in-memory stores, which read the clock). The stores go before the io_context.
    manual_clock clock_;
    asio::io_context io_;
    Factory factory_;
    event_log events_;
    /// Attached to every pipeline `build` makes (the latest one answers).
    std::shared_ptr<g::default_pipeline_monitor> monitor_ = std::make_shared<g::default_pipeline_monitor>();
};

TYPED_TEST_SUITE_P(builtin_scenarios);

// The pro tier's write bucket under the default configuration.
inline constexpr limits::bucket_limit pro_write{5.0, 100.0};

TYPED_TEST_P(builtin_scenarios, BannedUserWithExhaustedUsageGets403Never402) {
    auto p = this->build();
    auto d = this->decide(p, this->req(g::operation::execute, "org_over", "user_banned"));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.status, 403);
    EXPECT_EQ(d.code, "banned");
    EXPECT_EQ(d.gate, "ban");
    EXPECT_NE(d.message.find("user_banned"), std::string::npos);
}

TYPED_TEST_P(builtin_scenarios, OverUsageGets402AndConsumesNoTokenAndNoBackstopCount) {
    auto p = this->build();
    auto stores = this->factory_.stores();
    const limits::bucket_limit free_write{1.0, 20.0};
    auto d = this->decide(p, this->req(g::operation::execute, "org_over", "user_x"));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.status, 402);
    EXPECT_EQ(d.code, "usage_limit_exceeded");
    EXPECT_EQ(d.gate, "usage");
    EXPECT_NE(d.message.find("2026-11-01"), std::string::npos);
    EXPECT_EQ(d.find("rate_limit")->outcome, g::gate_outcome::skipped);
    EXPECT_EQ(d.find("backstop")->outcome, g::gate_outcome::skipped);
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_over", free_write), 20.0);
    EXPECT_EQ(this->backstop_count(stores, "org_over"), 0U);
}

TYPED_TEST_P(builtin_scenarios, WithinLimitsGetsALeaseAndConsumesOneToken) {
    auto p = this->build();
    auto stores = this->factory_.stores();
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(d.allowed) << d.code << " " << d.message;
    EXPECT_EQ(d.status, 200);
    EXPECT_TRUE(d.lease.held());
    EXPECT_FALSE(d.lease.id().empty());
    for (const char* gate : g::default_gate_names) {
        ASSERT_NE(d.find(gate), nullptr) << gate;
        EXPECT_EQ(d.find(gate)->outcome, g::gate_outcome::pass) << gate;
    }
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_ok", pro_write), 99.0);
    EXPECT_EQ(this->backstop_count(stores, "org_ok"), 1U);
    this->release(d);
    EXPECT_FALSE(d.lease.held());
}

TYPED_TEST_P(builtin_scenarios, PeriodIsTheCurrentUtcMonth) {
    // org_over used 1000 in November but 0 in October: the October period is not the one read.
    auto p = this->build();
    auto d = this->decide(p, this->req(g::operation::execute, "org_over", ""));
    EXPECT_EQ(d.code, "usage_limit_exceeded");
    // With a higher free allowance, it passes.
    boost::json::object o;
    o["usage.limits.free"] = 1001;
    auto p2 = this->build(o);
    auto d2 = this->decide(p2, this->req(g::operation::execute, "org_over", ""));
    EXPECT_TRUE(d2.allowed) << d2.code;
    this->release(d2);
}

TYPED_TEST_P(builtin_scenarios, MemberAtItsCapGets402) {
    auto p = this->build();
    auto d = this->decide(p, this->req(g::operation::execute, "org_capped", "user_capped"));
    EXPECT_EQ(d.status, 402);
    EXPECT_EQ(d.code, "member_usage_cap_exceeded");
    EXPECT_EQ(d.gate, "member_cap");
    auto ok = this->decide(p, this->req(g::operation::execute, "org_capped", "user_free"));
    EXPECT_TRUE(ok.allowed) << ok.code;
    this->release(ok);
}

TYPED_TEST_P(builtin_scenarios, BalanceProviderDownOrUnknownLetsExecutionsThroughAndReports) {
    for (auto m : {scripted_balance::mode::fail, scripted_balance::mode::unknown}) {
        auto stores = this->factory_.stores();
        auto src = std::make_shared<scripted_balance>(m);
        stores.balance = src;
        auto p = this->build({}, &stores);
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        EXPECT_EQ(d.find("balance")->outcome, g::gate_outcome::error);
        EXPECT_TRUE(d.find("balance")->fail_open);
        EXPECT_EQ(p.metrics().fail_open_count("balance"), 1U);
        EXPECT_EQ(src->calls.load(), 1);
        this->release(d);
    }
    EXPECT_EQ(this->events_.count("fail_open:balance"), 2U);
}

TYPED_TEST_P(builtin_scenarios, SlowBalanceProviderTimesOutAndLetsExecutionsThrough) {
    auto stores = this->factory_.stores();
    // The provider answers after 250 ms; the gate's budget (2 s by default) is set to 50 ms here.
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::slow, std::chrono::milliseconds{250});
    stores.balance = src;
    boost::json::object o;
    o["balance.budget_ms"] = 50;
    auto p = this->build(o, &stores);
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(d.allowed) << d.code;
    EXPECT_EQ(d.find("balance")->outcome, g::gate_outcome::timeout);
    EXPECT_TRUE(d.find("balance")->fail_open);
    EXPECT_EQ(this->events_.count("fail_open:balance"), 1U);
    this->release(d);
}

// The provider call itself is bounded: a source that ignores cancellation and hangs does not hold the org's later
// checks (they do not join the abandoned call: each reaches the source again and fails open within the budget).
TYPED_TEST_P(builtin_scenarios, HungProviderCallIsAbandonedAtTheBudgetAndTheNextCheckCallsAgain) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::deaf, std::chrono::milliseconds{400});
    stores.balance = src;
    boost::json::object o;
    o["balance.budget_ms"] = 50;
    auto p = this->build(o, &stores);
    for (int i = 1; i <= 2; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        EXPECT_TRUE(d.find("balance")->fail_open);
        EXPECT_EQ(src->calls.load(), i) << "each check reaches the source";
        this->release(d);
    }
    EXPECT_EQ(src->finished.load(), 0) << "both were still hanging when their checks ended";
    EXPECT_EQ(this->monitor_->read().balance_cache.size, 0U) << "time-outs are never cached";
    this->io_.restart();
    while (src->finished.load() < 2) this->io_.run_one();  // let the abandoned calls end
}

// balance.stale_if_error_s: while the provider fails, the last real outcome still decides for a bounded time.
TYPED_TEST_P(builtin_scenarios, StaleIfErrorKeepsTheLastOutcomeForABoundedTime) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::blocked);
    stores.balance = src;
    boost::json::object o;
    o["balance.stale_if_error_s"] = 120;
    auto p = this->build(o, &stores);
    EXPECT_EQ(this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok")).code, "plan_executions_exhausted");
    src->set(scripted_balance::mode::fail);
    this->clock_.advance(std::chrono::seconds{61});  // no longer fresh: the provider is asked, and fails
    auto stale = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(stale.code, "plan_executions_exhausted") << "still blocked: the last outcome, 61 s old";
    EXPECT_EQ(src->calls.load(), 2);
    this->clock_.advance(std::chrono::seconds{120});  // 181 s: beyond ttl + stale_if_error
    auto open = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_TRUE(open.allowed) << open.code;
    EXPECT_TRUE(open.find("balance")->fail_open);
    this->release(open);
}

TYPED_TEST_P(builtin_scenarios, BlockedOrgStaysBlockedFromCacheWithoutCallingTheProvider) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::blocked);
    stores.balance = src;
    auto p = this->build({}, &stores);
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(first.status, 402);
    EXPECT_EQ(first.code, "plan_executions_exhausted");
    EXPECT_EQ(first.gate, "balance");
    EXPECT_EQ(src->calls.load(), 1);
    this->clock_.advance(std::chrono::seconds{59});
    auto second = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(second.code, "plan_executions_exhausted");
    EXPECT_EQ(src->calls.load(), 1);                // from the cache
    this->clock_.advance(std::chrono::seconds{1});  // 60 s: expired
    auto third = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(third.code, "plan_executions_exhausted");
    EXPECT_EQ(src->calls.load(), 2);
    // Nothing was consumed by the blocked attempts.
    EXPECT_EQ(this->backstop_count(stores, "org_ok"), 0U);
}

TYPED_TEST_P(builtin_scenarios, AllowedBalanceIsCachedToo) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::allowed);
    stores.balance = src;
    auto p = this->build({}, &stores);
    for (int i = 0; i < 3; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        this->release(d);
    }
    EXPECT_EQ(src->calls.load(), 1);
    const auto stats = this->monitor_->read();
    EXPECT_EQ(stats.balance_cache.size, 1U);
    EXPECT_GE(stats.balance_cache.hits, 2U);  // the second and third checks
    const auto text = g::default_pipeline_metrics(stats);
    EXPECT_NE(text.find("preflight_balance_cache_entries 1\n"), std::string::npos) << text;
}

TYPED_TEST_P(builtin_scenarios, BalanceErrorsAreNeverCached) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::fail);
    stores.balance = src;
    auto p = this->build({}, &stores);
    for (int i = 0; i < 3; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        this->release(d);
    }
    EXPECT_EQ(src->calls.load(), 3);
    EXPECT_EQ(this->events_.count("fail_open:balance"), 3U);
}

TYPED_TEST_P(builtin_scenarios, ConcurrentBalanceChecksForOneOrgAreCoalesced) {
    auto stores = this->factory_.stores();
    auto src = std::make_shared<scripted_balance>(scripted_balance::mode::slow, std::chrono::milliseconds{20});
    stores.balance = src;
    auto p = this->build({}, &stores);
    std::vector<std::future<g::decision>> futs;
    for (int i = 0; i < 4; ++i) {
        auto r = this->req(g::operation::execute, "org_ok", "user_ok");
        futs.push_back(asio::co_spawn(this->io_, p.run(std::move(r)), asio::use_future));
    }
    this->io_.restart();
    // run_one, not run: a Postgres pool keeps socket waits pending, so the context never runs out of work.
    for (auto& f : futs) {
        while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) this->io_.run_one();
    }
    for (auto& f : futs) {
        auto d = f.get();
        EXPECT_TRUE(d.allowed) << d.code;
        this->release(d);
    }
    EXPECT_EQ(src->calls.load(), 1);
}

TYPED_TEST_P(builtin_scenarios, ResumePassesWithEveryGateDenying) {
    // Every read-only gate denies user_banned in org_over; the limiters allow nothing more (one slot, taken).
    this->factory_.seed(boost::json::parse(
        R"({"members": [{"org_id": "org_over", "user_id": "user_banned", "usage_cap": 1, "used": 1}]})"
    ));
    auto stores = this->factory_.stores();
    stores.balance = std::make_shared<scripted_balance>(scripted_balance::mode::blocked);
    boost::json::object o;
    auto p = this->build(o, &stores);
    auto d = this->decide(p, this->req(g::operation::resume, "org_over", "user_banned"));
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.status, 200);
    EXPECT_FALSE(d.lease.held());
    ASSERT_EQ(d.trace.size(), g::default_gate_names.size());
    for (const auto& t : d.trace) EXPECT_EQ(t.outcome, g::gate_outcome::skipped) << t.gate;
    // Each read-only gate on its own denies the same subject for execute (shadow-free evidence, gate by gate).
    auto e = this->decide(p, this->req(g::operation::execute, "org_over", "user_banned"));
    EXPECT_EQ(e.gate, "ban");
    auto u = this->decide(p, this->req(g::operation::execute, "org_over", "user_y"));
    EXPECT_EQ(u.gate, "usage");
    boost::json::object unlimited;
    unlimited["usage.limits.free"] = 0;
    auto p2 = this->build(unlimited, &stores);
    auto m = this->decide(p2, this->req(g::operation::execute, "org_over", "user_banned"));
    EXPECT_EQ(m.gate, "ban");
    auto b = this->decide(p2, this->req(g::operation::execute, "org_over", "user_z"));
    EXPECT_EQ(b.gate, "balance");
}

TYPED_TEST_P(builtin_scenarios, CancelIsExemptAndReadUsesTheReadClass) {
    auto p = this->build();
    auto stores = this->factory_.stores();
    // Cancel: no gate applies (cancel is exempt from the write bucket and never banned).
    auto c = this->decide(p, this->req(g::operation::cancel, "org_over", "user_banned"));
    EXPECT_TRUE(c.allowed);
    // Read: ban and the read bucket only (usage does not apply).
    auto r = this->decide(p, this->req(g::operation::read, "org_over", "user_x"));
    EXPECT_TRUE(r.allowed) << r.code;
    EXPECT_EQ(r.find("usage")->outcome, g::gate_outcome::skipped);
    EXPECT_EQ(r.find("rate_limit")->outcome, g::gate_outcome::pass);
    EXPECT_FALSE(r.lease.held());
    const limits::bucket_limit free_read{1.0, 10.0};
    auto peek = this->tokens(stores, "rl:read:org:org_over", free_read);
    EXPECT_DOUBLE_EQ(peek, 9.0);
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_over", limits::bucket_limit{1.0, 20.0}), 20.0);
    // A banned user cannot read.
    auto rb = this->decide(p, this->req(g::operation::read, "org_ok", "user_banned"));
    EXPECT_EQ(rb.status, 403);
}

TYPED_TEST_P(builtin_scenarios, RateLimitByPlanTierDeniesWith429AndRetryAfter) {
    boost::json::object o;
    o["rate_limit.write_burst"] = 2;      // free tier
    o["rate_limit.pro.write_burst"] = 3;  // pro tier
    o["rate_limit.write_rps"] = 0.001;
    o["rate_limit.pro.write_rps"] = 0.001;
    o["usage.limits.free"] = 0;  // unlimited, so org_over is within limits
    auto p = this->build(o);
    auto count_allowed = [&](const std::string& org, const std::string& user) {
        int allowed = 0;
        for (int i = 0; i < 5; ++i) {
            auto d = this->decide(p, this->req(g::operation::execute, org, user));
            if (d.allowed) {
                ++allowed;
                this->release(d);
            } else {
                EXPECT_EQ(d.status, 429);
                EXPECT_EQ(d.code, "rate_limited");
                EXPECT_EQ(d.gate, "rate_limit");
                EXPECT_TRUE(d.retry_after.has_value());
                EXPECT_GT(d.retry_after->count(), 0);
                EXPECT_TRUE(d.limiter.has_value());
            }
        }
        return allowed;
    };
    EXPECT_EQ(count_allowed("org_over", "user_x"), 2);
    EXPECT_EQ(count_allowed("org_ok", "user_ok"), 3);
}

TYPED_TEST_P(builtin_scenarios, BackstopDeniesWith429AndABlockedAttemptWritesNothing) {
    boost::json::object o;
    o["backstop.max"] = 2;
    auto p = this->build(o);
    auto stores = this->factory_.stores();
    for (int i = 0; i < 2; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        this->release(d);
    }
    for (int i = 0; i < 3; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        EXPECT_EQ(d.status, 429);
        EXPECT_EQ(d.code, "execution_backstop");
        EXPECT_EQ(d.gate, "backstop");
        EXPECT_TRUE(d.retry_after.has_value());
        // The rate limit and the admission never ran (with one ordered call too: it stopped at the backstop).
        EXPECT_EQ(d.find("rate_limit")->outcome, g::gate_outcome::skipped);
        EXPECT_EQ(d.find("admission")->outcome, g::gate_outcome::skipped);
    }
    EXPECT_EQ(this->backstop_count(stores, "org_ok"), 2U);
    // The denied attempts consumed no rate-limit token either: 2 of 100 used.
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_ok", pro_write), 98.0);
}

TYPED_TEST_P(builtin_scenarios, AdmissionDeniesWhenSlotsAreTakenAndRefundsTheToken) {
    boost::json::object o;
    o["admission.max_concurrent"] = 1;
    auto p = this->build(o);
    auto stores = this->factory_.stores();
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(first.allowed) << first.code;
    ASSERT_TRUE(first.lease.held());
    auto second = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(second.status, 429);
    EXPECT_EQ(second.code, "too_many_concurrent_executions");
    EXPECT_EQ(second.gate, "admission");
    // Client-safe: the message names the org, never the store key; the trace carries the key.
    EXPECT_EQ(
        second.message.find(g::admission_key(this->req(g::operation::execute, "org_ok", "user_ok"))), std::string::npos
    ) << second.message;
    EXPECT_NE(second.message.find("org 'org_ok'"), std::string::npos) << second.message;
    EXPECT_EQ(second.find("admission")->key, "org:org_ok");
    // A concurrency limit is not a time window: Retry-After, no RateLimit fields.
    const auto http = g::to_http(second);
    EXPECT_NE(http.header("Retry-After"), nullptr);
    EXPECT_EQ(http.header("RateLimit"), nullptr);
    EXPECT_EQ(http.header("RateLimit-Policy"), nullptr);
    // The allowed answer told the client where it stood: one rate-limit token of 100 taken, the backstop's 1000.
    const auto allowed = g::to_http(first);
    ASSERT_NE(allowed.header("RateLimit"), nullptr);
    EXPECT_NE(allowed.header("RateLimit")->find(R"("rate_limit";r=99;)"), std::string::npos)
        << *allowed.header("RateLimit");
    EXPECT_NE(allowed.header("RateLimit-Policy")->find(R"("rate_limit";q=100;w=20)"), std::string::npos)
        << *allowed.header("RateLimit-Policy");
    EXPECT_EQ(first.find("rate_limit")->key, "rl:write:org:org_ok");
    // The rate-limit consume of the denied run was refunded: only the first run's token is gone.
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_ok", pro_write), 99.0);
    // So was its backstop count, where the window store can give units back (the Postgres one).
    if (dynamic_cast<limits::window_refund*>(stores.windows.get()) != nullptr) {
        EXPECT_EQ(this->backstop_count(stores, "org_ok"), 1U);
    }
    this->release(first);
    auto third = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_TRUE(third.allowed) << third.code;
    this->release(third);
}

// Admission is strictly last: a rate-limited flood never holds the only slot, not even for a moment, so the one
// request the bucket lets through is never refused as "too many concurrent executions", and no lease is ever written
// for a rate-limited request (a factory that can count lease writes checks that too).
TYPED_TEST_P(builtin_scenarios, RateLimitedFloodNeverTakesTheOnlySlot) {
    boost::json::object o;
    o["admission.max_concurrent"] = 1;
    o["rate_limit.pro.write_burst"] = 1;
    o["rate_limit.pro.write_rps"] = 0.001;
    auto p = this->build(o);
    std::vector<std::future<g::decision>> futs;
    for (int i = 0; i < 24; ++i) {
        futs.push_back(
            asio::co_spawn(this->io_, p.run(this->req(g::operation::execute, "org_ok", "user_ok")), asio::use_future)
        );
    }
    this->io_.restart();
    for (auto& f : futs) {
        while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) this->io_.run_one();
    }
    int allowed = 0;
    int rate_limited = 0;
    std::vector<g::decision> held;
    for (auto& f : futs) {
        auto d = f.get();
        EXPECT_NE(d.code, "too_many_concurrent_executions");
        if (d.allowed) {
            ++allowed;
            EXPECT_TRUE(d.lease.held());
            held.push_back(std::move(d));
            continue;
        }
        if (d.code == "rate_limited") ++rate_limited;
        EXPECT_EQ(d.find("admission")->outcome, g::gate_outcome::skipped) << d.code;
    }
    EXPECT_EQ(allowed, 1);
    EXPECT_EQ(rate_limited, 23);
    if constexpr (requires { this->factory_.leases_written("org:org_ok"); }) {
        EXPECT_EQ(this->factory_.leases_written("org:org_ok"), 1);
    }
    for (auto& d : held) this->release(d);
}

TYPED_TEST_P(builtin_scenarios, WithoutAdmissionNoSlotIsTakenAndNoLeaseReturned) {
    boost::json::object o;
    o["admission.enabled"] = false;
    o["admission.max_concurrent"] = 1;
    auto p = this->build(o);
    for (int i = 0; i < 3; ++i) {  // more than max_concurrent, none released
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        EXPECT_TRUE(d.allowed) << d.code;
        EXPECT_FALSE(d.lease.held());
        EXPECT_EQ(d.find("admission")->outcome, g::gate_outcome::skipped);
        EXPECT_EQ(d.find("admission")->reason, "off: admission.enabled is false");
    }
    if constexpr (requires { this->factory_.leases_written("org:org_ok"); }) {
        EXPECT_EQ(this->factory_.leases_written("org:org_ok"), 0);
    }
}

TYPED_TEST_P(builtin_scenarios, WithoutAWindowStoreTheBackstopIsOffAndSaidOnce) {
    auto stores = this->factory_.stores();
    stores.windows = nullptr;
    auto p = this->build({}, &stores);
    EXPECT_EQ(this->events_.count("gate_off:backstop"), 1U);
    for (int i = 0; i < 2; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        EXPECT_EQ(d.find("backstop")->outcome, g::gate_outcome::skipped);
        EXPECT_NE(d.find("backstop")->reason.find("off: no window store"), std::string::npos);
        EXPECT_EQ(d.find("rate_limit")->outcome, g::gate_outcome::pass);
        this->release(d);
    }
    EXPECT_EQ(this->events_.count("gate_off:backstop"), 1U) << "said once, when built";
}

// A flow run's budget lives in the store, by run id: two pipelines (two processes) serving one run share it; another
// run has its own; a request without a run id is not counted.
TYPED_TEST_P(builtin_scenarios, RunBudgetIsPerFlowRunAndSharedByEveryProcessServingIt) {
    auto p1 = this->build();
    auto p2 = this->build();
    const auto in_run = [this](std::string run) {
        auto r = this->req(g::operation::execute, "org_ok", "user_ok");
        r.subject.run_id = std::move(run);
        return r;
    };
    for (int i = 0; i < 20; ++i) {
        auto d = this->decide(i % 2 == 0 ? p1 : p2, in_run("run-a"));
        ASSERT_TRUE(d.allowed) << i << ": " << d.code;
        this->release(d);
    }
    auto over = this->decide(p2, in_run("run-a"));
    EXPECT_EQ(over.status, 429);
    EXPECT_EQ(over.code, "run_budget_exhausted");
    EXPECT_EQ(over.gate, "run_budget");
    EXPECT_EQ(over.message, "rate-limit budget exhausted: used 20 of 20 mutating calls for this flow run");
    EXPECT_EQ(over.find("backstop")->outcome, g::gate_outcome::skipped) << "nothing after it was written";
    auto other = this->decide(p1, in_run("run-b"));
    EXPECT_TRUE(other.allowed) << other.code;
    this->release(other);
    auto none = this->decide(p1, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_TRUE(none.allowed) << none.code;
    this->release(none);
    EXPECT_EQ(this->decide(p1, in_run("run-a")).code, "run_budget_exhausted");
}

// A later denial gives the run's call back (its undo).
TYPED_TEST_P(builtin_scenarios, ARunCallDeniedLaterIsGivenBack) {
    boost::json::object o;
    o["run_budget.max_mutating_calls"] = 1;
    o["admission.max_concurrent"] = 1;
    auto p = this->build(o);
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));  // holds the slot
    ASSERT_TRUE(first.allowed) << first.code;
    auto r = this->req(g::operation::execute, "org_ok", "user_ok");
    r.subject.run_id = "run-c";
    auto full = this->decide(p, r);
    EXPECT_EQ(full.code, "too_many_concurrent_executions");
    EXPECT_TRUE(full.find("run_budget")->compensated);
    this->release(first);
    auto again = this->decide(p, r);
    EXPECT_TRUE(again.allowed) << again.code << ": the run's one call was given back";
    this->release(again);
}

// Usage is recorded when an admitted execution's lease is released (one request, or what the release says), so the
// usage gate trips on real traffic, not only on loaded data. org_ok (pro) starts with 10 requests used.
TYPED_TEST_P(builtin_scenarios, ReleasedExecutionsCountTowardsUsageAndTheGateTrips) {
    boost::json::object o;
    o["usage.limits.pro"] = 14;
    auto p = this->build(o);
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(first.allowed) << first.code;
    this->release(first);  // one request: 11
    auto second = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(second.allowed) << second.code;
    auto r = run(this->io_, second.lease.release(3, 500));  // it says it used 3: 14
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(run(this->io_, second.lease.release()).has_value()) << "a second release records nothing";
    auto over = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(over.status, 402);
    EXPECT_EQ(over.code, "usage_limit_exceeded");
    EXPECT_NE(over.message.find("used 14 of 14"), std::string::npos) << over.message;
}

// The rate limit's refund gives back exactly what it took, with the key and limit it used: no second subscription
// lookup (the tier could have changed meanwhile, and the lookup is a round trip).
TYPED_TEST_P(builtin_scenarios, TheRefundOfARateLimitTokenReadsNothingAgain) {
    auto stores = this->factory_.stores();
    auto counted = std::make_shared<counting_subscriptions>(stores.subscriptions);
    stores.subscriptions = counted;
    boost::json::object o;
    o["admission.max_concurrent"] = 1;
    auto p = this->build(o, &stores);
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(first.allowed) << first.code;
    counted->calls = 0;
    auto full = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(full.code, "too_many_concurrent_executions");
    EXPECT_EQ(counted->calls.load(), 1) << "the run's own read, nothing for the refund";
    EXPECT_DOUBLE_EQ(this->write_tokens(stores, "org_ok", pro_write), 99.0) << "the denied run's token came back";
    this->release(first);
}

TYPED_TEST_P(builtin_scenarios, RateLimitedRunKeepsNoBackstopCountWhereRefundable) {
    boost::json::object o;
    o["rate_limit.pro.write_burst"] = 1;
    o["rate_limit.pro.write_rps"] = 0.001;
    auto p = this->build(o);
    auto stores = this->factory_.stores();
    auto first = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(first.allowed) << first.code;
    this->release(first);
    auto second = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(second.status, 429);
    EXPECT_EQ(second.gate, "rate_limit");
    const bool refundable = dynamic_cast<limits::window_refund*>(stores.windows.get()) != nullptr;
    EXPECT_EQ(this->backstop_count(stores, "org_ok"), refundable ? 1U : 2U);
}

TYPED_TEST_P(builtin_scenarios, FailingUsageLookupIsA503FromTheUsageGate) {
    auto stores = this->factory_.stores();
    stores.usage = std::make_shared<failing_usage>();
    auto p = this->build({}, &stores);
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    this->expect_unavailable(d, "usage");
    EXPECT_EQ(d.find("rate_limit")->outcome, g::gate_outcome::skipped);
    // A ban still wins; an unlimited tier never needs the usage row.
    EXPECT_EQ(this->decide(p, this->req(g::operation::execute, "org_ok", "user_banned")).status, 403);
    boost::json::object o;
    o["usage.limits.pro"] = 0;
    auto unlimited = this->build(o, &stores);
    auto u = this->decide(unlimited, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_TRUE(u.allowed) << u.code << " " << u.message;
    this->release(u);
}

TYPED_TEST_P(builtin_scenarios, FailingSubscriptionLookupIsA503NamingTheFact) {
    auto stores = this->factory_.stores();
    stores.subscriptions = std::make_shared<failing_subscriptions>();
    auto p = this->build({}, &stores);
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    this->expect_unavailable(d, "usage");
    EXPECT_NE(d.message.find("subscription"), std::string::npos) << d.message;
    // A ban still wins (precedence).
    auto b = this->decide(p, this->req(g::operation::execute, "org_ok", "user_banned"));
    EXPECT_EQ(b.status, 403);
    // With usage.fail_open the usage gate's policy applies to the subscription failure too: it passes, failed open.
    boost::json::object o;
    o["usage.fail_open"] = true;
    auto open = this->build(o, &stores);
    auto passed = this->decide(open, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_TRUE(passed.allowed) << passed.code << ": " << passed.message;
    EXPECT_TRUE(passed.find("usage")->fail_open);
    EXPECT_GE(this->events_.count("fail_open:usage"), 1U);
    this->release(passed);
}

TYPED_TEST_P(builtin_scenarios, FailingCombinedReadIsA503AtTheFirstFailClosedReadGate) {
    auto stores = this->factory_.stores();
    auto failing = std::make_shared<failing_subject_facts>();
    stores.subject_facts = failing;
    auto p = this->build({}, &stores);
    // Every read-only lookup failed at once: the ban gate (first, fail-closed) decides, nothing is consumed.
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    this->expect_unavailable(d, "ban");
    EXPECT_EQ(d.find("rate_limit")->outcome, g::gate_outcome::skipped);
    EXPECT_EQ(failing->calls.load(), 1);  // one lookup for every read-only gate
    // With the ban gate fail-open, the usage gate names the failed fact.
    boost::json::object o;
    o["ban.fail_open"] = true;
    auto open_ban = this->build(o, &stores);
    auto u = this->decide(open_ban, this->req(g::operation::execute, "org_ok", "user_ok"));
    EXPECT_EQ(u.status, 503);
    EXPECT_EQ(u.gate, "usage");
    EXPECT_NE(u.message.find("subject_facts"), std::string::npos) << u.message;
    // Resume is never gated, so it never reads.
    auto r = this->decide(p, this->req(g::operation::resume, "org_ok", "user_ok"));
    EXPECT_TRUE(r.allowed);
    EXPECT_EQ(failing->calls.load(), 2);
}

TYPED_TEST_P(builtin_scenarios, UnreachableRateLimitStoreDegradesToTheLocalShare) {
    auto stores = this->factory_.stores();
    auto failing = std::make_shared<failing_rate_limits>();
    stores.rate_limits = failing;
    boost::json::object o;
    o["fleet.size"] = 4;  // pro write burst 100 -> local burst 25
    o["rate_limit.pro.write_rps"] = 0.001;
    auto p = this->build(o, &stores);
    int allowed = 0;
    g::decision last;
    for (int i = 0; i < 30; ++i) {
        auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
        if (d.allowed) {
            ++allowed;
            EXPECT_TRUE(d.find("rate_limit")->fail_open);
            EXPECT_NE(d.find("rate_limit")->reason.find("degraded"), std::string::npos) << d.find("rate_limit")->reason;
            this->release(d);
        } else {
            last = std::move(d);
        }
    }
    EXPECT_EQ(allowed, 25);
    EXPECT_EQ(failing->calls.load(), 30);
    EXPECT_EQ(last.status, 429);
    EXPECT_EQ(last.code, "rate_limited");
    EXPECT_NE(last.message.find("local fallback"), std::string::npos);
    EXPECT_EQ(p.metrics().fail_open_count("rate_limit"), 25U);
    EXPECT_EQ(this->events_.count("fail_open:rate_limit"), 25U);
    // Both kinds of fallback decision are counted; the local limiter holds the one key.
    const auto stats = this->monitor_->read();
    EXPECT_EQ(stats.fallback_allowed, 25U);
    EXPECT_EQ(stats.fallback_denied, 5U);
    EXPECT_EQ(stats.fallback_limiter_keys, 1U);
    const auto text = g::default_pipeline_metrics(stats);
    EXPECT_NE(text.find("preflight_rate_limit_fallback_decisions_total{result=\"denied\"} 5\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("preflight_rate_limit_fallback_keys 1\n"), std::string::npos) << text;
    // The monitor never keeps the pipeline's state: once the pipeline is gone, it reads zeros.
    this->monitor_ = std::make_shared<g::default_pipeline_monitor>();
    {
        auto q = this->build(o, &stores);
        auto d = this->decide(q, this->req(g::operation::execute, "org_ok", "user_ok"));
        ASSERT_TRUE(d.allowed) << d.code;
        this->release(d);
        EXPECT_EQ(this->monitor_->read().fallback_allowed, 1U);
    }
    this->io_.poll();  // whatever the finished run left queued
    EXPECT_EQ(this->monitor_->read().fallback_allowed, 0U);
    EXPECT_EQ(this->monitor_->read().fallback_limiter_keys, 0U);
}

TYPED_TEST_P(builtin_scenarios, HangingRateLimitStoreAlsoDegrades) {
    auto stores = this->factory_.stores();
    // The store would hang for 10 s; the gate's budget is 100 ms and the store gets 75 ms of it.
    auto hanging = std::make_shared<failing_rate_limits>(std::chrono::milliseconds{10'000});
    stores.rate_limits = hanging;
    boost::json::object o;
    o["rate_limit.budget_ms"] = 100;
    auto p = this->build(o, &stores);
    auto d = this->decide(p, this->req(g::operation::execute, "org_ok", "user_ok"));
    ASSERT_TRUE(d.allowed) << d.code;
    const auto* t = d.find("rate_limit");
    EXPECT_EQ(t->outcome, g::gate_outcome::error);  // decided by the local limiter, not timed out
    EXPECT_TRUE(t->fail_open);
    EXPECT_NE(t->reason.find("degraded"), std::string::npos) << t->reason;
    this->release(d);
}

REGISTER_TYPED_TEST_SUITE_P(
    builtin_scenarios,
    BannedUserWithExhaustedUsageGets403Never402,
    OverUsageGets402AndConsumesNoTokenAndNoBackstopCount,
    WithinLimitsGetsALeaseAndConsumesOneToken,
    PeriodIsTheCurrentUtcMonth,
    MemberAtItsCapGets402,
    BalanceProviderDownOrUnknownLetsExecutionsThroughAndReports,
    SlowBalanceProviderTimesOutAndLetsExecutionsThrough,
    HungProviderCallIsAbandonedAtTheBudgetAndTheNextCheckCallsAgain,
    StaleIfErrorKeepsTheLastOutcomeForABoundedTime,
    BlockedOrgStaysBlockedFromCacheWithoutCallingTheProvider,
    AllowedBalanceIsCachedToo,
    BalanceErrorsAreNeverCached,
    ConcurrentBalanceChecksForOneOrgAreCoalesced,
    ResumePassesWithEveryGateDenying,
    CancelIsExemptAndReadUsesTheReadClass,
    RateLimitByPlanTierDeniesWith429AndRetryAfter,
    BackstopDeniesWith429AndABlockedAttemptWritesNothing,
    AdmissionDeniesWhenSlotsAreTakenAndRefundsTheToken,
    RateLimitedFloodNeverTakesTheOnlySlot,
    WithoutAdmissionNoSlotIsTakenAndNoLeaseReturned,
    WithoutAWindowStoreTheBackstopIsOffAndSaidOnce,
    RunBudgetIsPerFlowRunAndSharedByEveryProcessServingIt,
    ARunCallDeniedLaterIsGivenBack,
    ReleasedExecutionsCountTowardsUsageAndTheGateTrips,
    TheRefundOfARateLimitTokenReadsNothingAgain,
    RateLimitedRunKeepsNoBackstopCountWhereRefundable,
    FailingUsageLookupIsA503FromTheUsageGate,
    FailingSubscriptionLookupIsA503NamingTheFact,
    FailingCombinedReadIsA503AtTheFirstFailClosedReadGate,
    UnreachableRateLimitStoreDegradesToTheLocalShare,
    HangingRateLimitStoreAlsoDegrades
);

}  // namespace preflight::builtin_test
