#include <preflight/core/clock.hpp>

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(manual_clock, moves_only_when_told) {
    preflight::manual_clock c;
    const auto t0 = c.now();
    EXPECT_EQ(c.now(), t0);
    c.advance(1500ms);
    EXPECT_EQ(c.now() - t0, 1500ms);
    c.set(t0);
    EXPECT_EQ(c.now(), t0);
}

TEST(steady_clock, is_monotonic) {
    const auto& c = preflight::clock::steady();
    const auto a = c.now();
    const auto b = c.now();
    EXPECT_LE(a, b);
}
