#pragma once

#include <preflight/core/errc.hpp>
#include <preflight/limits/fixed_window_store.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

namespace preflight::limits {

/// An optional capability of a `limits::fixed_window_store`: giving back units it counted, so that a fixed-window
/// gate (the default pipeline's backstop) can be compensated when a later stateful gate or the commit denies.
/// The default pipeline finds it with `dynamic_cast`; a window store without it is simply not refunded.
/// Implemented by `memory_fixed_window_store` and `clients::pg_fixed_window_store`.
/// Thread safety: every member may be called concurrently from any thread.
class window_refund {
public:
    virtual ~window_refund() = default;

    /// Takes `n` units back from `key`'s CURRENT window of `limit` (never below zero). A window that ended since
    /// the consume is left alone (its count no longer matters). Refunding an unknown key is a no-op.
    virtual boost::asio::awaitable<result<void>> refund(std::string key, window_limit limit, std::uint64_t n) = 0;
};

}  // namespace preflight::limits
