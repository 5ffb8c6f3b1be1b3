#include "run_coro.hpp"
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

using namespace std::chrono_literals;
using preflight::limits::bucket_limit;
using preflight::test::run_coro;

namespace {

TEST(memory_rate_limit_store, acquire_peek_refund_through_the_interface) {
    preflight::manual_clock clk;
    preflight::limits::memory_rate_limit_store store{clk};
    preflight::limits::rate_limit_store& s = store;
    boost::asio::io_context ctx;
    const bucket_limit lim{1.0, 2.0};
    auto a = run_coro(ctx, s.acquire("k", lim, 2));
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->allowed);
    EXPECT_EQ(a->remaining, 0);
    EXPECT_EQ(a->reset_after, 2s);
    auto denied = run_coro(ctx, s.acquire("k", lim, 1));
    ASSERT_TRUE(denied.has_value());
    EXPECT_FALSE(denied->allowed);
    EXPECT_EQ(denied->retry_after, 1s);
    auto peek = run_coro(ctx, s.acquire("k", lim, 0));
    ASSERT_TRUE(peek.has_value());
    EXPECT_FALSE(peek->allowed);
    EXPECT_EQ(peek->retry_after, 1s);
    ASSERT_TRUE(run_coro(ctx, s.refund("k", lim, 1)).has_value());
    auto after = run_coro(ctx, s.acquire("k", lim, 1));
    ASSERT_TRUE(after.has_value());
    EXPECT_TRUE(after->allowed);
    ASSERT_TRUE(run_coro(ctx, s.refund("never-seen", lim, 1)).has_value());
    EXPECT_EQ(store.size(), 1u);
}

TEST(memory_rate_limit_store, invalid_limit_is_bad_input) {
    preflight::limits::memory_rate_limit_store store;
    auto r = store.try_acquire("k", bucket_limit{0.0, 1.0}, 1);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), preflight::errc::bad_input);
    EXPECT_EQ(store.refund_now("k", bucket_limit{1.0, 0.5}, 1).error(), preflight::errc::bad_input);
}

TEST(memory_admission_store, keys_stay_bounded_under_a_flood_of_distinct_keys) {
    preflight::manual_clock clk;
    preflight::limits::memory_admission_store store{clk, {.sweep_floor = 64}};
    std::size_t most = 0;
    for (int i = 0; i < 20'000; ++i) {
        auto g = store.reserve_now("org_" + std::to_string(i), 1, 30s);
        ASSERT_TRUE(g && g->admitted);
        ASSERT_TRUE(store.release_now(g->lease_id));
        most = std::max(most, store.keys());
    }
    EXPECT_LE(most, 2u * 64 + 2) << "empty entries are swept once they outnumber the floor";
    EXPECT_EQ(store.stored_leases(), 0u);
    // A hot key keeps working across sweeps, and a released id stays released.
    auto a = store.reserve_now("hot", 1, 30s);
    ASSERT_TRUE(a && a->admitted);
    EXPECT_FALSE(store.reserve_now("hot", 1, 30s)->admitted);
    EXPECT_TRUE(store.release_now(a->lease_id));
    EXPECT_FALSE(store.release_now(a->lease_id));
    EXPECT_FALSE(store.release_now("not-a-lease-id")) << "a malformed id is simply unknown";
    EXPECT_TRUE(store.reserve_now("hot", 1, 30s)->admitted);
}

TEST(memory_admission_store, reserves_up_to_max_slots_and_releases) {
    preflight::manual_clock clk;
    preflight::limits::memory_admission_store store{clk};
    preflight::limits::admission_store& s = store;
    boost::asio::io_context ctx;
    std::set<std::string> ids;
    for (std::uint32_t i = 1; i <= 2; ++i) {
        auto g = run_coro(ctx, s.reserve("org", 2, 30s));
        ASSERT_TRUE(g.has_value());
        EXPECT_TRUE(g->admitted);
        EXPECT_EQ(g->in_use, i);
        EXPECT_EQ(g->max, 2u);
        EXPECT_EQ(g->lease_id.size(), 32u);
        EXPECT_EQ(g->lease_id.find_first_not_of("0123456789abcdef"), std::string::npos);
        ids.insert(g->lease_id);
    }
    EXPECT_EQ(ids.size(), 2u);
    auto full = run_coro(ctx, s.reserve("org", 2, 30s));
    ASSERT_TRUE(full.has_value());
    EXPECT_FALSE(full->admitted);
    EXPECT_TRUE(full->lease_id.empty());
    EXPECT_EQ(full->in_use, 2u);

    const std::string first = *ids.begin();
    EXPECT_TRUE(*run_coro(ctx, s.release(first)));
    EXPECT_FALSE(*run_coro(ctx, s.release(first)));  // double release is harmless
    EXPECT_FALSE(*run_coro(ctx, s.release("nope")));
    auto again = run_coro(ctx, s.reserve("org", 2, 30s));
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->admitted);
}

TEST(memory_admission_store, leases_expire_and_renew_extends_live_ones) {
    preflight::manual_clock clk;
    preflight::limits::memory_admission_store store{clk};
    auto a = store.reserve_now("org", 1, 10s);
    ASSERT_TRUE(a.has_value() && a->admitted);
    clk.advance(9s);
    EXPECT_TRUE(store.renew_now(a->lease_id, 10s));  // now expires at 19 s
    clk.advance(9s);
    EXPECT_FALSE(store.reserve_now("org", 1, 10s)->admitted);
    clk.advance(1s);  // expired: the slot of a dead holder comes back
    EXPECT_EQ(store.in_use("org"), 0u);
    EXPECT_FALSE(store.renew_now(a->lease_id, 10s));
    auto b = store.reserve_now("org", 1, 10s);
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(b->admitted);
    EXPECT_FALSE(store.release_now(a->lease_id));
    EXPECT_TRUE(store.release_now(b->lease_id));
    EXPECT_EQ(store.stored_leases(), 0u);
}

TEST(memory_admission_store, bad_arguments_are_bad_input) {
    preflight::limits::memory_admission_store store;
    EXPECT_EQ(store.reserve_now("k", 0, 1s).error(), preflight::errc::bad_input);
    EXPECT_EQ(store.reserve_now("k", 1, 0s).error(), preflight::errc::bad_input);
}

TEST(memory_admission_store, expired_leases_do_not_accumulate) {
    preflight::manual_clock clk;
    preflight::limits::memory_admission_store store{clk, {.sweep_floor = 16}};
    for (int i = 0; i < 10'000; ++i) {
        ASSERT_TRUE(store.reserve_now("k" + std::to_string(i), 1, 1s)->admitted);
        clk.advance(2s);
    }
    EXPECT_LE(store.stored_leases(), 64u);
}

}  // namespace
