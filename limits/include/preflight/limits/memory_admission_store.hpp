#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/admission_store.hpp>

#include <cstddef>
#include <memory>
#include <string_view>

namespace preflight::limits {

/// Options of `memory_admission_store` (none are required).
struct memory_admission_store_params {
    /// When the number of stored leases doubles since the last sweep, expired leases of every key are dropped.
    std::size_t sweep_floor = 1024;
};

/// The embedded (one process) `admission_store`. Lease ids are random 128-bit values as 32 hex characters.
/// A lease is live while `now < expires_at` on the injected clock. The coroutines complete synchronously.
/// Errors: `max_slots` 0 or a ttl <= 0 gives `errc::bad_input`.
/// Thread safety: every member may be called concurrently. Lifetime: the clock must outlive the store.
class memory_admission_store final : public admission_store {
public:
    explicit memory_admission_store(
        const preflight::clock& c = preflight::clock::steady(), memory_admission_store_params p = {}
    );
    ~memory_admission_store() override;
    memory_admission_store(const memory_admission_store&) = delete;
    memory_admission_store& operator=(const memory_admission_store&) = delete;

    boost::asio::awaitable<result<lease_grant>> reserve(
        std::string key, std::uint32_t max_slots, std::chrono::milliseconds ttl
    ) override;
    boost::asio::awaitable<result<bool>> release(std::string lease_id) override;
    boost::asio::awaitable<result<bool>> renew(std::string lease_id, std::chrono::milliseconds ttl) override;

    /// Synchronous forms.
    [[nodiscard]] result<lease_grant> reserve_now(
        std::string_view key, std::uint32_t max_slots, std::chrono::milliseconds ttl
    );
    [[nodiscard]] bool release_now(std::string_view lease_id);
    [[nodiscard]] bool renew_now(std::string_view lease_id, std::chrono::milliseconds ttl);

    /// Live leases of `key` now.
    [[nodiscard]] std::size_t in_use(std::string_view key) const;
    /// Leases stored (live or expired but not yet swept).
    [[nodiscard]] std::size_t stored_leases() const;
    /// Keys with an entry now: those holding leases, plus keys whose leases all ended, kept (to reuse their memory)
    /// until the next sweep; that sweep runs once they outnumber max(sweep_floor, keys / 2), so this stays bounded.
    [[nodiscard]] std::size_t keys() const;

private:
    struct impl;
    const preflight::clock& clock_;
    std::unique_ptr<impl> impl_;
};

}  // namespace preflight::limits
