#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/window_refund.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

// Conformance suite of `preflight::limits::fixed_window_store`. See conformance_support.hpp for the Factory
// contract. Hour-long windows wherever elapsed real time must not matter.
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class fixed_window_store_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    limits::window_result consume(const std::string& key, limits::window_limit l, std::uint64_t n) {
        auto r = run(io_, factory_.store().consume(key, l, n));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : limits::window_result{};
    }
    std::uint64_t purge() {
        auto r = run(io_, factory_.store().purge_idle());
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : 0;
    }
    static constexpr std::chrono::milliseconds tol = Factory::tolerance;

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(fixed_window_store_conformance);

constexpr limits::window_limit hourly3{3, std::chrono::seconds{3600}};

TYPED_TEST_P(fixed_window_store_conformance, counts_up_to_max_then_blocks) {
    const auto k = unique_key("a");
    for (std::uint64_t i = 1; i <= 3; ++i) {
        auto r = this->consume(k, hourly3, 1);
        EXPECT_TRUE(r.allowed) << i;
        EXPECT_EQ(r.count, i);
        EXPECT_EQ(r.max, 3u);
        EXPECT_GT(r.reset_after, 0ns);
        EXPECT_LE(r.reset_after, 3600s);
    }
    auto d = this->consume(k, hourly3, 1);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.count, 3u);
    EXPECT_EQ(d.max, 3u);
    EXPECT_GT(d.reset_after, 0ns);
    EXPECT_LE(d.reset_after, 3600s);
}

TYPED_TEST_P(fixed_window_store_conformance, blocked_attempt_does_not_increment) {
    const auto k = unique_key("b");
    const limits::window_limit l{5, std::chrono::seconds{3600}};
    EXPECT_EQ(this->consume(k, l, 4).count, 4u);
    for (int i = 0; i < 3; ++i) {
        auto d = this->consume(k, l, 2);
        EXPECT_FALSE(d.allowed);
        EXPECT_EQ(d.count, 4u);
    }
    auto a = this->consume(k, l, 1);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.count, 5u);
}

TYPED_TEST_P(fixed_window_store_conformance, n_above_max_is_blocked_on_a_fresh_key) {
    const auto k = unique_key("c");
    auto d = this->consume(k, hourly3, 4);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.count, 0u);
    auto a = this->consume(k, hourly3, 3);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.count, 3u);
}

TYPED_TEST_P(fixed_window_store_conformance, next_window_starts_from_zero) {
    const auto k = unique_key("d");
    const limits::window_limit l{2, std::chrono::seconds{1}};
    auto first = this->consume(k, l, 2);
    EXPECT_TRUE(first.allowed);
    EXPECT_LE(first.reset_after, 1s);
    EXPECT_FALSE(this->consume(k, l, 1).allowed);
    advance_by(this->factory_, std::chrono::ceil<std::chrono::milliseconds>(first.reset_after) + 20ms);
    auto a = this->consume(k, l, 1);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.count, 1u);
}

TYPED_TEST_P(fixed_window_store_conformance, keys_are_independent_and_matched_exactly) {
    const std::string base = unique_key("");
    const std::string keys[] = {base + "org", base + "org ", base + "ORG", base + "o'rg\"; --", base + "组织 ✓"};
    const limits::window_limit one{1, std::chrono::seconds{3600}};
    for (const auto& k : keys) EXPECT_TRUE(this->consume(k, one, 1).allowed) << k;
    for (const auto& k : keys) EXPECT_FALSE(this->consume(k, one, 1).allowed) << k;
}

TYPED_TEST_P(fixed_window_store_conformance, purge_removes_only_idle_windows) {
    const auto idle = unique_key("idle");
    const auto busy = unique_key("busy");
    const limits::window_limit sec{5, std::chrono::seconds{1}};
    const limits::window_limit hour{5, std::chrono::seconds{3600}};
    EXPECT_EQ(this->consume(idle, sec, 5).count, 5u);
    EXPECT_EQ(this->consume(busy, hour, 1).count, 1u);
    advance_by(this->factory_, 2100ms);  // the 1 s window ended more than one full period ago
    EXPECT_GE(this->purge(), 1u);
    EXPECT_EQ(this->consume(idle, sec, 1).count, 1u);
    EXPECT_EQ(this->consume(busy, hour, 1).count, 2u);  // the live window survived the purge
}

TYPED_TEST_P(fixed_window_store_conformance, refund_gives_units_back_to_the_current_window_only) {
    auto* refunds = dynamic_cast<limits::window_refund*>(&this->factory_.store());
    ASSERT_NE(refunds, nullptr) << "every fixed-window store of the project can give units back";
    auto refund = [&](const std::string& key, limits::window_limit l, std::uint64_t n) {
        auto r = run(this->io_, refunds->refund(key, l, n));
        EXPECT_TRUE(r) << (r ? "" : r.error().message());
    };
    const auto k = unique_key("refund");
    refund(k, hourly3, 1);  // unknown key: no-op
    EXPECT_EQ(this->consume(k, hourly3, 0).count, 0u);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(this->consume(k, hourly3, 1).allowed);
    EXPECT_FALSE(this->consume(k, hourly3, 1).allowed);
    refund(k, hourly3, 1);
    EXPECT_EQ(this->consume(k, hourly3, 0).count, 2u);
    EXPECT_TRUE(this->consume(k, hourly3, 1).allowed) << "the refunded unit can be used again";
    refund(k, {3, std::chrono::seconds{7200}}, 3);  // another period is another window: left alone
    EXPECT_EQ(this->consume(k, hourly3, 0).count, 3u);
    refund(k, hourly3, 10);
    EXPECT_EQ(this->consume(k, hourly3, 0).count, 0u) << "never below zero";

    const auto ended = unique_key("refund_ended");
    const limits::window_limit sec{2, std::chrono::seconds{1}};
    auto first = this->consume(ended, sec, 2);
    ASSERT_TRUE(first.allowed);
    advance_by(this->factory_, std::chrono::ceil<std::chrono::milliseconds>(first.reset_after) + 20ms);
    EXPECT_EQ(this->consume(ended, sec, 1).count, 1u);
    refund(ended, sec, 1);
    EXPECT_EQ(this->consume(ended, sec, 0).count, 0u) << "the refund applies to the window that is current now";
}

REGISTER_TYPED_TEST_SUITE_P(
    fixed_window_store_conformance,
    refund_gives_units_back_to_the_current_window_only,
    counts_up_to_max_then_blocks,
    blocked_attempt_does_not_increment,
    n_above_max_is_blocked_on_a_fresh_key,
    next_window_starts_from_zero,
    keys_are_independent_and_matched_exactly,
    purge_removes_only_idle_windows
);

}  // namespace preflight::conformance
