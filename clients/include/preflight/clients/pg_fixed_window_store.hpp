#pragma once

#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/window_refund.hpp>

namespace preflight::clients {

/// Fixed-window counters shared through Postgres (table `preflight_windows`: one row per key holding its
/// current window). A consume is ONE conditional upsert timed by the server clock: a blocked attempt writes
/// nothing. Semantics equal `limits::memory_fixed_window_store`; in addition it can give units back (`refund`).
/// Lifetime: `pool` must outlive the store and every call. Thread safety: fully thread-safe.
class pg_fixed_window_store final : public limits::fixed_window_store, public limits::window_refund {
public:
    /// With `batch` (optional; it must outlive the store), each consume goes through it: one call shared with the
    /// other limiter writes of the same turn instead of a statement of its own (`pg_limit_batch`).
    explicit pg_fixed_window_store(pg_pool& pool, pg_limit_batch* batch = nullptr) noexcept
        : pool_(pool), batch_(batch) {}

    /// See `limits::fixed_window_store::consume`. One statement. Throws `std::invalid_argument` for a period
    /// below one second.
    boost::asio::awaitable<result<limits::window_result>> consume(
        std::string key, limits::window_limit limit, std::uint64_t n
    ) override;

    /// See `window_refund::refund`. One statement; the current window is the server clock's. Errors as `consume`
    /// (`bad_input` for n or max above INT64_MAX). Cancellation as `pg_pool::exec` (a cancelled refund may still
    /// take effect).
    boost::asio::awaitable<result<void>> refund(std::string key, limits::window_limit limit, std::uint64_t n) override;

    /// See `limits::fixed_window_store::purge_idle`. One statement (uses the idle_after index).
    boost::asio::awaitable<result<std::uint64_t>> purge_idle() override;

    /// The pool the store runs on.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

private:
    pg_pool& pool_;
    pg_limit_batch* batch_;
};

}  // namespace preflight::clients
