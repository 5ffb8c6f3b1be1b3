#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace preflight::gates {

/// Conditions the built-in gates report as a gate "error" so that they show in the trace reason, the
/// fail-open event and `preflight_gate_fail_open_total` while the gate still decides (category
/// "preflight.builtin").
enum class builtin_errc {
    /// The shared rate-limit store failed; the request was allowed by the local in-memory limiter running at
    /// limit ÷ fleet.size.
    rate_limit_degraded = 1,
};

/// The category of `builtin_errc`; its name is "preflight.builtin".
const boost::system::error_category& builtin_category() noexcept;

inline boost::system::error_code make_error_code(builtin_errc e) noexcept {
    return {static_cast<int>(e), builtin_category()};
}

}  // namespace preflight::gates

template <>
struct boost::system::is_error_code_enum<preflight::gates::builtin_errc> : std::true_type {};
