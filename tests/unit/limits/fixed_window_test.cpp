#include "run_coro.hpp"
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using preflight::limits::fixed_window_counter;
using preflight::limits::window_limit;

namespace {

// The manual clock starts at 24 h, a multiple of the 1 h period: windows start at 24 h, 25 h, ...
TEST(fixed_window, counts_up_to_max_and_blocked_attempts_do_not_increment) {
    preflight::manual_clock clk;
    fixed_window_counter c{clk};
    const window_limit lim{3, 3600s};
    for (std::uint64_t i = 1; i <= 3; ++i) {
        auto r = c.consume("org_1", lim);
        ASSERT_TRUE(r.allowed);
        EXPECT_EQ(r.count, i);
        EXPECT_EQ(r.max, 3u);
    }
    clk.advance(10min);
    for (int i = 0; i < 5; ++i) {
        auto r = c.consume("org_1", lim);
        EXPECT_FALSE(r.allowed);
        EXPECT_EQ(r.count, 3u);  // blocked attempts are not counted
        EXPECT_EQ(r.reset_after, 50min);
    }
    clk.advance(50min);  // next window
    auto r = c.consume("org_1", lim);
    EXPECT_TRUE(r.allowed);
    EXPECT_EQ(r.count, 1u);
    EXPECT_EQ(r.reset_after, 1h);
}

TEST(fixed_window, multi_unit_consume_is_all_or_nothing) {
    preflight::manual_clock clk;
    fixed_window_counter c{clk};
    const window_limit lim{10, 60s};
    EXPECT_TRUE(c.consume("k", lim, 7).allowed);
    auto r = c.consume("k", lim, 4);
    EXPECT_FALSE(r.allowed);
    EXPECT_EQ(r.count, 7u);
    EXPECT_TRUE(c.consume("k", lim, 3).allowed);
    auto peek = c.consume("k", lim, 0);
    EXPECT_TRUE(peek.allowed);
    EXPECT_EQ(peek.count, 10u);
}

TEST(fixed_window, windows_align_to_the_period) {
    preflight::manual_clock clk;
    clk.advance(30s);  // 24 h + 30 s
    fixed_window_counter c{clk};
    auto r = c.consume("a", window_limit{5, 60s});
    EXPECT_EQ(r.reset_after, 30s);
}

TEST(fixed_window, purges_windows_idle_for_two_periods) {
    preflight::manual_clock clk;
    fixed_window_counter c{clk};
    const window_limit lim{5, 60s};
    (void)c.consume("old", lim);
    clk.advance(60s);
    (void)c.consume("recent", lim);
    clk.advance(59s);  // "old" window started 119 s ago: not yet purgeable
    EXPECT_EQ(c.purge_idle(), 0u);
    clk.advance(1s);  // old: start + 2 × period == now
    EXPECT_EQ(c.purge_idle(), 1u);
    EXPECT_EQ(c.size(), 1u);
    clk.advance(60s);
    EXPECT_EQ(c.purge_idle(), 1u);
    EXPECT_EQ(c.size(), 0u);
}

TEST(fixed_window, key_count_stays_bounded) {
    preflight::manual_clock clk;
    fixed_window_counter c{clk, {.max_keys = 1000, .shards = 8}};
    for (int i = 0; i < 100'000; ++i) ASSERT_TRUE(c.consume("k" + std::to_string(i), window_limit{1, 60s}).allowed);
    EXPECT_LE(c.size(), 1000u);
}

TEST(fixed_window, rejects_invalid_limits) {
    preflight::manual_clock clk;
    fixed_window_counter c{clk};
    EXPECT_THROW((void)c.consume("k", window_limit{0, 60s}), preflight::limits::invalid_limit);
    EXPECT_THROW((void)c.consume("k", window_limit{1, 0s}), preflight::limits::invalid_limit);
}

TEST(memory_fixed_window_store, implements_the_interface) {
    preflight::manual_clock clk;
    preflight::limits::memory_fixed_window_store store{clk};
    preflight::limits::fixed_window_store& s = store;
    boost::asio::io_context ctx;
    auto r1 = preflight::test::run_coro(ctx, s.consume("org", window_limit{1, 3600s}, 1));
    ASSERT_TRUE(r1.has_value());
    EXPECT_TRUE(r1->allowed);
    auto r2 = preflight::test::run_coro(ctx, s.consume("org", window_limit{1, 3600s}, 1));
    ASSERT_TRUE(r2.has_value());
    EXPECT_FALSE(r2->allowed);
    EXPECT_EQ(r2->count, 1u);
    auto bad = preflight::test::run_coro(ctx, s.consume("org", window_limit{0, 3600s}, 1));
    ASSERT_TRUE(bad.has_error());
    EXPECT_EQ(bad.error(), preflight::errc::bad_input);
    clk.advance(2h);
    auto purged = preflight::test::run_coro(ctx, s.purge_idle());
    ASSERT_TRUE(purged.has_value());
    EXPECT_EQ(*purged, 1u);
}

}  // namespace
