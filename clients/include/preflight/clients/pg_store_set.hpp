#pragma once

#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/store_set.hpp>

#include <memory>

namespace preflight::clients {

/// Choices of `make_pg_store_set`.
struct pg_store_options {
    /// The three limit stores' own calls (`pipeline.stateful_call` separate, or callers of the stores themselves)
    /// share one `pg_limit_batch`: writes of one turn travel as one statement (one backend, one commit). Needs
    /// migration 004 (005 for a call gathering several preflights' writes). Off: one statement each. The default
    /// pipeline's ordered call (`pg_limit_chain`, migration 007) does not depend on it.
    bool batch_limit_writes = true;
    /// The combined reads of concurrent requests gathered into shared calls under load (`pg_subject_facts_source`
    /// with `gather`). Needs migration 006.
    bool gather_reads = true;
    /// How calls gather under load, for the ordered limiter calls, the batched limiter writes (with
    /// `batch_limit_writes`) and the reads (with `gather_reads`); each has its own calls in flight.
    pg_gather_options gather;
};

/// Every store the built-in gates use, on Postgres: the five fact stores (`pg_ban_store`, `pg_subscription_store`,
/// `pg_usage_store`, `pg_member_store`, `pg_balance_source`) and the three limit stores (`pg_rate_limit_store`,
/// `pg_fixed_window_store`, `pg_admission_store`), plus `pg_subject_facts_source` (the four read-only lookups of a
/// request in one statement) and `pg_limit_chain` (a preflight's three limiter writes as one ordered call that stops at
/// the first denial; migration 007: the default pipeline's stateful phase on Postgres), all on `pool`. The tables must
/// exist (`migrate`). Replace `balance` with another source (e.g. `http_balance_source`) or null it to drop the balance
/// gate. Lifetime: every store in the set shares ownership of `pool` (and of the others), so the pool lives as long as
/// any store of the set; it must still be destroyed before its io_context. Throws `std::invalid_argument` for a
/// null pool. Thread safety: the stores are fully thread-safe.
[[nodiscard]] store_set make_pg_store_set(std::shared_ptr<pg_pool> pool, pg_store_options options = {});

}  // namespace preflight::clients
