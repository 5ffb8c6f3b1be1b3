#pragma once

// Internal: the limiter parts' outputs as the limits/ results, shared by the standalone stores
// (pg_fixed_window_store, pg_rate_limit_store, pg_admission_store) and the ordered chain (pg_limit_chain), which read
// the same columns of the same statements (sql/004, 005, 007).

#include "pg_util.hpp"
#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/admission_store.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/rate_limit_store.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace preflight::clients::detail {

/// A window part's (allowed, count, seconds until the window ends) in row `r` from column `c`.
inline limits::window_result window_answer(const pg_rows& rows, std::size_t r, std::size_t c, std::uint64_t max) {
    limits::window_result out;
    out.allowed = rows.as_bool(r, c);
    out.count = static_cast<std::uint64_t>(rows.as_int64(r, c + 1));
    out.max = max;
    out.reset_after = us_to_ns(rows.as_double(r, c + 2) * 1e6);
    return out;
}

/// remaining = floor((now + tau - tat) / T), tolerant of float rounding, never negative.
inline double remaining_tokens(double now, double tau, double tat, double t) {
    return std::max(0.0, std::floor((now + tau - tat) / t + 1e-9));
}

/// GCRA's emission interval T and tolerance tau of `limit`, in microseconds.
struct gcra_us {
    double t = 0;
    double tau = 0;
};

inline gcra_us gcra_of(const limits::bucket_limit& limit) {
    const double t = 1e6 / limit.rate_per_s;
    return {t, limit.burst * t};
}

/// A bucket part's (allowed, TAT after the call or NULL, server now in µs) in row `r` from column `c`.
inline limits::acquire_result bucket_answer(
    const pg_rows& rows, std::size_t r, std::size_t c, gcra_us g, std::uint32_t quantity
) {
    limits::acquire_result out;
    out.allowed = rows.as_bool(r, c);
    const double now = rows.as_double(r, c + 2);
    const double tat = rows.is_null(r, c + 1) ? now : rows.as_double(r, c + 1);
    const double base = std::max(tat, now);
    out.retry_after =
        out.allowed ? std::chrono::nanoseconds{0} : us_to_ns(std::max(0.0, base + quantity * g.t - g.tau - now));
    out.remaining = remaining_tokens(now, g.tau, base, g.t);
    out.reset_after = us_to_ns(base - now);
    return out;
}

/// Canonical UUID text (8-4-4-4-12 hex digits): anything else cannot be a lease of the Postgres stores.
inline bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (std::isxdigit(static_cast<unsigned char>(s[i])) == 0) {
            return false;
        }
    }
    return true;
}

/// A reservation's outcome from the new lease id (empty: full) and the live leases after the call; nullopt when they
/// are not what preflight_admit returns (a schema mismatch).
inline std::optional<limits::lease_grant> admission_answer(
    std::string_view id, std::int64_t in_use, std::uint32_t max
) {
    if ((!id.empty() && !is_uuid(id)) || in_use < 0 || in_use > std::numeric_limits<std::int32_t>::max()) {
        return std::nullopt;
    }
    limits::lease_grant out;
    out.admitted = !id.empty();
    out.lease_id = std::string(id);
    out.in_use = static_cast<std::uint32_t>(in_use);
    out.max = max;
    return out;
}

}  // namespace preflight::clients::detail
