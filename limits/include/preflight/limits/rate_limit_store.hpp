#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace preflight::limits {

/// A token-bucket limit (equivalently a GCRA limit): `rate_per_s` tokens are refilled per second and at
/// most `burst` tokens are held. `rate_per_s` > 0 and `burst` >= 1.
struct bucket_limit {
    double rate_per_s = 1.0;
    double burst = 10.0;
};

/// The outcome of one acquire (or peek) on a bucket.
struct acquire_result {
    bool allowed = false;
    double remaining = 0;                     ///< whole tokens left after this call
    std::chrono::nanoseconds retry_after{0};  ///< 0 when allowed; else when `quantity` tokens will be there
    std::chrono::nanoseconds reset_after{0};  ///< until the bucket is full again
};

/// Where token buckets live. Implementations: `memory_rate_limit_store` (one process) and the Postgres
/// store in clients/ (a fleet). Both pass tests/conformance/rate_limit_store_conformance.hpp.
/// Thread safety: every member may be called concurrently from any thread.
class rate_limit_store {
public:
    virtual ~rate_limit_store() = default;

    /// Takes `quantity` tokens from bucket `key` under `limit`, all or nothing: a denied call consumes
    /// nothing. `quantity` 0 is a peek: it reports the state (allowed = at least one token is there,
    /// retry_after = until one token is there) and changes nothing.
    /// Errors: store failures as `preflight::errc` (e.g. store_unavailable); never throws for them.
    virtual boost::asio::awaitable<result<acquire_result>> acquire(
        std::string key, bucket_limit limit, std::uint32_t quantity
    ) = 0;

    /// Gives `quantity` tokens back to bucket `key` (never above `burst`); used to compensate a consume
    /// when a later stateful gate denies. Refunding an unknown key is a no-op.
    virtual boost::asio::awaitable<result<void>> refund(
        std::string key, bucket_limit limit, std::uint32_t quantity
    ) = 0;
};

}  // namespace preflight::limits
