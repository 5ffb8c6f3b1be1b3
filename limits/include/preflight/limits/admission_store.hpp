#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace preflight::limits {

/// The outcome of one reservation attempt.
struct lease_grant {
    bool admitted = false;
    std::string lease_id;      ///< set when admitted; unique across processes
    std::uint32_t in_use = 0;  ///< live leases of the key after this call
    std::uint32_t max = 0;     ///< the slot limit applied
};

/// Concurrency slots per key (e.g. concurrent executions per org). A lease that is neither released nor
/// renewed within its ttl expires, so the slot of a dead holder comes back.
/// Implementations: `memory_admission_store` and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class admission_store {
public:
    virtual ~admission_store() = default;

    /// Takes one slot of `key` when fewer than `max_slots` live (unexpired) leases exist.
    virtual boost::asio::awaitable<result<lease_grant>> reserve(
        std::string key, std::uint32_t max_slots, std::chrono::milliseconds ttl
    ) = 0;

    /// Releases a lease. true when it was live; false when unknown, expired or already released
    /// (so a double release is harmless).
    virtual boost::asio::awaitable<result<bool>> release(std::string lease_id) = 0;

    /// Extends a live lease to now + ttl. false when the lease is no longer live.
    virtual boost::asio::awaitable<result<bool>> renew(std::string lease_id, std::chrono::milliseconds ttl) = 0;
};

}  // namespace preflight::limits
