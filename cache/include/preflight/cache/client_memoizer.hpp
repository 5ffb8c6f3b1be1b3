#pragma once

#include <preflight/cache/client_key.hpp>
#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/core/clock.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace preflight::cache {

/// Options of a `client_memoizer`.
struct client_memoizer_params {
    std::size_t capacity = 1000;
    clock::duration idle_ttl = std::chrono::minutes{30};  ///< dropped after this long without use
    std::size_t shards = 16;
};

/// Memoizes provider clients (HTTP/SDK clients) per credential set: one client per `client_key`, i.e.
/// per combination of every credential dimension and the SHA-256 fingerprint of the secret. A rotated
/// secret under the same key id therefore yields a new client. At most `capacity` clients (LRU), each
/// dropped after `idle_ttl` without use.
///
/// Eviction only drops the memoizer's reference: a client still held by a caller stays alive until its
/// last `shared_ptr` is released; it is never closed or destroyed under a user.
///
/// Thread safety: all members may be called concurrently from any thread; the factory runs outside any
/// lock. Lifetimes: `clk` must outlive the memoizer.
template <class Client>
class client_memoizer {
public:
    /// Throws `std::invalid_argument` for a zero capacity or a non-positive idle TTL.
    explicit client_memoizer(client_memoizer_params params = {}, const clock& clk = clock::steady())
        : cache_(lru_params(params), clk) {}

    /// The memoized client of `creds`, or a new one made by `make(creds)` (which must return a non-null
    /// `std::shared_ptr<Client>`; its exceptions propagate and nothing is stored). When two threads race
    /// on a new key, both may call `make` but one client wins and both get it. Each call counts as a
    /// use (extends the idle TTL).
    template <class Factory>
    requires std::invocable<Factory&, const client_credentials&>
    [[nodiscard]] std::shared_ptr<Client> get_or_create(const client_credentials& creds, Factory&& make) {
        const client_key key = client_key::of(creds);
        if (auto hit = cache_.get(key.str())) return *hit;
        std::shared_ptr<Client> made = std::invoke(make, creds);
        if (!made) {
            throw std::invalid_argument("client_memoizer: factory returned a null client for " + key.printable());
        }
        auto resident =
            cache_.put_if_absent(key.str(), std::make_shared<const std::shared_ptr<Client>>(std::move(made)));
        return *resident;
    }

    /// The memoized client of `creds`, or null (counts as a use).
    [[nodiscard]] std::shared_ptr<Client> find(const client_credentials& creds) {
        auto hit = cache_.get(client_key::of(creds).str());
        return hit ? *hit : nullptr;
    }

    /// Drops the memoizer's reference to the client of `creds` (users keep theirs).
    bool erase(const client_credentials& creds) { return cache_.erase(client_key::of(creds).str()); }

    [[nodiscard]] std::size_t size() const { return cache_.size(); }
    [[nodiscard]] cache_stats stats() const { return cache_.stats(); }

private:
    static ttl_lru_params lru_params(const client_memoizer_params& p) {
        ttl_lru_params out;
        out.capacity = p.capacity;
        out.ttl = p.idle_ttl;
        out.mode = ttl_mode::idle;
        out.shards = p.shards;
        return out;
    }
    ttl_lru_cache<std::string, std::shared_ptr<Client>> cache_;
};

}  // namespace preflight::cache
