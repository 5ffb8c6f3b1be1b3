// The default pipeline's leases on the in-memory stores (a manual clock): one ttl (admission.lease_ttl_ms) for the
// reservation and its renewals; an execution longer than the ttl that renews keeps its slot, one that stops renewing
// loses it; a lease dropped after its io_context stopped is released at once (the in-memory store answers
// synchronously), and a lease that cannot be is reported (event lease_lost and a metric), never dropped silently.
#include "memory_pipeline_fixture.hpp"
#include <preflight/limits/memory_admission_store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace preflight::builtin_test {
namespace {

using namespace std::chrono_literals;

class lease_test : public memory_pipeline_test {
protected:
    g::pipeline build(boost::json::object o = {}) {
        o["admission.max_concurrent"] = 1;
        o["admission.lease_ttl_ms"] = 1000;
        return memory_pipeline_test::build(o);
    }

    g::decision decide(const g::pipeline& p) { return memory_pipeline_test::decide(p, "org_ok", "user_ok"); }

    std::size_t in_use() {
        return dynamic_cast<limits::memory_admission_store&>(*stores_.admissions).in_use("org:org_ok");
    }
};

TEST_F(lease_test, AnExecutionThatRenewsKeepsItsSlotPastTheTtl) {
    auto p = build();
    auto d = decide(p);
    ASSERT_TRUE(d.allowed) << d.code;
    for (int i = 0; i < 5; ++i) {  // 5 × 800 ms: four times the ttl
        clock_.advance(800ms);
        auto renewed = run(io_, d.lease.renew());
        ASSERT_TRUE(renewed.has_value()) << renewed.error().message();
        EXPECT_TRUE(*renewed);
        EXPECT_EQ(in_use(), 1U);
        EXPECT_EQ(decide(p).code, "too_many_concurrent_executions") << "the slot is still taken";
    }
    EXPECT_TRUE(run(io_, d.lease.release()).has_value());
    EXPECT_FALSE(*run(io_, d.lease.renew())) << "released: nothing to renew";
    auto next = decide(p);
    EXPECT_TRUE(next.allowed) << next.code;
    EXPECT_TRUE(run(io_, next.lease.release()).has_value());
}

TEST_F(lease_test, AnExecutionThatStopsRenewingLosesItsSlotAfterTheTtl) {
    auto p = build();
    auto d = decide(p);
    ASSERT_TRUE(d.allowed) << d.code;
    clock_.advance(800ms);
    ASSERT_TRUE(*run(io_, d.lease.renew()));
    clock_.advance(999ms);
    EXPECT_EQ(in_use(), 1U) << "renewed 999 ms ago";
    clock_.advance(1ms);
    EXPECT_EQ(in_use(), 0U) << "one ttl after the last renewal";
    EXPECT_FALSE(*run(io_, d.lease.renew())) << "expired in the store";
    auto other = decide(p);
    EXPECT_TRUE(other.allowed) << other.code;
    EXPECT_TRUE(run(io_, other.lease.release()).has_value());
}

// The io_context goes (the server stopped) with the release of a dropped lease still queued: it never runs.
TEST_F(lease_test, ALeaseDroppedAsItsIoContextGoesIsReleasedAtOnceInMemory) {
    auto p = build();
    auto io = std::make_unique<asio::io_context>();
    {
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = "org_ok";
        r.subject.user = "user_ok";
        auto d = run(*io, p.run(std::move(r)));
        ASSERT_TRUE(d.allowed) << d.code;
        io->stop();
    }  // dropped: its release is queued on a stopped context
    EXPECT_EQ(in_use(), 1U);
    io.reset();  // ... that is destroyed without running it
    EXPECT_EQ(in_use(), 0U) << "released synchronously";
    EXPECT_EQ(events_.count("lease_lost:admission"), 0U);
}

TEST_F(lease_test, ADroppedLeaseOnAStoppedContextThatIsRestartedIsReleasedOnce) {
    auto p = build();
    {
        auto d = decide(p);
        ASSERT_TRUE(d.allowed) << d.code;
    }
    io_.restart();
    io_.run();
    EXPECT_EQ(in_use(), 0U);
    auto next = decide(p);
    EXPECT_TRUE(next.allowed) << next.code;
    EXPECT_TRUE(run(io_, next.lease.release()).has_value());
}

TEST_F(lease_test, ALeaseThatCannotBeReleasedAsItsIoContextGoesIsReported) {
    // A commit gate whose store cannot release synchronously (as a Postgres one).
    g::pipeline_config pc;
    pc.on_event = events_.hook();
    g::gate_spec commit;
    commit.name = "commit";
    commit.phase = g::phase::commit;
    auto released = std::make_shared<int>(0);
    commit.check = [released](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
        co_return g::verdict::pass_with_lease("lease-1", [released]() -> asio::awaitable<result<void>> {
            ++*released;
            co_return result<void>{};
        });
    };
    auto p = g::pipeline_builder(std::move(pc)).add_gate(std::move(commit)).build();
    auto io = std::make_unique<asio::io_context>();
    {
        g::request r;
        r.subject.org = "org_ok";
        auto d = run(*io, p.run(std::move(r)));
        ASSERT_TRUE(d.lease.held());
        io->stop();
    }
    EXPECT_EQ(events_.count("lease_lost:commit"), 0U) << "not yet: a restart could still run it";
    io.reset();
    EXPECT_EQ(*released, 0);
    EXPECT_EQ(events_.count("lease_lost:commit"), 1U);
    EXPECT_EQ(p.metrics().leases_lost(), 1U);
    EXPECT_NE(p.metrics().prometheus_text().find("preflight_leases_lost_total 1\n"), std::string::npos);
}

}  // namespace
}  // namespace preflight::builtin_test
