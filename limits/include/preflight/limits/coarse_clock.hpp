#pragma once

#include <preflight/core/clock.hpp>

namespace preflight::limits {

/// A cheap monotonic clock for the limiters' hot paths: Linux `CLOCK_MONOTONIC_COARSE` (a few ns per read instead of
/// ~20–40 ns for `CLOCK_MONOTONIC`), advancing in ticks of the kernel timer (`clock_getres`, typically 1–4 ms).
/// Use it for one limiter consistently (do not mix it with `clock::steady()` in one limiter): decisions are exact
/// for the time it reports, which lags real time by less than one tick, so a refill can arrive up to one tick late
/// and a `retry_after` can be up to one tick early. Tests inject `manual_clock` instead and are exact.
/// The instance is process-wide and never destroyed; thread-safe.
[[nodiscard]] const preflight::clock& coarse_steady_clock() noexcept;

/// The resolution of `coarse_steady_clock()` on this machine.
[[nodiscard]] preflight::clock::duration coarse_clock_resolution() noexcept;

}  // namespace preflight::limits
