#pragma once

#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace preflight::cache {

/// Options of a `deployed_state_cache`.
struct deployed_state_cache_params {
    std::size_t capacity = 1000;
    clock::duration ttl = std::chrono::minutes{5};  ///< absolute: a deployment version is immutable
    std::size_t shards = 16;
};

/// Cache of deployed state documents keyed by an immutable deployment version id. Absolute TTL
/// (5 minutes by default), clone-on-read: every read returns an independent `boost::json::value` the
/// caller may mutate freely; the cached document is never handed out by reference.
///
/// Thread safety: all members may be called concurrently from any thread. Lifetimes: `clk` must
/// outlive the cache and every load it started.
class deployed_state_cache {
public:
    /// Loads the document of one version from the backing store (e.g. Postgres).
    using loader = std::function<boost::asio::awaitable<result<boost::json::value>>()>;

    /// Throws `std::invalid_argument` for a zero capacity or a non-positive TTL.
    explicit deployed_state_cache(deployed_state_cache_params params = {}, const clock& clk = clock::steady());

    /// Stores (or replaces) the document of `version_id`; the cache keeps its own copy.
    void put(std::string_view version_id, boost::json::value state);

    /// A deep copy of the cached document of `version_id`, or nullopt. The copy uses `storage`
    /// (default: the default memory resource); the caller owns it and may mutate it.
    [[nodiscard]] std::optional<boost::json::value> get(
        std::string_view version_id, boost::json::storage_ptr storage = {}
    );

    /// The cached document of `version_id` (a deep copy), or loads it with `load` once for every
    /// concurrent caller (see `ttl_lru_cache::get_or_load`: errors reach every waiter and are never
    /// cached). Cancellation: a cancelled caller completes with `errc::cancelled`; the load goes on for
    /// the others. `load` runs on the executor of the caller that started it.
    boost::asio::awaitable<result<boost::json::value>> get_or_load(std::string version_id, loader load);

    /// Drops `version_id`; returns whether a live entry was removed.
    bool erase(std::string_view version_id);

    [[nodiscard]] cache_stats stats() const;

private:
    ttl_lru_cache<std::string, boost::json::value> cache_;
};

}  // namespace preflight::cache
