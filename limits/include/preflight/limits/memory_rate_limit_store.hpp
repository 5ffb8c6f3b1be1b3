#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/rate_limit_store.hpp>

#include <cstddef>
#include <memory>
#include <string_view>

namespace preflight::limits {

/// Options of `memory_rate_limit_store`.
struct memory_rate_limit_store_params {
    /// Upper bound on keys held; full (idle) buckets are forgotten first.
    std::size_t max_keys = 100'000;
    /// Number of lock shards (rounded up to a power of two).
    std::size_t shards = 64;
};

/// The embedded (one process) `rate_limit_store`: one GCRA timestamp per key, the arithmetic of gcra.hpp.
/// The coroutines complete synchronously (no suspension, so cancellation has nothing to interrupt).
/// Errors: an invalid limit (rate <= 0, burst < 1) gives `errc::bad_input`. Never fails otherwise.
/// Thread safety: every member may be called concurrently. Lifetime: the clock must outlive the store.
class memory_rate_limit_store final : public rate_limit_store {
public:
    explicit memory_rate_limit_store(
        const preflight::clock& c = preflight::clock::steady(), memory_rate_limit_store_params p = {}
    );
    ~memory_rate_limit_store() override;
    memory_rate_limit_store(const memory_rate_limit_store&) = delete;
    memory_rate_limit_store& operator=(const memory_rate_limit_store&) = delete;

    boost::asio::awaitable<result<acquire_result>> acquire(std::string key, bucket_limit limit, std::uint32_t quantity)
        override;
    boost::asio::awaitable<result<void>> refund(std::string key, bucket_limit limit, std::uint32_t quantity) override;

    /// Synchronous form of `acquire` (same semantics, no coroutine frame).
    [[nodiscard]] result<acquire_result> try_acquire(std::string_view key, bucket_limit limit, std::uint32_t quantity);
    /// Synchronous form of `refund`.
    result<void> refund_now(std::string_view key, bucket_limit limit, std::uint32_t quantity);

    /// Forgets full buckets; returns how many.
    std::size_t evict_idle();
    /// Keys held now (a snapshot).
    [[nodiscard]] std::size_t size() const;

private:
    struct impl;
    const preflight::clock& clock_;
    std::unique_ptr<impl> impl_;
};

}  // namespace preflight::limits
