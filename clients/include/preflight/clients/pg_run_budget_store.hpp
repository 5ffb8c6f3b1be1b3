#pragma once

#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/run_budget_store.hpp>

namespace preflight::clients {

/// Per-run budgets shared through Postgres (table `preflight_run_budgets`, sql/008_run_budgets.sql): every process
/// serving one flow run charges the same row. A charge is one upsert (the row locked, the budget re-checked on its
/// newest version): never over-grants across processes; a denied charge writes nothing. Expiry uses the server's
/// clock; `purge_expired` deletes forgotten runs. Semantics equal `limits::memory_run_budget_store`.
/// Errors: `bad_input` for a run id over `max_key_bytes` or with NUL, a max 0 or beyond bigint, a ttl <= 0.
/// Lifetime: `pool` must outlive the store and every call. Thread safety: fully thread-safe.
class pg_run_budget_store final : public limits::run_budget_store {
public:
    explicit pg_run_budget_store(pg_pool& pool) noexcept : pool_(pool) {}

    boost::asio::awaitable<result<limits::run_charge>> charge(
        std::string run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
    ) override;
    boost::asio::awaitable<result<void>> refund(std::string run_id, std::uint64_t n) override;

    /// Deletes forgotten runs; returns how many rows went. One statement; run it periodically (the store set's
    /// purge does).
    boost::asio::awaitable<result<std::uint64_t>> purge_expired();

    /// The pool the store runs on.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

private:
    pg_pool& pool_;
};

}  // namespace preflight::clients
