#pragma once

#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/rate_limit_store.hpp>

namespace preflight::clients {

/// Longest key (in bytes) the Postgres stores accept; a longer key fails with `errc::bad_input` before
/// reaching the server (btree index entries are limited to about 2.7 kB).
inline constexpr std::size_t max_key_bytes = 1024;

/// GCRA token buckets shared by every process through Postgres (table `preflight_rate_limits`, applied by
/// `migrate`). Each acquire is ONE atomic statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING)
/// timed by the server clock, so a fleet never over-admits; a denied acquire writes nothing.
/// Semantics equal `limits::memory_rate_limit_store` (T = 1/rate, tau = burst × T, state TAT per key).
/// Misuse (rate_per_s <= 0, burst < 1) throws `std::invalid_argument` from the coroutine.
/// Lifetime: `pool` must outlive the store and every call. Thread safety: fully thread-safe.
class pg_rate_limit_store final : public limits::rate_limit_store {
public:
    /// With `batch` (optional; it must outlive the store), each acquire (quantity above 0) goes through it: one call
    /// shared with the other limiter writes of the same turn instead of a statement of its own (`pg_limit_batch`).
    explicit pg_rate_limit_store(pg_pool& pool, pg_limit_batch* batch = nullptr) noexcept
        : pool_(pool), batch_(batch) {}

    /// See `limits::rate_limit_store::acquire`. One statement, one round trip. Cancellation as `pg_pool::exec`
    /// (a cancelled acquire may still have consumed).
    boost::asio::awaitable<result<limits::acquire_result>> acquire(
        std::string key, limits::bucket_limit limit, std::uint32_t quantity
    ) override;

    /// See `limits::rate_limit_store::refund`. One statement.
    boost::asio::awaitable<result<void>> refund(std::string key, limits::bucket_limit limit, std::uint32_t quantity)
        override;

    /// Deletes buckets that are full again (TAT <= now): such a row means the same as no row, so this only
    /// bounds the table under a flood of distinct keys. Returns how many rows were removed. One statement (a scan:
    /// TAT is deliberately not indexed so that acquires stay HOT updates); run it periodically.
    boost::asio::awaitable<result<std::uint64_t>> purge_idle();

    /// The pool the store runs on.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

private:
    pg_pool& pool_;
    pg_limit_batch* batch_;
};

}  // namespace preflight::clients
