#include "key_table.hpp"
#include <preflight/limits/gcra.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <cmath>
#include <mutex>
#include <string>

namespace preflight::limits {

void validate(const bucket_limit& l, std::string_view what) {
    if (!(l.rate_per_s > 0) || !std::isfinite(l.rate_per_s)) {
        throw invalid_limit(std::string(what) + ": rate_per_s must be > 0, got " + std::to_string(l.rate_per_s));
    }
    if (!(l.burst >= 1) || !std::isfinite(l.burst)) {
        throw invalid_limit(std::string(what) + ": burst must be >= 1, got " + std::to_string(l.burst));
    }
}

namespace {

struct bucket_pair {
    std::int64_t tat[2] = {0, 0};  // [0] read, [1] write
};

}  // namespace

struct token_bucket_limiter::impl {
    impl(const token_bucket_params& p)
        : table(p.shards, p.max_keys), limits{gcra::to_params(p.read), gcra::to_params(p.write)} {}
    detail::sharded_table<bucket_pair> table;
    gcra::params limits[2];
};

namespace {

// -1: exempt (never touches a bucket).
int bucket_index(operation_class cls, bool cancel_exempt) noexcept {
    switch (cls) {
        case operation_class::read: return 0;
        case operation_class::write: return 1;
        case operation_class::cancel: return cancel_exempt ? -1 : 1;
    }
    return 1;
}

std::int64_t now_ns(const preflight::clock& c) noexcept {
    return c.now().time_since_epoch().count();
}

}  // namespace

token_bucket_limiter::token_bucket_limiter(const preflight::clock& c, token_bucket_params p) : clock_{c}, params_{p} {
    validate(p.read, "rate_limit.read");
    validate(p.write, "rate_limit.write");
    if (p.max_keys == 0) throw invalid_limit("rate_limit.max_keys must be >= 1, got 0");
    if (p.shards == 0) params_.shards = 1;
    impl_ = std::make_unique<impl>(params_);
}

token_bucket_limiter::~token_bucket_limiter() = default;

acquire_result token_bucket_limiter::try_acquire(std::string_view key, operation_class cls, std::uint32_t quantity) {
    const int b = bucket_index(cls, params_.cancel_exempt);
    if (b < 0) {
        // Exempt: report the write bucket as it is, without creating or touching it.
        acquire_result r = peek(key, operation_class::write);
        r.allowed = true;
        r.retry_after = std::chrono::nanoseconds{0};
        return r;
    }
    const std::int64_t now = now_ns(clock_);
    const gcra::params lp = impl_->limits[b];
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    gcra::decision d;
    {
        std::lock_guard g{s.lock};
        bucket_pair& e = impl_->table.find_or_create(
            s,
            key,
            h,
            [now] {
                return bucket_pair{{now, now}};
            },
            [now](const bucket_pair& v) { return gcra::is_full(v.tat[0], now) && gcra::is_full(v.tat[1], now); },
            [](const bucket_pair& v) { return std::max(v.tat[0], v.tat[1]); }
        );
        d = gcra::decide(e.tat[b], now, quantity, lp);
        if (d.store) e.tat[b] = d.tat_after;
    }
    return gcra::to_result(d);
}

acquire_result token_bucket_limiter::peek(std::string_view key, operation_class cls) {
    int b = bucket_index(cls, params_.cancel_exempt);
    const bool exempt = b < 0;
    if (exempt) b = 1;
    const std::int64_t now = now_ns(clock_);
    const gcra::params lp = impl_->limits[b];
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    std::int64_t tat = now;
    {
        std::lock_guard g{s.lock};
        if (const bucket_pair* e = s.table.find(key, h)) tat = e->tat[b];
    }
    acquire_result r = gcra::to_result(gcra::decide(tat, now, 0, lp));
    if (exempt) {
        r.allowed = true;
        r.retry_after = std::chrono::nanoseconds{0};
    }
    return r;
}

void token_bucket_limiter::refund(std::string_view key, operation_class cls, std::uint32_t quantity) {
    const int b = bucket_index(cls, params_.cancel_exempt);
    if (b < 0 || quantity == 0) return;
    const std::int64_t now = now_ns(clock_);
    const gcra::params lp = impl_->limits[b];
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    std::lock_guard g{s.lock};
    if (bucket_pair* e = s.table.find(key, h)) e->tat[b] = gcra::refund(e->tat[b], now, quantity, lp);
}

std::size_t token_bucket_limiter::evict_idle() {
    const std::int64_t now = now_ns(clock_);
    return impl_->table.erase_if([now](const bucket_pair& v) {
        return gcra::is_full(v.tat[0], now) && gcra::is_full(v.tat[1], now);
    });
}

std::size_t token_bucket_limiter::size() const {
    return impl_->table.size();
}

std::uint64_t token_bucket_limiter::forced_evictions() const noexcept {
    return impl_->table.forced_evictions();
}

}  // namespace preflight::limits
