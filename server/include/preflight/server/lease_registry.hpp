#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/gates/lease.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace preflight::server {

/// What `lease_registry::release` did.
enum class release_status {
    released,          ///< the lease was held and is now released
    already_released,  ///< released before (a repeated call is harmless)
    unknown,           ///< no such lease (never issued here, or expired)
    failed,            ///< the store's release failed (the lease still counts as released; its ttl is the backstop)
};

/// What `lease_registry::renew` did.
enum class renew_status {
    renewed,   ///< the store extended the lease by its ttl; so did the registry
    expired,   ///< the store no longer holds it (its ttl passed): dropped from the registry
    released,  ///< released before
    unknown,   ///< no such lease (never issued here, or expired)
    failed,    ///< the store's renew failed (the lease is kept; retry)
};

/// Leases handed out by POST /v1/preflight, kept by id until the caller releases them or their ttl passes
/// (the admission store expires them by then too). Bounded: at most `capacity` held leases, plus at most
/// `max_released` tombstones of released ones (kept until their ttl, or until newer tombstones push them out, so
/// a repeated release answers "already released"; an older one answers "unknown"). Expired entries are purged on every
/// `add` and `release`. Thread safety: every member may be called concurrently. Lifetime: an expired lease is dropped,
/// which starts its (harmless, idempotent) release on the lease's executor; destroy the registry before the io_context
/// the leases run on.
class lease_registry {
public:
    /// Throws `std::invalid_argument` for a zero capacity or a ttl <= 0.
    lease_registry(
        std::size_t capacity,
        std::chrono::milliseconds ttl,
        const preflight::clock& c,
        std::size_t max_released = 10'000
    );
    lease_registry(const lease_registry&) = delete;
    lease_registry& operator=(const lease_registry&) = delete;

    /// Keeps `l` (moved from on success) until released or expired. Returns false and leaves `l` untouched when
    /// `capacity` leases are held (after purging), or when `l` is empty or its id is already registered.
    [[nodiscard]] bool add(gates::lease& l);

    /// Releases lease `id` (awaiting the store), recording the execution's usage (`requests`, `tokens`) where the
    /// lease records usage. Idempotent. `ec`, when given, receives the store's error of a `failed` release.
    /// Cancellation: that of `gates::lease::release` (the lease counts as released anyway).
    boost::asio::awaitable<release_status> release(
        std::string id, boost::system::error_code* ec = nullptr, std::uint64_t requests = 1, std::uint64_t tokens = 0
    );

    /// Extends held lease `id` by the ttl (in its store, then here), so that an execution longer than the ttl that
    /// renews keeps its slot. `ec`, when given, receives the store's error of a `failed` renew.
    boost::asio::awaitable<renew_status> renew(std::string id, boost::system::error_code* ec = nullptr);

    /// Held (not yet released, not expired) leases. Approximate: expired entries are purged lazily.
    [[nodiscard]] std::size_t held() const;
    /// Entries (held + tombstones); at most capacity + max_released.
    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::chrono::milliseconds ttl() const noexcept { return ttl_; }

private:
    // Entries are linked into their order list through their own fields (no list nodes, no copies of the id):
    // unordered_map nodes never move, so the pointers stay valid until the entry is erased.
    struct entry {
        gates::lease lease;  // empty once released (tombstone)
        preflight::clock::time_point expires;
        const std::string* id = nullptr;  // the map's key
        entry* prev = nullptr;
        entry* next = nullptr;
        bool tombstone = false;
    };
    struct order_list {  // oldest first
        entry* head = nullptr;
        entry* tail = nullptr;
        std::size_t size = 0;
        void push_back(entry* e) noexcept;
        void erase(entry* e) noexcept;
    };
    void purge_locked(preflight::clock::time_point now);
    void erase_locked(order_list& order, entry* e);

    std::size_t capacity_;
    std::size_t max_released_;
    std::chrono::milliseconds ttl_;
    const preflight::clock* clock_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;
    order_list held_order_;  // held leases by expiry (the ttl is constant)
    order_list tomb_order_;  // tombstones by release time
};

}  // namespace preflight::server
