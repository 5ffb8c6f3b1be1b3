#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace preflight::limits {

class run_budget;

/// "rate-limit budget exhausted: used <used> of <max> mutating calls for this flow run" (the denial of a run's
/// budget, in process or in a `run_budget_store`).
[[nodiscard]] std::string run_budget_message(std::uint64_t used, std::uint64_t max);

/// Thrown by `run_budget::charge` when a run has used its budget. Message shape:
/// `run_budget_message(used, max)`.
class run_budget_exhausted : public std::runtime_error {
public:
    run_budget_exhausted(std::uint64_t used, std::uint64_t max);
    [[nodiscard]] std::uint64_t used() const noexcept { return used_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

private:
    std::uint64_t used_;
    std::uint64_t max_;
};

/// The policy of per-run budgets (default 20 mutating calls). It holds no counter: every run gets its own budget
/// from `make()`, so a budget cannot leak from one run into the next. There is no process-wide instance.
struct run_budget_policy {
    std::uint64_t max_mutating_calls = 20;

    /// A fresh budget with nothing used. Throws `std::invalid_argument` when `max_mutating_calls` is 0.
    [[nodiscard]] run_budget make() const;
};

/// The budget of one run. Only `run_budget_policy::make` creates one; it cannot be copied (copying would share or
/// reset the count by mistake) but can be moved into the run that owns it.
/// Thread safety: `charge`/`try_charge`/readers may be called concurrently (an atomic counter); never over-grants.
class run_budget {
public:
    run_budget(const run_budget&) = delete;
    run_budget& operator=(const run_budget&) = delete;
    run_budget(run_budget&& other) noexcept;
    run_budget& operator=(run_budget&&) = delete;

    /// Charges `n` mutating calls; false (and nothing charged) when that would exceed the budget.
    [[nodiscard]] bool try_charge(std::uint64_t n = 1) noexcept;

    /// Charges `n` mutating calls or throws `run_budget_exhausted` (nothing charged).
    void charge(std::uint64_t n = 1);

    [[nodiscard]] std::uint64_t used() const noexcept { return used_.load(std::memory_order_acquire); }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] std::uint64_t remaining() const noexcept { return max_ - used(); }

private:
    friend struct run_budget_policy;
    explicit run_budget(std::uint64_t max) noexcept : max_{max} {}

    std::uint64_t max_;
    std::atomic<std::uint64_t> used_{0};
};

}  // namespace preflight::limits
