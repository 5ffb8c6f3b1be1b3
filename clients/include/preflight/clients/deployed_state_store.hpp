#pragma once

#include <preflight/cache/deployed_state_cache.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace preflight::clients {

/// Where deployed state documents live, keyed by an immutable deployment version id. Read through
/// `cache::deployed_state_cache` (see `load_deployed_state`). Implementations: `memory_deployed_state_store` and
/// `pg_deployed_state_store`; both pass tests/conformance/deployed_state_store_conformance.hpp.
/// Thread safety: every member may be called concurrently from any thread.
class deployed_state_store {
public:
    virtual ~deployed_state_store() = default;

    /// The document stored under `version_id` (the caller's own copy); `errc::not_found` when there is none.
    virtual boost::asio::awaitable<result<boost::json::value>> get(std::string version_id) = 0;

    /// Stores `state` under `version_id`, replacing what was there (a version's document is meant to be written
    /// once; replacing is for corrections, and a cache may serve the old document until its TTL ends).
    virtual boost::asio::awaitable<result<void>> put(std::string version_id, boost::json::value state) = 0;
};

/// In-memory deployed state (one process). The coroutines complete synchronously; documents are copied in and out,
/// so a caller never shares a document with the store. An empty or over-long (> 1024 bytes) id is `bad_input`, like
/// the Postgres store. Holds every document put (a data store, not a cache).
class memory_deployed_state_store final : public deployed_state_store {
public:
    boost::asio::awaitable<result<boost::json::value>> get(std::string version_id) override;
    boost::asio::awaitable<result<void>> put(std::string version_id, boost::json::value state) override;

private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, boost::json::value> docs_;
};

/// The deployed state of `version_id` through `cache`: a hit is a deep copy of the cached document; a miss loads it
/// from `store` once for every concurrent caller and caches it (absolute TTL; errors, including `not_found`, are
/// never cached). Cancellation as `deployed_state_cache::get_or_load`. Lifetime: `cache` must outlive the call; the
/// load keeps `store` alive.
boost::asio::awaitable<result<boost::json::value>> load_deployed_state(
    cache::deployed_state_cache& cache, std::shared_ptr<deployed_state_store> store, std::string version_id
);

}  // namespace preflight::clients
