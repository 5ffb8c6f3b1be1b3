#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_limit_chain.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>
#include <preflight/clients/pg_run_budget_store.hpp>
#include <preflight/clients/pg_store_set.hpp>

#include <optional>
#include <stdexcept>

namespace preflight::clients {

namespace {

// One allocation holding the pool's owner and every store; the set's pointers alias into it.
struct pg_stores {
    pg_stores(std::shared_ptr<pg_pool> p, const pg_store_options& o)
        : pool(std::move(p)),
          batch(*pool, o.gather),
          chain(*pool, o.gather),
          bans(*pool),
          subscriptions(*pool),
          usage(*pool),
          members(*pool),
          balance(*pool),
          rate_limits(*pool, o.batch_limit_writes ? &batch : nullptr),
          windows(*pool, o.batch_limit_writes ? &batch : nullptr),
          admissions(*pool, o.batch_limit_writes ? &batch : nullptr),
          run_budgets(*pool),
          subject_facts(*pool, o.gather_reads ? std::optional<pg_gather_options>(o.gather) : std::nullopt) {}

    std::shared_ptr<pg_pool> pool;
    pg_limit_batch batch;  // before the stores that use it: destroyed after them
    pg_limit_chain chain;
    pg_ban_store bans;
    pg_subscription_store subscriptions;
    pg_usage_store usage;
    pg_member_store members;
    pg_balance_source balance;
    pg_rate_limit_store rate_limits;
    pg_fixed_window_store windows;
    pg_admission_store admissions;
    pg_run_budget_store run_budgets;
    pg_subject_facts_source subject_facts;
};

// The limit stores', the run budgets' and the usage records' purges one after the other; every one runs, the first
// error is the answer.
boost::asio::awaitable<result<std::uint64_t>> purge_all(std::shared_ptr<pg_stores> all) {
    std::uint64_t removed = 0;
    std::optional<boost::system::error_code> first;
    const auto count = [&](const result<std::uint64_t>& r) {
        if (r) {
            removed += *r;
        } else if (!first) {
            first = r.error();
        }
    };
    count(co_await all->windows.purge_idle());
    count(co_await all->rate_limits.purge_idle());
    count(co_await all->admissions.purge_expired());
    count(co_await all->run_budgets.purge_expired());
    count(co_await all->usage.purge_records());
    if (first) co_return *first;
    co_return removed;
}

}  // namespace

store_set make_pg_store_set(std::shared_ptr<pg_pool> pool, pg_store_options options) {
    if (!pool) throw std::invalid_argument("make_pg_store_set: null pool");
    auto all = std::make_shared<pg_stores>(std::move(pool), options);
    store_set s;
    s.bans = std::shared_ptr<ban_store>(all, &all->bans);
    s.subscriptions = std::shared_ptr<subscription_store>(all, &all->subscriptions);
    s.usage = std::shared_ptr<usage_store>(all, &all->usage);
    s.members = std::shared_ptr<member_store>(all, &all->members);
    s.balance = std::shared_ptr<balance_source>(all, &all->balance);
    s.rate_limits = std::shared_ptr<limits::rate_limit_store>(all, &all->rate_limits);
    s.windows = std::shared_ptr<limits::fixed_window_store>(all, &all->windows);
    s.admissions = std::shared_ptr<limits::admission_store>(all, &all->admissions);
    s.limit_chain = std::shared_ptr<limits::limit_chain>(all, &all->chain);
    s.run_budgets = std::shared_ptr<limits::run_budget_store>(all, &all->run_budgets);
    s.subject_facts = std::shared_ptr<subject_facts_source>(all, &all->subject_facts);
    s.purge = [all]() { return purge_all(all); };
    return s;
}

}  // namespace preflight::clients
