#include "key_table.hpp"
#include <preflight/limits/gcra.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

#include <cmath>
#include <mutex>

namespace preflight::limits {
namespace {

struct tat_entry {
    std::int64_t tat = 0;
};

bool valid(const bucket_limit& l) noexcept {
    return l.rate_per_s > 0 && std::isfinite(l.rate_per_s) && l.burst >= 1 && std::isfinite(l.burst);
}

}  // namespace

struct memory_rate_limit_store::impl {
    explicit impl(const memory_rate_limit_store_params& p)
        : table(p.shards == 0 ? 1 : p.shards, p.max_keys == 0 ? 1 : p.max_keys) {}
    detail::sharded_table<tat_entry> table;
};

memory_rate_limit_store::memory_rate_limit_store(const preflight::clock& c, memory_rate_limit_store_params p)
    : clock_{c}, impl_{std::make_unique<impl>(p)} {}

memory_rate_limit_store::~memory_rate_limit_store() = default;

result<acquire_result> memory_rate_limit_store::try_acquire(
    std::string_view key, bucket_limit limit, std::uint32_t quantity
) {
    if (!valid(limit)) return errc::bad_input;
    const gcra::params p = gcra::to_params(limit);
    const std::int64_t now = detail::read_clock(clock_);
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    std::lock_guard g{s.lock};
    if (quantity == 0) {
        const tat_entry* e = s.table.find(key, h);
        return gcra::to_result(gcra::decide(e ? e->tat : now, now, 0, p));
    }
    tat_entry& e = impl_->table.find_or_create(
        s,
        key,
        h,
        [now] { return tat_entry{now}; },
        [now](const tat_entry& v) { return gcra::is_full(v.tat, now); },
        [](const tat_entry& v) { return v.tat; }
    );
    const gcra::decision d = gcra::decide(e.tat, now, quantity, p);
    if (d.store) e.tat = d.tat_after;
    return gcra::to_result(d);
}

result<void> memory_rate_limit_store::refund_now(std::string_view key, bucket_limit limit, std::uint32_t quantity) {
    if (!valid(limit)) return errc::bad_input;
    const gcra::params p = gcra::to_params(limit);
    const std::int64_t now = detail::read_clock(clock_);
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    std::lock_guard g{s.lock};
    if (tat_entry* e = s.table.find(key, h)) e->tat = gcra::refund(e->tat, now, quantity, p);
    return {};
}

boost::asio::awaitable<result<acquire_result>> memory_rate_limit_store::acquire(
    std::string key, bucket_limit limit, std::uint32_t quantity
) {
    co_return try_acquire(key, limit, quantity);
}

boost::asio::awaitable<result<void>> memory_rate_limit_store::refund(
    std::string key, bucket_limit limit, std::uint32_t quantity
) {
    co_return refund_now(key, limit, quantity);
}

std::size_t memory_rate_limit_store::evict_idle() {
    const std::int64_t now = detail::read_clock(clock_);
    return impl_->table.erase_if([now](const tat_entry& v) { return gcra::is_full(v.tat, now); });
}

std::size_t memory_rate_limit_store::size() const {
    return impl_->table.size();
}

}  // namespace preflight::limits
