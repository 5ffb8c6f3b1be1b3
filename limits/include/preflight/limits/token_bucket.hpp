#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/operation_class.hpp>
#include <preflight/limits/rate_limit_store.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace preflight::limits {

/// Options of `token_bucket_limiter`. Defaults: read 1 rps burst 10, write 1 rps burst 20, cancel exempt.
struct token_bucket_params {
    bucket_limit read{1.0, 10.0};
    bucket_limit write{1.0, 20.0};
    /// true: `cancel` is always allowed and never touches the write bucket. false: cancel draws from write.
    bool cancel_exempt = true;
    /// Upper bound on keys held (split evenly over the shards). Idle (full) buckets are forgotten first; see
    /// docs/limits.md for what happens when more keys than this are active at once.
    std::size_t max_keys = 100'000;
    /// Number of lock shards (rounded up to a power of two).
    std::size_t shards = 64;
};

/// Thrown by constructors and setters given an invalid limit (rate <= 0, burst < 1, max_keys 0).
class invalid_limit : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Validates a bucket limit; throws `invalid_limit` naming `what` and the bad value.
void validate(const bucket_limit& l, std::string_view what);

/// In-process token buckets per key, one bucket per operation class (read, write), GCRA arithmetic from
/// gcra.hpp (one timestamp per key and class). Synchronous and non-virtual: the fast path does one clock read,
/// one hash, one shard lock, one probe and no heap allocation once the key exists.
/// Thread safety: every member may be called concurrently. Lifetime: the clock must outlive the limiter.
class token_bucket_limiter {
public:
    explicit token_bucket_limiter(const preflight::clock& c = preflight::clock::steady(), token_bucket_params p = {});
    ~token_bucket_limiter();
    token_bucket_limiter(const token_bucket_limiter&) = delete;
    token_bucket_limiter& operator=(const token_bucket_limiter&) = delete;

    /// Takes `quantity` tokens (all or nothing) from the bucket of `cls` for `key`. `quantity` 0 = peek.
    /// A cancel under `cancel_exempt` is always allowed (remaining/reset report the write bucket, untouched).
    [[nodiscard]] acquire_result try_acquire(std::string_view key, operation_class cls, std::uint32_t quantity = 1);

    /// Reports what `try_acquire(key, cls, 1)` would decide, without consuming; retry_after is exact. Does not
    /// create the key.
    [[nodiscard]] acquire_result peek(std::string_view key, operation_class cls);

    /// Gives `quantity` tokens back (never above burst). Unknown key or exempt cancel: no-op.
    void refund(std::string_view key, operation_class cls, std::uint32_t quantity);

    /// Forgets every bucket that is full (idle); such a bucket is indistinguishable from a new one. Returns the
    /// number forgotten. Also happens automatically when a shard reaches its share of `max_keys`.
    std::size_t evict_idle();

    /// Keys held now (takes every shard lock in turn; a snapshot, approximate under concurrent use).
    [[nodiscard]] std::size_t size() const;

    /// How many times a shard had to forget non-idle buckets to respect `max_keys` (a flood of active keys).
    [[nodiscard]] std::uint64_t forced_evictions() const noexcept;

    [[nodiscard]] const token_bucket_params& params() const noexcept { return params_; }

private:
    struct impl;
    const preflight::clock& clock_;
    token_bucket_params params_;
    std::unique_ptr<impl> impl_;
};

}  // namespace preflight::limits
