#include <preflight/limits/run_budget.hpp>

#include <gtest/gtest.h>

#include <type_traits>

using preflight::limits::run_budget;
using preflight::limits::run_budget_exhausted;
using preflight::limits::run_budget_policy;

namespace {

static_assert(!std::is_copy_constructible_v<run_budget>);
static_assert(!std::is_copy_assignable_v<run_budget>);
static_assert(!std::is_default_constructible_v<run_budget>);

TEST(run_budget, default_is_20_mutating_calls) {
    run_budget_policy policy;
    auto b = policy.make();
    EXPECT_EQ(b.max(), 20u);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(b.try_charge()) << i;
    EXPECT_FALSE(b.try_charge());
    EXPECT_EQ(b.used(), 20u);
    EXPECT_EQ(b.remaining(), 0u);
}

TEST(run_budget, exhaustion_is_a_typed_error_with_the_exact_message) {
    auto b = run_budget_policy{}.make();
    for (int i = 0; i < 20; ++i) b.charge();
    try {
        b.charge();
        FAIL() << "expected run_budget_exhausted";
    } catch (const run_budget_exhausted& e) {
        EXPECT_STREQ(e.what(), "rate-limit budget exhausted: used 20 of 20 mutating calls for this flow run");
        EXPECT_EQ(e.used(), 20u);
        EXPECT_EQ(e.max(), 20u);
    }
    EXPECT_EQ(b.used(), 20u);  // a failed charge charges nothing
}

TEST(run_budget, exhausted_run_does_not_block_the_next_runs) {
    const run_budget_policy policy{5};
    auto run1 = policy.make();
    for (int i = 0; i < 5; ++i) run1.charge();
    EXPECT_THROW(run1.charge(), run_budget_exhausted);
    for (int run = 2; run <= 3; ++run) {
        auto b = policy.make();
        EXPECT_EQ(b.used(), 0u) << "run " << run;
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.try_charge()) << "run " << run << " call " << i;
        EXPECT_FALSE(b.try_charge());
    }
    EXPECT_EQ(run1.used(), 5u);  // and each run sees only its own budget
}

TEST(run_budget, multi_unit_charge_is_all_or_nothing) {
    auto b = run_budget_policy{3}.make();
    EXPECT_TRUE(b.try_charge(2));
    EXPECT_FALSE(b.try_charge(2));
    EXPECT_EQ(b.used(), 2u);
    EXPECT_TRUE(b.try_charge(1));
}

TEST(run_budget, zero_budget_is_rejected) {
    EXPECT_THROW((void)run_budget_policy{0}.make(), std::invalid_argument);
}

TEST(run_budget, can_be_moved_into_the_run_that_owns_it) {
    auto a = run_budget_policy{2}.make();
    a.charge();
    run_budget b = std::move(a);
    EXPECT_EQ(b.used(), 1u);
    EXPECT_TRUE(b.try_charge());
    EXPECT_FALSE(b.try_charge());
}

}  // namespace
