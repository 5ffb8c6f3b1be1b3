#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/limits/rate_limit_store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

// Conformance suite of `preflight::limits::rate_limit_store` (GCRA semantics). See conformance_support.hpp for
// the Factory contract. Rates are slow (T = 2 s) wherever elapsed real time must not matter.
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class rate_limit_store_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    limits::acquire_result acquire(const std::string& key, limits::bucket_limit l, std::uint32_t q) {
        auto r = run(io_, factory_.store().acquire(key, l, q));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : limits::acquire_result{};
    }
    void refund(const std::string& key, limits::bucket_limit l, std::uint32_t q) {
        auto r = run(io_, factory_.store().refund(key, l, q));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    }
    static constexpr std::chrono::milliseconds tol = Factory::tolerance;

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(rate_limit_store_conformance);

constexpr limits::bucket_limit slow{0.5, 5};  // T = 2 s, tau = 10 s

TYPED_TEST_P(rate_limit_store_conformance, new_key_allows_burst_then_denies) {
    const auto k = unique_key("a");
    for (int i = 0; i < 5; ++i) {
        auto r = this->acquire(k, slow, 1);
        EXPECT_TRUE(r.allowed) << i;
        EXPECT_EQ(r.remaining, 4 - i) << i;
        EXPECT_EQ(r.retry_after, 0ns);
        PREFLIGHT_EXPECT_DURATION(r.reset_after, 2s * (i + 1), this->tol);
    }
    auto d = this->acquire(k, slow, 1);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.remaining, 0);
    PREFLIGHT_EXPECT_DURATION(d.retry_after, 2s, this->tol);
    PREFLIGHT_EXPECT_DURATION(d.reset_after, 10s, this->tol);
}

TYPED_TEST_P(rate_limit_store_conformance, quantity_is_all_or_nothing) {
    const auto k = unique_key("q");
    EXPECT_TRUE(this->acquire(k, slow, 3).allowed);
    auto d = this->acquire(k, slow, 3);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.remaining, 2);  // the denied call consumed nothing
    PREFLIGHT_EXPECT_DURATION(d.retry_after, 2s, this->tol);
    auto a = this->acquire(k, slow, 2);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.remaining, 0);
}

TYPED_TEST_P(rate_limit_store_conformance, quantity_above_burst_is_denied_and_consumes_nothing) {
    const auto k = unique_key("big");
    auto d = this->acquire(k, slow, 6);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.remaining, 5);
    PREFLIGHT_EXPECT_DURATION(d.retry_after, 2s, this->tol);
    EXPECT_TRUE(this->acquire(k, slow, 5).allowed);
}

TYPED_TEST_P(rate_limit_store_conformance, peek_reports_and_changes_nothing) {
    const auto k = unique_key("peek");
    auto p = this->acquire(k, slow, 0);
    EXPECT_TRUE(p.allowed);
    EXPECT_EQ(p.remaining, 5);
    EXPECT_EQ(p.retry_after, 0ns);
    EXPECT_TRUE(this->acquire(k, slow, 5).allowed);
    for (int i = 0; i < 2; ++i) {
        auto e = this->acquire(k, slow, 0);
        EXPECT_FALSE(e.allowed);
        EXPECT_EQ(e.remaining, 0);
        PREFLIGHT_EXPECT_DURATION(e.retry_after, 2s, this->tol);
    }
    EXPECT_FALSE(this->acquire(k, slow, 1).allowed);
}

TYPED_TEST_P(rate_limit_store_conformance, tokens_refill_with_time) {
    const auto k = unique_key("refill");
    const limits::bucket_limit fast{10, 2};  // T = 100 ms
    EXPECT_TRUE(this->acquire(k, fast, 2).allowed);
    EXPECT_FALSE(this->acquire(k, fast, 1).allowed);
    this->factory_.advance(150ms);
    auto a = this->acquire(k, fast, 1);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.remaining, 0);
    EXPECT_FALSE(this->acquire(k, fast, 1).allowed);
}

TYPED_TEST_P(rate_limit_store_conformance, refund_returns_tokens_up_to_burst) {
    const auto k = unique_key("refund");
    const limits::bucket_limit l{0.5, 3};
    EXPECT_TRUE(this->acquire(k, l, 3).allowed);
    EXPECT_FALSE(this->acquire(k, l, 1).allowed);
    this->refund(k, l, 2);
    auto a = this->acquire(k, l, 2);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.remaining, 0);
    this->refund(k, l, 100);  // never above burst
    auto p = this->acquire(k, l, 0);
    EXPECT_EQ(p.remaining, 3);
    EXPECT_TRUE(this->acquire(k, l, 3).allowed);
    EXPECT_FALSE(this->acquire(k, l, 1).allowed);
}

TYPED_TEST_P(rate_limit_store_conformance, refund_of_unknown_key_is_a_no_op) {
    const auto k = unique_key("unknown");
    this->refund(k, slow, 3);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(this->acquire(k, slow, 1).allowed);
    EXPECT_FALSE(this->acquire(k, slow, 1).allowed);
}

TYPED_TEST_P(rate_limit_store_conformance, keys_are_independent_and_matched_exactly) {
    const std::string base = unique_key("");
    const std::string keys[] = {
        base + "k",
        base + "k ",
        base + "K",
        base + "k'; DROP TABLE x; --",
        base + "ключ 🚀",
        base + "%_\\",
        base + "k\t"};
    const limits::bucket_limit one{0.5, 1};
    for (const auto& k : keys) EXPECT_TRUE(this->acquire(k, one, 1).allowed) << k;
    for (const auto& k : keys) EXPECT_FALSE(this->acquire(k, one, 1).allowed) << k;
}

REGISTER_TYPED_TEST_SUITE_P(
    rate_limit_store_conformance,
    new_key_allows_burst_then_denies,
    quantity_is_all_or_nothing,
    quantity_above_burst_is_denied_and_consumes_nothing,
    peek_reports_and_changes_nothing,
    tokens_refill_with_time,
    refund_returns_tokens_up_to_burst,
    refund_of_unknown_key_is_a_no_op,
    keys_are_independent_and_matched_exactly
);

}  // namespace preflight::conformance
