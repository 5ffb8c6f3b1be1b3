#pragma once

#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/admission_store.hpp>

namespace preflight::clients {

/// Concurrency slots shared through Postgres (table `preflight_leases`, function `preflight_admit` of
/// sql/003_admission.sql). reserve is one statement calling `preflight_admit`, which takes a per-key
/// transaction advisory lock (the same lock as the older `preflight_reserve`), so the slot limit holds across
/// every process, old binaries included. Lease ids are server-generated UUIDs. Expiry uses the server clock: a
/// dead holder's slot comes back after its ttl; reserve deletes the expired leases of its key when it meets
/// some, `purge_expired` those of keys no longer reserved. Semantics equal `limits::memory_admission_store`.
/// Lifetime: `pool` must outlive the store and every call. Thread safety: fully thread-safe.
class pg_admission_store final : public limits::admission_store {
public:
    /// With `batch` (optional; it must outlive the store), each reserve goes through it: one call shared with the
    /// other limiter writes of the same turn instead of a statement of its own (`pg_limit_batch`).
    explicit pg_admission_store(pg_pool& pool, pg_limit_batch* batch = nullptr) noexcept : pool_(pool), batch_(batch) {}

    /// See `limits::admission_store::reserve`. One statement; needs migration 003 (`migrate`). An answer that is
    /// not `preflight_admit`'s is `errc::protocol_error`.
    boost::asio::awaitable<result<limits::lease_grant>> reserve(
        std::string key, std::uint32_t max_slots, std::chrono::milliseconds ttl
    ) override;

    /// See `limits::admission_store::release`. One statement; a malformed lease id is unknown (false).
    boost::asio::awaitable<result<bool>> release(std::string lease_id) override;

    /// See `limits::admission_store::renew`. One statement; a malformed lease id is unknown (false).
    boost::asio::awaitable<result<bool>> renew(std::string lease_id, std::chrono::milliseconds ttl) override;

    /// Deletes expired leases of every key (reserve already deletes those of the key it touches when it finds
    /// any); bounds the table when keys stop being used. Returns how many rows were removed. One statement; run it
    /// periodically.
    boost::asio::awaitable<result<std::uint64_t>> purge_expired();

    /// The pool the store runs on.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

private:
    pg_pool& pool_;
    pg_limit_batch* batch_;
};

}  // namespace preflight::clients
