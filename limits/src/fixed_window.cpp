#include "key_table.hpp"
#include <preflight/limits/fixed_window.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>

namespace preflight::limits {
namespace {

struct window_entry {
    std::int64_t start = 0;
    std::int64_t period = 1;
    std::uint64_t count = 0;
};

}  // namespace

struct fixed_window_counter::impl {
    explicit impl(const fixed_window_params& p) : table(p.shards == 0 ? 1 : p.shards, p.max_keys) {}
    detail::sharded_table<window_entry> table;
};

fixed_window_counter::fixed_window_counter(const preflight::clock& c, fixed_window_params p) : clock_{c} {
    if (p.max_keys == 0) throw invalid_limit("backstop.max_keys must be >= 1, got 0");
    impl_ = std::make_unique<impl>(p);
}

fixed_window_counter::~fixed_window_counter() = default;

namespace {

std::int64_t checked_period(std::string_view key, window_limit limit) {
    const std::int64_t period = std::chrono::duration_cast<std::chrono::nanoseconds>(limit.period).count();
    if (period <= 0) {
        throw invalid_limit(
            "fixed window for key '" + std::string(key) + "': period must be > 0 s, got " +
            std::to_string(limit.period.count())
        );
    }
    if (limit.max == 0) {
        throw invalid_limit("fixed window for key '" + std::string(key) + "': max must be >= 1, got 0");
    }
    return period;
}

}  // namespace

window_result fixed_window_counter::consume(std::string_view key, window_limit limit, std::uint64_t n) {
    const std::int64_t period = checked_period(key, limit);
    const std::int64_t now = detail::read_clock(clock_);
    const std::int64_t start = window_math::window_start(now, period);
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    window_result r;
    r.max = limit.max;
    r.reset_after = std::chrono::nanoseconds{start + period - now};
    std::lock_guard g{s.lock};
    window_entry& e = impl_->table.find_or_create(
        s,
        key,
        h,
        [&] {
            return window_entry{start, period, 0};
        },
        [now](const window_entry& v) { return v.start + v.period <= now; },
        [](const window_entry& v) { return v.start + v.period; }
    );
    const std::uint64_t count = (e.start == start && e.period == period) ? e.count : 0;
    const bool fits = n <= limit.max && count <= limit.max - n;
    r.allowed = fits;
    r.count = count;
    if (fits && n > 0) {
        e.start = start;
        e.period = period;
        e.count = count + n;
        r.count = e.count;
    }
    return r;
}

void fixed_window_counter::refund(std::string_view key, window_limit limit, std::uint64_t n) {
    const std::int64_t period = checked_period(key, limit);
    const std::int64_t start = window_math::window_start(detail::read_clock(clock_), period);
    const std::uint64_t h = impl_->table.hash(key);
    auto& s = impl_->table.shard_for(h);
    std::lock_guard g{s.lock};
    window_entry* e = s.table.find(key, h);
    if (e == nullptr || e->start != start || e->period != period) return;
    e->count -= std::min(e->count, n);
}

std::size_t fixed_window_counter::purge_idle() {
    const std::int64_t now = detail::read_clock(clock_);
    return impl_->table.erase_if([now](const window_entry& v) { return window_math::purgeable(v.start, v.period, now); }
    );
}

std::size_t fixed_window_counter::size() const {
    return impl_->table.size();
}

}  // namespace preflight::limits
