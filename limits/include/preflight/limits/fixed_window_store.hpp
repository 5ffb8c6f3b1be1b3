#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace preflight::limits {

/// A fixed-window limit: at most `max` units per `period`, windows aligned to multiples of `period`.
struct window_limit {
    std::uint64_t max = 1000;
    std::chrono::seconds period{3600};
};

/// The outcome of one consume.
struct window_result {
    bool allowed = false;
    std::uint64_t count = 0;                  ///< units counted in the current window after this call
    std::uint64_t max = 0;                    ///< the limit applied
    std::chrono::nanoseconds reset_after{0};  ///< until the current window ends
};

/// Where fixed-window counters live. Implementations: `memory_fixed_window_store` and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class fixed_window_store {
public:
    virtual ~fixed_window_store() = default;

    /// Counts `n` units for `key` in the current window when `count + n <= max`; a blocked attempt
    /// writes nothing (it does not increment the counter).
    virtual boost::asio::awaitable<result<window_result>> consume(
        std::string key, window_limit limit, std::uint64_t n
    ) = 0;

    /// Removes windows that have been idle for two periods; returns how many were removed.
    virtual boost::asio::awaitable<result<std::uint64_t>> purge_idle() = 0;
};

}  // namespace preflight::limits
