// The default pipeline's read phase is one round trip: every read (ban, subscription, usage, member, balance)
// starts when the run begins; the usage row does not wait for the subscription.
#include "scenario_support.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <boost/asio/as_tuple.hpp>
#include <gtest/gtest.h>

namespace preflight::builtin_test {
namespace {

/// A subscription store whose answer is held until `release()` (or a 2 s safety timer).
class held_subscriptions final : public clients::subscription_store {
public:
    asio::awaitable<result<std::optional<clients::subscription>>> find_highest_priority(std::string, std::string)
        override {
        ++calls;
        if (hold) {
            timer_.emplace(co_await asio::this_coro::executor, std::chrono::seconds{2});
            pending = true;
            co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
            pending = false;
        }
        clients::subscription s;
        s.owner_id = "org_ok";
        s.plan = clients::plan_tier::pro;
        co_return std::optional<clients::subscription>{s};
    }
    void release() {
        if (timer_) timer_->cancel();
    }
    bool hold = true;  ///< false: answer at once
    bool pending = false;
    int calls = 0;

private:
    std::optional<asio::steady_timer> timer_;
};

/// A usage store that records whether the subscription was still loading when it was asked, and lets it go.
class probing_usage final : public clients::usage_store {
public:
    // Reads are what this double is about; recording is accepted and forgotten.
    asio::awaitable<result<bool>> record(std::string, std::string, std::string, clients::usage) override {
        co_return true;
    }
    explicit probing_usage(held_subscriptions& subs) : subs_(subs) {}
    asio::awaitable<result<clients::usage>> get(std::string subject, std::string period) override {
        ++calls;
        asked_while_subscription_pending = subs_.pending;
        last_subject = subject;
        last_period = period;
        subs_.release();
        co_return clients::usage{used, 0};
    }
    bool asked_while_subscription_pending = false;
    int calls = 0;
    std::uint64_t used = 10;
    std::string last_subject, last_period;

private:
    held_subscriptions& subs_;
};

class read_phase : public ::testing::Test {
protected:
    g::pipeline build(const boost::json::object& overrides = {}) {
        clients::load_fact_data(boost::json::parse(standard_seed), facts_);
        g::default_pipeline_deps deps;
        deps.stores = clients::make_memory_store_set(facts_, clock_);
        deps.stores.subscriptions = subs_;
        deps.stores.usage = usage_;
        deps.clock = &clock_;
        g::default_pipeline_options opts;
        opts.wall_clock = [] { return fixed_wall_time(); };
        return g::default_pipeline_with_options(make_config(overrides), std::move(deps), std::move(opts));
    }
    static g::request req(std::string org, std::string user) {
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = std::move(org);
        r.subject.user = std::move(user);
        return r;
    }

    // The clock first: it outlives the io_context, whose destruction runs the releases of leases dropped in a test
    // (release_now against the in-memory stores, which read the clock). The stores go before the io_context.
    manual_clock clock_;
    asio::io_context io_;
    clients::memory_fact_stores facts_;
    std::shared_ptr<held_subscriptions> subs_ = std::make_shared<held_subscriptions>();
    std::shared_ptr<probing_usage> usage_ = std::make_shared<probing_usage>(*subs_);
};

TEST_F(read_phase, UsageIsReadWhileTheSubscriptionIsStillLoading) {
    auto p = build();
    auto d = run(io_, p.run(req("org_ok", "user_ok")));
    ASSERT_TRUE(d.allowed) << d.code << " " << d.message;
    EXPECT_EQ(subs_->calls, 1);
    EXPECT_EQ(usage_->calls, 1);
    EXPECT_TRUE(usage_->asked_while_subscription_pending) << "the usage read waited for the subscription";
    EXPECT_EQ(usage_->last_subject, "org_ok");
    EXPECT_EQ(usage_->last_period, "2026-11-01");
    auto r = run(io_, d.lease.release());
    EXPECT_TRUE(r);
}

TEST_F(read_phase, OverUsageIsStill402WithTheTierOfTheSubscription) {
    usage_->used = 100'000;  // the pro allowance
    auto p = build();
    auto d = run(io_, p.run(req("org_ok", "user_ok")));
    EXPECT_EQ(d.status, 402);
    EXPECT_EQ(d.code, "usage_limit_exceeded");
    EXPECT_NE(d.message.find("pro plan"), std::string::npos) << d.message;
    EXPECT_NE(d.message.find("2026-11-01"), std::string::npos) << d.message;
}

TEST_F(read_phase, NoUsageReadWhenEveryTierIsUnlimited) {
    boost::json::object o;
    for (const char* t : {"free", "pro", "team", "enterprise"}) o[std::string("usage.limits.") + t] = 0;
    subs_->hold = false;
    auto p = build(o);
    auto d = run(io_, p.run(req("org_ok", "user_ok")));
    ASSERT_TRUE(d.allowed) << d.code;
    EXPECT_EQ(usage_->calls, 0);
    auto r = run(io_, d.lease.release());
    EXPECT_TRUE(r);
}

TEST_F(read_phase, ReadOperationsReadNoUsage) {
    auto p = build();
    g::request r = req("org_ok", "user_ok");
    r.op = g::operation::read;
    subs_->hold = false;
    auto d = run(io_, p.run(std::move(r)));
    EXPECT_TRUE(d.allowed) << d.code;
    EXPECT_EQ(usage_->calls, 0);
}

}  // namespace
}  // namespace preflight::builtin_test
