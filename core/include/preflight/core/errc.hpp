#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace preflight {

/// Infrastructure failures (tier 2 of the error model): carried as `boost::system::error_code` inside
/// `boost::system::result<T>`. A denial is never one of these; it is a `decision` value.
enum class errc {
    store_unavailable = 1,  ///< the store (Postgres, provider) could not be reached or failed
    timeout,                ///< an operation exceeded its time budget
    pool_exhausted,         ///< no pooled connection became free within the wait timeout
    connection_broken,      ///< a connection broke mid-operation; it is replaced on next use
    bad_input,              ///< input rejected before reaching a store (too long, malformed)
    not_found,              ///< the subject is unknown to the store or provider
    budget_exhausted,       ///< a per-run or per-invocation budget is used up
    cancelled,              ///< the operation was cancelled by its caller
    protocol_error,         ///< a provider answered something that cannot be understood
};

/// The category of `preflight::errc`; its name is "preflight".
const boost::system::error_category& preflight_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), preflight_category()};
}

template <class T>
using result = boost::system::result<T>;

}  // namespace preflight

template <>
struct boost::system::is_error_code_enum<preflight::errc> : std::true_type {};
