#include <preflight/limits/gcra.hpp>

#include <gtest/gtest.h>

namespace gcra = preflight::limits::gcra;

namespace {

constexpr std::int64_t sec = 1'000'000'000;

TEST(gcra, params_from_limit) {
    const auto p = gcra::to_params({2.0, 5.0});
    EXPECT_EQ(p.emission_ns, sec / 2);
    EXPECT_EQ(p.tau_ns, 5 * sec / 2);
    // Very high rates keep T >= 1 ns so the arithmetic never divides by zero.
    EXPECT_EQ(gcra::to_params({1e12, 1.0}).emission_ns, 1);
}

TEST(gcra, new_key_admits_burst_then_denies_with_exact_retry_after) {
    const auto p = gcra::to_params({1.0, 3.0});
    const std::int64_t now = 100 * sec;
    std::int64_t tat = now;
    for (int i = 0; i < 3; ++i) {
        const auto d = gcra::decide(tat, now, 1, p);
        ASSERT_TRUE(d.allowed) << i;
        EXPECT_EQ(d.remaining, 2 - i);
        EXPECT_EQ(d.reset_after, (i + 1) * sec);
        tat = d.tat_after;
    }
    const auto denied = gcra::decide(tat, now, 1, p);
    EXPECT_FALSE(denied.allowed);
    EXPECT_FALSE(denied.store);
    EXPECT_EQ(denied.retry_after, sec);
    EXPECT_EQ(denied.tat_after, tat);
    // Asking for 2 at once needs two emission intervals.
    EXPECT_EQ(gcra::decide(tat, now, 2, p).retry_after, 2 * sec);
}

TEST(gcra, peek_reports_without_storing) {
    const auto p = gcra::to_params({1.0, 2.0});
    const std::int64_t now = 10 * sec;
    const auto full = gcra::decide(now, now, 0, p);
    EXPECT_TRUE(full.allowed);
    EXPECT_EQ(full.remaining, 2);
    EXPECT_EQ(full.retry_after, 0);
    EXPECT_FALSE(full.store);
    const std::int64_t empty_tat = now + 2 * sec;
    const auto empty = gcra::decide(empty_tat, now, 0, p);
    EXPECT_FALSE(empty.allowed);
    EXPECT_EQ(empty.remaining, 0);
    EXPECT_EQ(empty.retry_after, sec);
    EXPECT_EQ(empty.reset_after, 2 * sec);
}

TEST(gcra, refund_never_exceeds_burst) {
    const auto p = gcra::to_params({1.0, 5.0});
    const std::int64_t now = 50 * sec;
    EXPECT_EQ(gcra::refund(now + 3 * sec, now, 1, p), now + 2 * sec);
    EXPECT_EQ(gcra::refund(now + 3 * sec, now, 10, p), now);
}

TEST(gcra, idle_key_reports_full_bucket) {
    const auto p = gcra::to_params({1.0, 4.0});
    const std::int64_t now = 1000 * sec;
    const auto d = gcra::decide(now - 500 * sec, now, 0, p);
    EXPECT_EQ(d.remaining, 4);
    EXPECT_EQ(d.reset_after, 0);
    EXPECT_TRUE(gcra::is_full(now - 1, now));
    EXPECT_FALSE(gcra::is_full(now + 1, now));
}

TEST(gcra, huge_quantity_saturates_instead_of_wrapping) {
    const auto p = gcra::to_params({1e-6, 1.0});
    const auto d = gcra::decide(sec, sec, 4'000'000'000u, p);
    EXPECT_FALSE(d.allowed);
    EXPECT_GT(d.retry_after, 0);
}

}  // namespace
