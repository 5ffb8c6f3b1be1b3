#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/limits/run_budget_store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

// Conformance suite of `preflight::limits::run_budget_store` (Factory contract: conformance_support.hpp; `store()`
// returns a run_budget_store&). Short ttls (200 ms) where expiry is the point, long ones (1 h) elsewhere.
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class run_budget_store_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    limits::run_charge charge(
        const std::string& run, std::uint64_t max, std::uint64_t n = 1, std::chrono::milliseconds ttl = 1h
    ) {
        auto r = run_(factory_.store().charge(run, max, n, ttl));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : limits::run_charge{};
    }
    template <class T>
    T run_(boost::asio::awaitable<T> aw) {
        return conformance::run(io_, std::move(aw));
    }

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(run_budget_store_conformance);

TYPED_TEST_P(run_budget_store_conformance, counts_up_to_the_budget_and_a_denial_counts_nothing) {
    const auto run = unique_key("run");
    for (std::uint64_t i = 1; i <= 3; ++i) {
        auto c = this->charge(run, 3);
        EXPECT_TRUE(c.allowed);
        EXPECT_EQ(c.used, i);
        EXPECT_EQ(c.max, 3U);
    }
    auto over = this->charge(run, 3);
    EXPECT_FALSE(over.allowed);
    EXPECT_EQ(over.used, 3U);
    EXPECT_FALSE(this->charge(run, 5, 3).allowed) << "3 more of 5 with 3 used";
    auto two = this->charge(run, 5, 2);
    EXPECT_TRUE(two.allowed) << "the denied 3 counted nothing";
    EXPECT_EQ(two.used, 5U);
}

TYPED_TEST_P(run_budget_store_conformance, runs_are_independent) {
    const auto a = unique_key("a");
    const auto b = unique_key("b");
    EXPECT_TRUE(this->charge(a, 1).allowed);
    EXPECT_FALSE(this->charge(a, 1).allowed);
    EXPECT_TRUE(this->charge(b, 1).allowed);
    auto fresh = this->charge(unique_key("c"), 2, 3);
    EXPECT_FALSE(fresh.allowed) << "more than the budget at once";
    EXPECT_EQ(fresh.used, 0U);
}

TYPED_TEST_P(run_budget_store_conformance, refund_gives_calls_back_never_below_zero) {
    const auto run = unique_key("run");
    EXPECT_TRUE(this->charge(run, 2).allowed);
    EXPECT_TRUE(this->charge(run, 2).allowed);
    ASSERT_TRUE(this->run_(this->factory_.store().refund(run, 1)).has_value());
    EXPECT_TRUE(this->charge(run, 2).allowed);
    ASSERT_TRUE(this->run_(this->factory_.store().refund(run, 10)).has_value());
    EXPECT_EQ(this->charge(run, 2).used, 1U);
    ASSERT_TRUE(this->run_(this->factory_.store().refund(unique_key("unknown"), 1)).has_value());
}

TYPED_TEST_P(run_budget_store_conformance, a_run_is_forgotten_ttl_after_its_last_charge) {
    const auto run = unique_key("run");
    EXPECT_TRUE(this->charge(run, 1, 1, 600ms).allowed);
    advance_by(this->factory_, 300ms);
    EXPECT_FALSE(this->charge(run, 1, 1, 600ms).allowed) << "still live (a denial does not extend it)";
    advance_by(this->factory_, 300ms + this->factory_.tolerance);
    auto again = this->charge(run, 1, 1, 600ms);
    EXPECT_TRUE(again.allowed) << "forgotten: a new life";
    EXPECT_EQ(again.used, 1U);
}

TYPED_TEST_P(run_budget_store_conformance, bad_input_is_refused) {
    auto zero = this->run_(this->factory_.store().charge(unique_key("run"), 0, 1, 1h));
    ASSERT_FALSE(zero.has_value());
    EXPECT_EQ(zero.error(), make_error_code(errc::bad_input));
    auto no_ttl = this->run_(this->factory_.store().charge(unique_key("run"), 1, 1, 0ms));
    ASSERT_FALSE(no_ttl.has_value());
    EXPECT_EQ(no_ttl.error(), make_error_code(errc::bad_input));
}

REGISTER_TYPED_TEST_SUITE_P(
    run_budget_store_conformance,
    counts_up_to_the_budget_and_a_denial_counts_nothing,
    runs_are_independent,
    refund_gives_calls_back_never_below_zero,
    a_run_is_forgotten_ttl_after_its_last_charge,
    bad_input_is_refused
);

}  // namespace preflight::conformance
