#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/fixed_window_store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace preflight::limits {

/// Options of the in-memory fixed-window counters.
struct fixed_window_params {
    /// Upper bound on keys held. Counters of past windows are forgotten first (they no longer count).
    std::size_t max_keys = 100'000;
    /// Number of lock shards (rounded up to a power of two).
    std::size_t shards = 64;
};

/// The window arithmetic shared with the Postgres store (pure functions on nanoseconds since the clock's epoch).
namespace window_math {

/// floor(now / period) × period.
[[nodiscard]] constexpr std::int64_t window_start(std::int64_t now, std::int64_t period) noexcept {
    std::int64_t q = now / period;
    if (now % period != 0 && now < 0) --q;
    return q * period;
}

/// A stored window is purged by `purge_idle` when `window_start + 2 × period <= now`, i.e. when neither the
/// window it counted nor the one after it is current any more (at least one whole period without activity).
[[nodiscard]] constexpr bool purgeable(std::int64_t start, std::int64_t period, std::int64_t now) noexcept {
    return start + 2 * period <= now;
}

}  // namespace window_math

/// Synchronous fixed-window counters per key: at most `limit.max` units per window of `limit.period`, windows
/// aligned to multiples of the period on the injected clock. A blocked attempt writes nothing.
/// Thread safety: every member may be called concurrently. Lifetime: the clock must outlive the counter.
class fixed_window_counter {
public:
    explicit fixed_window_counter(const preflight::clock& c = preflight::clock::steady(), fixed_window_params p = {});
    ~fixed_window_counter();
    fixed_window_counter(const fixed_window_counter&) = delete;
    fixed_window_counter& operator=(const fixed_window_counter&) = delete;

    /// Counts `n` units for `key` when `count + n <= max` (n = 0 reports without counting). `limit.period` must be
    /// > 0 and `limit.max` >= 1, else `invalid_limit` is thrown (see token_bucket.hpp).
    [[nodiscard]] window_result consume(std::string_view key, window_limit limit, std::uint64_t n = 1);

    /// Takes `n` units back from `key`'s window of `limit` when that window is the current one (never below zero);
    /// an unknown key or a window that has ended is left alone. Same `invalid_limit` checks as `consume`.
    void refund(std::string_view key, window_limit limit, std::uint64_t n);

    /// Removes every counter whose window satisfies `window_math::purgeable`; returns how many.
    std::size_t purge_idle();

    /// Keys held now (a snapshot).
    [[nodiscard]] std::size_t size() const;

private:
    struct impl;
    const preflight::clock& clock_;
    std::unique_ptr<impl> impl_;
};

}  // namespace preflight::limits
