#pragma once

#include <preflight/clients/facts/balance_source.hpp>
#include <preflight/clients/facts/ban_store.hpp>
#include <preflight/clients/facts/member_store.hpp>
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/facts/subject_facts.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/facts/usage_store.hpp>
#include <preflight/clients/periodic_purge.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/limits/admission_store.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/limit_chain.hpp>
#include <preflight/limits/rate_limit_store.hpp>
#include <preflight/limits/run_budget_store.hpp>

#include <memory>

namespace preflight::clients {

/// Every store the built-in gates read or write. All of one kind (in-memory or Postgres) or mixed
/// (e.g. Postgres facts with an HTTP balance source). A null `balance` means "no balance gate".
struct store_set {
    std::shared_ptr<ban_store> bans;
    std::shared_ptr<subscription_store> subscriptions;
    std::shared_ptr<usage_store> usage;
    std::shared_ptr<member_store> members;
    std::shared_ptr<balance_source> balance;
    std::shared_ptr<limits::rate_limit_store> rate_limits;
    std::shared_ptr<limits::fixed_window_store> windows;
    std::shared_ptr<limits::admission_store> admissions;
    /// Optional: the window, bucket and admission writes of a preflight as one ordered call over the three stores
    /// above (`limits::limit_chain`: stops at the first denial, nothing of a later part written). When set, the
    /// default pipeline's stateful phase is that one call instead of one call per gate (`pipeline.stateful_call`).
    /// `make_pg_store_set` sets it (one round trip instead of three); the in-memory set leaves it empty (its gates
    /// answer synchronously, one after another, which is as exact and costs no round trip).
    std::shared_ptr<limits::limit_chain> limit_chain;
    /// Per-run budgets (the `run_budget` gate, for requests that carry a run id). Null: no run budget gate (its
    /// trace says it is off). Both store sets set it.
    std::shared_ptr<limits::run_budget_store> run_budgets;
    /// Optional: the four read-only lookups (ban, subscription, usage, membership) of a request in one call. The
    /// built-in read-only gates read through it when it `answers_for` the four stores above (so replacing one of
    /// them falls back to four lookups). `make_pg_store_set` sets it (one statement instead of four).
    std::shared_ptr<subject_facts_source> subject_facts;
    /// Optional: removes limiter state that no longer matters (idle windows and buckets, expired leases) from stores
    /// that keep it until told, and returns how many rows went. `make_pg_store_set` sets it (run it periodically:
    /// `periodic_purge`); the in-memory set leaves it empty (its stores bound themselves).
    purge_fn purge;
    /// The clock the set's in-memory stores read (`make_memory_store_set` sets it); null when the stores keep their
    /// own time (Postgres: the server's clock). The default pipeline takes this clock for its trace, caches and
    /// fallback limiter, so the pipeline and the stores never disagree (docs/gates.md).
    const preflight::clock* clock = nullptr;
};

/// The embedded default: in-memory stores over `facts` (shared, so callers can keep editing them) and
/// fresh in-memory limit stores on clock `c` (which must outlive the stores); `store_set::clock` is `&c`.
[[nodiscard]] store_set make_memory_store_set(const memory_fact_stores& facts, const preflight::clock& c);

}  // namespace preflight::clients
