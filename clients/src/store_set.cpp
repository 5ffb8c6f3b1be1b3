#include <preflight/clients/store_set.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

namespace preflight::clients {

store_set make_memory_store_set(const memory_fact_stores& facts, const preflight::clock& c) {
    store_set s;
    s.bans = facts.bans;
    s.subscriptions = facts.subscriptions;
    s.usage = facts.usage;
    s.members = facts.members;
    s.balance = facts.balances;
    s.rate_limits = std::make_shared<limits::memory_rate_limit_store>(c);
    s.windows = std::make_shared<limits::memory_fixed_window_store>(c);
    s.admissions = std::make_shared<limits::memory_admission_store>(c);
    s.run_budgets = std::make_shared<limits::memory_run_budget_store>(c);
    s.clock = &c;
    return s;
}

}  // namespace preflight::clients
