#include <preflight/limits/coarse_clock.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using preflight::limits::operation_class;
using preflight::limits::token_bucket_limiter;
using preflight::limits::token_bucket_params;

namespace {

TEST(token_bucket, defaults_match_design) {
    token_bucket_params p;
    EXPECT_EQ(p.read.rate_per_s, 1.0);
    EXPECT_EQ(p.read.burst, 10.0);
    EXPECT_EQ(p.write.rate_per_s, 1.0);
    EXPECT_EQ(p.write.burst, 20.0);
    EXPECT_TRUE(p.cancel_exempt);
}

TEST(token_bucket, burst_then_refill_with_manual_clock) {
    preflight::manual_clock clk;
    token_bucket_limiter lim{clk};
    for (int i = 0; i < 10; ++i) {
        auto r = lim.try_acquire("org_1", operation_class::read);
        ASSERT_TRUE(r.allowed) << i;
        EXPECT_EQ(r.remaining, 9 - i);
    }
    auto denied = lim.try_acquire("org_1", operation_class::read);
    EXPECT_FALSE(denied.allowed);
    EXPECT_EQ(denied.retry_after, 1s);
    EXPECT_EQ(denied.reset_after, 10s);

    clk.advance(999ms);
    auto still = lim.try_acquire("org_1", operation_class::read);
    EXPECT_FALSE(still.allowed);
    EXPECT_EQ(still.retry_after, 1ms);
    clk.advance(1ms);
    EXPECT_TRUE(lim.try_acquire("org_1", operation_class::read).allowed);
    EXPECT_FALSE(lim.try_acquire("org_1", operation_class::read).allowed);

    clk.advance(1h);  // refills to burst, never above
    auto full = lim.peek("org_1", operation_class::read);
    EXPECT_TRUE(full.allowed);
    EXPECT_EQ(full.remaining, 10);
    EXPECT_EQ(full.reset_after, 0ns);
}

TEST(token_bucket, classes_are_independent) {
    preflight::manual_clock clk;
    token_bucket_limiter lim{clk};
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(lim.try_acquire("k", operation_class::write).allowed);
    EXPECT_FALSE(lim.try_acquire("k", operation_class::write).allowed);
    auto read = lim.try_acquire("k", operation_class::read);
    EXPECT_TRUE(read.allowed);
    EXPECT_EQ(read.remaining, 9);
    for (int i = 0; i < 9; ++i) ASSERT_TRUE(lim.try_acquire("k", operation_class::read).allowed);
    EXPECT_FALSE(lim.try_acquire("k", operation_class::read).allowed);
    // Another key is untouched.
    EXPECT_EQ(lim.try_acquire("other", operation_class::write).remaining, 19);
}

TEST(token_bucket, cancel_passes_with_write_bucket_empty_and_never_touches_it) {
    preflight::manual_clock clk;
    token_bucket_limiter lim{clk};
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(lim.try_acquire("org", operation_class::write).allowed);
    ASSERT_FALSE(lim.try_acquire("org", operation_class::write).allowed);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(lim.try_acquire("org", operation_class::cancel).allowed);
    clk.advance(1s);
    // Exactly one token came back; the cancels took none.
    EXPECT_TRUE(lim.try_acquire("org", operation_class::write).allowed);
    EXPECT_FALSE(lim.try_acquire("org", operation_class::write).allowed);
}

TEST(token_bucket, cancel_draws_from_write_when_not_exempt) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.cancel_exempt = false;
    p.write = {1.0, 2.0};
    token_bucket_limiter lim{clk, p};
    EXPECT_TRUE(lim.try_acquire("o", operation_class::cancel).allowed);
    EXPECT_TRUE(lim.try_acquire("o", operation_class::write).allowed);
    EXPECT_FALSE(lim.try_acquire("o", operation_class::cancel).allowed);
}

TEST(token_bucket, peek_does_not_consume_and_gives_exact_retry_after) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.read = {2.0, 2.0};  // T = 500 ms
    token_bucket_limiter lim{clk, p};
    auto fresh = lim.peek("u", operation_class::read);
    EXPECT_TRUE(fresh.allowed);
    EXPECT_EQ(fresh.remaining, 2);
    EXPECT_EQ(lim.size(), 0u);  // peeking creates nothing
    ASSERT_TRUE(lim.try_acquire("u", operation_class::read).allowed);
    ASSERT_TRUE(lim.try_acquire("u", operation_class::read).allowed);
    clk.advance(200ms);
    for (int i = 0; i < 3; ++i) {
        auto pk = lim.peek("u", operation_class::read);
        EXPECT_FALSE(pk.allowed);
        EXPECT_EQ(pk.retry_after, 300ms);
        EXPECT_EQ(pk.remaining, 0);
    }
    clk.advance(300ms);
    EXPECT_TRUE(lim.peek("u", operation_class::read).allowed);
    EXPECT_TRUE(lim.try_acquire("u", operation_class::read).allowed);
}

TEST(token_bucket, quantity_is_all_or_nothing) {
    preflight::manual_clock clk;
    token_bucket_limiter lim{clk};
    EXPECT_TRUE(lim.try_acquire("q", operation_class::read, 7).allowed);
    auto denied = lim.try_acquire("q", operation_class::read, 4);
    EXPECT_FALSE(denied.allowed);
    EXPECT_EQ(denied.remaining, 3);
    EXPECT_EQ(denied.retry_after, 1s);
    EXPECT_TRUE(lim.try_acquire("q", operation_class::read, 3).allowed);
}

TEST(token_bucket, refund_gives_tokens_back_up_to_burst) {
    preflight::manual_clock clk;
    token_bucket_limiter lim{clk};
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(lim.try_acquire("r", operation_class::write).allowed);
    ASSERT_FALSE(lim.try_acquire("r", operation_class::write).allowed);
    lim.refund("r", operation_class::write, 1);
    EXPECT_TRUE(lim.try_acquire("r", operation_class::write).allowed);
    lim.refund("r", operation_class::write, 1000);
    EXPECT_EQ(lim.peek("r", operation_class::write).remaining, 20);
    lim.refund("unknown", operation_class::write, 5);  // no-op
    EXPECT_EQ(lim.peek("unknown", operation_class::write).remaining, 20);
}

TEST(token_bucket, rejects_invalid_limits) {
    token_bucket_params p;
    p.write.burst = 0;
    EXPECT_THROW(token_bucket_limiter(preflight::clock::steady(), p), preflight::limits::invalid_limit);
    p = {};
    p.read.rate_per_s = -1;
    EXPECT_THROW(token_bucket_limiter(preflight::clock::steady(), p), preflight::limits::invalid_limit);
}

TEST(token_bucket, flood_of_distinct_keys_stays_under_bound) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.max_keys = 10'000;
    token_bucket_limiter lim{clk, p};
    std::size_t peak = 0;
    for (int i = 0; i < 1'000'000; ++i) {
        ASSERT_TRUE(lim.try_acquire("flood:" + std::to_string(i), operation_class::write).allowed);
        if (i % 50'000 == 0) peak = std::max(peak, lim.size());
    }
    peak = std::max(peak, lim.size());
    EXPECT_LE(peak, 10'000u);
    EXPECT_GT(lim.forced_evictions(), 0u);  // the clock never moved: every key was still active
}

TEST(token_bucket, idle_keys_are_evicted_without_forgetting_active_ones) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.max_keys = 10'000;
    token_bucket_limiter lim{clk, p};
    for (int i = 0; i < 1'000'000; ++i) {
        ASSERT_TRUE(lim.try_acquire("k" + std::to_string(i), operation_class::read).allowed);
        if (i % 1000 == 999) clk.advance(1s);  // one token per key refills within 1 s: old keys become idle
    }
    EXPECT_LE(lim.size(), 10'000u);
    EXPECT_EQ(lim.forced_evictions(), 0u);
    clk.advance(1s);
    lim.evict_idle();
    EXPECT_EQ(lim.size(), 0u);
}

TEST(token_bucket, many_threads_never_over_admit_one_key) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.write = {1000.0, 50.0};
    token_bucket_limiter lim{clk, p};
    std::atomic<long> admitted{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
        workers.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                if (lim.try_acquire("hot", operation_class::write).allowed) admitted.fetch_add(1);
            }
        });
    }
    // 500 steps of 1 ms: at most burst + rate × 0.5 s = 50 + 500 tokens exist.
    for (int step = 0; step < 500; ++step) {
        clk.advance(1ms);
        std::this_thread::yield();
    }
    stop = true;
    for (auto& w : workers) w.join();
    // Drain what is left at the final time: the total can never exceed the bound.
    while (lim.try_acquire("hot", operation_class::write).allowed) admitted.fetch_add(1);
    EXPECT_LE(admitted.load(), 50 + 500);
    EXPECT_GE(admitted.load(), 50);
}

}  // namespace

namespace {

TEST(coarse_clock, is_monotonic_and_reports_its_resolution) {
    const auto& c = preflight::limits::coarse_steady_clock();
    const auto a = c.now();
    const auto b = c.now();
    EXPECT_LE(a, b);
    EXPECT_GT(preflight::limits::coarse_clock_resolution().count(), 0);
    // Counts from the same origin as the precise clock (boot on Linux) and never runs ahead of it.
    const auto coarse = c.now();
    const auto precise = preflight::clock::steady().now();
    EXPECT_LE(coarse, precise);
    EXPECT_GT(coarse.time_since_epoch().count(), 0);
}

TEST(coarse_clock, drives_a_limiter) {
    token_bucket_limiter lim{preflight::limits::coarse_steady_clock()};
    EXPECT_TRUE(lim.try_acquire("k", operation_class::read).allowed);
}

}  // namespace

namespace {

TEST(token_bucket, tiny_key_bound_is_respected_with_many_shards) {
    preflight::manual_clock clk;
    token_bucket_params p;
    p.max_keys = 5;
    p.shards = 64;
    token_bucket_limiter lim{clk, p};
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(lim.try_acquire("t" + std::to_string(i), operation_class::read).allowed);
        ASSERT_LE(lim.size(), 5u);
    }
}

}  // namespace
