#include <preflight/limits/run_budget.hpp>

namespace preflight::limits {

std::string run_budget_message(std::uint64_t used, std::uint64_t max) {
    return "rate-limit budget exhausted: used " + std::to_string(used) + " of " + std::to_string(max) +
           " mutating calls for this flow run";
}

run_budget_exhausted::run_budget_exhausted(std::uint64_t used, std::uint64_t max)
    : std::runtime_error(run_budget_message(used, max)), used_{used}, max_{max} {}

run_budget run_budget_policy::make() const {
    if (max_mutating_calls == 0) throw std::invalid_argument("run_budget.max_mutating_calls must be >= 1, got 0");
    return run_budget{max_mutating_calls};
}

run_budget::run_budget(run_budget&& other) noexcept : max_{other.max_}, used_{other.used()} {}

bool run_budget::try_charge(std::uint64_t n) noexcept {
    std::uint64_t cur = used_.load(std::memory_order_relaxed);
    do {
        if (n > max_ || cur > max_ - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_acq_rel, std::memory_order_relaxed));
    return true;
}

void run_budget::charge(std::uint64_t n) {
    if (!try_charge(n)) throw run_budget_exhausted(used(), max_);
}

}  // namespace preflight::limits
