#include <preflight/gates/precedence.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <vector>

using preflight::gates::precedence_fsm;
using preflight::gates::precedence_step;

namespace {

/// The sequential oracle: the first denying gate in declaration order, or nullopt when all pass.
std::optional<std::size_t> oracle(const std::vector<bool>& denied) {
    for (std::size_t i = 0; i < denied.size(); ++i) {
        if (denied[i]) return i;
    }
    return std::nullopt;
}

}  // namespace

// Every completion order x every pass/deny combination, for 1..5 gates: the decision equals the oracle, and it
// is taken at the first moment it is determined (all gates before the decider finished), never earlier.
TEST(precedence_fsm, matches_sequential_oracle_for_every_completion_order) {
    std::size_t cases = 0;
    for (std::size_t n = 1; n <= 5; ++n) {
        for (unsigned mask = 0; mask < (1U << n); ++mask) {
            std::vector<bool> denied(n);
            for (std::size_t i = 0; i < n; ++i) denied[i] = ((mask >> i) & 1U) != 0;
            const auto expected = oracle(denied);
            std::vector<std::size_t> order(n);
            std::iota(order.begin(), order.end(), 0);
            do {
                ++cases;
                precedence_fsm fsm(n);
                std::vector<bool> done(n, false);
                bool decided = false;
                for (std::size_t k = 0; k < n && !decided; ++k) {
                    const auto gi = order[k];
                    auto step = fsm.on_gate_done(gi, denied[gi]);
                    done[gi] = true;
                    // Determined: every gate up to the oracle's decider (or all gates) has finished.
                    const std::size_t need = expected ? *expected + 1 : n;
                    bool determined = true;
                    for (std::size_t i = 0; i < need; ++i) determined = determined && done[i];
                    ASSERT_EQ(step != precedence_step::keep_waiting, determined) << "n=" << n << " mask=" << mask;
                    if (step == precedence_step::keep_waiting) continue;
                    decided = true;
                    EXPECT_TRUE(fsm.decided());
                    EXPECT_EQ(fsm.deciding_gate(), expected);
                    const bool any_pending = std::count(done.begin(), done.end(), false) > 0;
                    EXPECT_EQ(step == precedence_step::cancel_rest, any_pending);
                    if (!expected) {
                        EXPECT_EQ(step, precedence_step::decide);
                    }
                }
                ASSERT_TRUE(decided);
            } while (std::next_permutation(order.begin(), order.end()));
        }
    }
    EXPECT_EQ(cases, 1U * 2 + 2 * 4 + 6 * 8 + 24 * 16 + 120 * 32);
}

TEST(precedence_fsm, zero_gates_is_decided_at_once) {
    precedence_fsm fsm(0);
    EXPECT_TRUE(fsm.decided());
    EXPECT_FALSE(fsm.deciding_gate().has_value());
}

TEST(precedence_fsm, rejects_misuse) {
    EXPECT_THROW(precedence_fsm(65), std::invalid_argument);
    precedence_fsm fsm(3);
    EXPECT_THROW(fsm.on_gate_done(3, false), std::logic_error);
    EXPECT_EQ(fsm.on_gate_done(1, false), precedence_step::keep_waiting);
    EXPECT_THROW(fsm.on_gate_done(1, false), std::logic_error);
    EXPECT_EQ(fsm.on_gate_done(0, true), precedence_step::cancel_rest);
    EXPECT_EQ(fsm.deciding_gate(), std::optional<std::size_t>{0});
    EXPECT_TRUE(fsm.pending(2));
    EXPECT_THROW(fsm.on_gate_done(2, false), std::logic_error);
}

TEST(precedence_fsm, sixty_four_gates) {
    precedence_fsm fsm(64);
    for (std::size_t i = 63; i > 0; --i) EXPECT_EQ(fsm.on_gate_done(i, false), precedence_step::keep_waiting);
    EXPECT_EQ(fsm.on_gate_done(0, false), precedence_step::decide);
    EXPECT_FALSE(fsm.deciding_gate().has_value());
}
