#pragma once
// The one place where the token-bucket / GCRA arithmetic lives. Pure functions on integer nanoseconds, so that
// the in-memory limiters and the Postgres store (which mirrors these lines in SQL) decide identically.

#include <preflight/limits/rate_limit_store.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

namespace preflight::limits::gcra {

/// A limit in integer nanoseconds: `emission_ns` = T = 1 s / rate (at least 1 ns), `tau_ns` = burst × T.
struct params {
    std::int64_t emission_ns = 1'000'000'000;
    std::int64_t tau_ns = 10'000'000'000;
};

/// The decision for one key. `store` says whether `tat_after` must be written back.
struct decision {
    bool allowed = false;
    bool store = false;
    std::int64_t tat_after = 0;    ///< the TAT to keep (unchanged when denied or peeking)
    std::int64_t remaining = 0;    ///< whole tokens left after the call
    std::int64_t retry_after = 0;  ///< ns; 0 when allowed
    std::int64_t reset_after = 0;  ///< ns until the bucket is full
};

/// Saturating a + b and a × b on int64 (limits far outside any real use must not wrap around).
[[nodiscard]] constexpr std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) {
        return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
    }
    return r;
}
[[nodiscard]] constexpr std::int64_t sat_mul(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) return std::numeric_limits<std::int64_t>::max();
    return r;
}

/// Converts a `bucket_limit`: T = round(1e9 / rate_per_s) ns (min 1), tau = round(burst × T) ns (min T).
/// SQL mirror: `greatest(1, round(1e9 / rate))`, `greatest(T, round(burst * T))`.
/// The caller validates `rate_per_s` > 0 and `burst` >= 1.
[[nodiscard]] inline params to_params(bucket_limit l) noexcept {
    const double t = std::round(1e9 / l.rate_per_s);
    const std::int64_t emission = t >= 9.0e18 ? std::numeric_limits<std::int64_t>::max() / 4
                                              : std::max<std::int64_t>(1, static_cast<std::int64_t>(t));
    const double tau = std::round(l.burst * static_cast<double>(emission));
    const std::int64_t tau_ns = tau >= 9.0e18 ? std::numeric_limits<std::int64_t>::max() / 4
                                              : std::max<std::int64_t>(emission, static_cast<std::int64_t>(tau));
    return {emission, tau_ns};
}

/// remaining = floor((now + tau − max(TAT, now)) / T), never below 0.
[[nodiscard]] constexpr std::int64_t remaining(std::int64_t tat, std::int64_t now, params p) noexcept {
    const std::int64_t base = std::max(tat, now);
    const std::int64_t room = sat_add(now, p.tau_ns) - base;
    return room <= 0 ? 0 : room / p.emission_ns;
}

/// One decision. `tat` is the stored TAT (a new key passes `now`). `quantity` 0 is a peek.
///  - q >= 1: base = max(TAT, now); new_tat = base + q×T; allowed iff new_tat − now <= tau; when allowed
///    TAT := new_tat. Denied: retry_after = new_tat − tau − now (> 0), nothing stored.
///  - q == 0 (peek): allowed iff base + T − now <= tau; retry_after = max(0, base + T − tau − now); nothing stored.
///  - remaining = floor((now + tau − max(TAT_after, now)) / T); reset_after = max(TAT_after, now) − now.
[[nodiscard]] constexpr decision decide(std::int64_t tat, std::int64_t now, std::uint32_t quantity, params p) noexcept {
    decision d;
    const std::int64_t base = std::max(tat, now);
    if (quantity == 0) {
        const std::int64_t next = sat_add(base, p.emission_ns);
        d.allowed = next - now <= p.tau_ns;
        d.retry_after = std::max<std::int64_t>(0, next - p.tau_ns - now);
        d.tat_after = tat;
    } else {
        const std::int64_t new_tat = sat_add(base, sat_mul(static_cast<std::int64_t>(quantity), p.emission_ns));
        d.allowed = new_tat - now <= p.tau_ns;
        if (d.allowed) {
            d.store = true;
            d.tat_after = new_tat;
        } else {
            d.retry_after = new_tat - p.tau_ns - now;
            d.tat_after = tat;
        }
    }
    d.remaining = remaining(d.tat_after, now, p);
    d.reset_after = std::max(d.tat_after, now) - now;
    return d;
}

/// Refund: TAT := max(TAT − q×T, now), so the bucket never holds more than `burst`.
[[nodiscard]] constexpr std::int64_t refund(
    std::int64_t tat, std::int64_t now, std::uint32_t quantity, params p
) noexcept {
    const std::int64_t back = sat_mul(static_cast<std::int64_t>(quantity), p.emission_ns);
    return std::max(sat_add(tat, -back), now);
}

/// A bucket whose TAT is at or before `now` is full: forgetting it changes no future decision.
[[nodiscard]] constexpr bool is_full(std::int64_t tat, std::int64_t now) noexcept {
    return tat <= now;
}

/// The decision as the public `acquire_result`.
[[nodiscard]] inline acquire_result to_result(const decision& d) noexcept {
    return acquire_result{
        d.allowed,
        static_cast<double>(d.remaining),
        std::chrono::nanoseconds{d.retry_after},
        std::chrono::nanoseconds{d.reset_after},
    };
}

}  // namespace preflight::limits::gcra
