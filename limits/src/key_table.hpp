#pragma once
// Private: the sharded, bounded key -> state table behind the in-memory limiters.
// Open addressing with linear probing; a shard never deletes in place, it rebuilds itself when it evicts
// (so there are no tombstones). Each shard has a small spin lock: the critical sections are a few dozen ns.

#include <preflight/core/clock.hpp>
#include <preflight/limits/coarse_clock.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <time.h>
#include <vector>

namespace preflight::limits::detail {

/// Nanoseconds since the clock's epoch. The two built-in clocks are read directly (no virtual call); any other
/// clock (e.g. `manual_clock`) through its interface.
inline std::int64_t read_clock(const preflight::clock& c) noexcept {
    static const preflight::clock* const steady = &preflight::clock::steady();
    static const preflight::clock* const coarse = &coarse_steady_clock();
    if (&c == steady) return std::chrono::steady_clock::now().time_since_epoch().count();
    if (&c == coarse) {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
    return c.now().time_since_epoch().count();
}

/// A keyed hash with a per-process random seed (an attacker cannot pre-compute colliding keys).
/// Reads 8 bytes at a time; murmur3's finaliser at the end.
inline std::uint64_t hash_seed() noexcept {
    static const std::uint64_t seed = [] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ 0x9E3779B97F4A7C15ull;
    }();
    return seed;
}

inline std::uint64_t hash_key(std::string_view s, std::uint64_t seed) noexcept {
    std::uint64_t h = seed ^ (s.size() * 0xC2B2AE3D27D4EB4Full);
    const char* p = s.data();
    std::size_t n = s.size();
    while (n >= 8) {
        std::uint64_t c = 0;
        std::memcpy(&c, p, 8);
        h = (h ^ c) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        // 1..7 tail bytes without a variable-length copy: two overlapping 4-byte loads, or first/middle/last byte.
        std::uint64_t c = 0;
        if (n >= 4) {
            std::uint32_t lo = 0;
            std::uint32_t hi = 0;
            std::memcpy(&lo, p, 4);
            std::memcpy(&hi, p + n - 4, 4);
            c = (static_cast<std::uint64_t>(hi) << 32) | lo;
        } else {
            c = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
                (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
                static_cast<unsigned char>(p[n - 1]);
        }
        h = (h ^ c) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Test-and-test-and-set lock; yields after a short spin so a preempted holder does not burn a core.
class spin_lock {
public:
    void lock() noexcept {
        for (;;) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            int spins = 0;
            while (locked_.load(std::memory_order_relaxed)) {
                if (++spins < 64) {
                    cpu_relax();
                } else {
                    std::this_thread::yield();
                }
            }
        }
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> locked_{false};
};

/// One shard's table. Not synchronised: the owner holds the shard lock.
template <class V>
class key_table {
public:
    struct slot {
        std::uint64_t hash = 0;
        bool used = false;
        std::string key;
        V value{};
    };

    explicit key_table(std::size_t initial = 16) { slots_.resize(round_up(initial)); }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    [[nodiscard]] V* find(std::string_view key, std::uint64_t h) noexcept {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            slot& s = slots_[i];
            if (!s.used) return nullptr;
            if (s.hash == h && s.key == key) return &s.value;
        }
    }

    /// Inserts a key that is not present. Grows at load factor 1/2.
    V* insert(std::string_view key, std::uint64_t h, V value) {
        if ((size_ + 1) * 2 > slots_.size()) rebuild(slots_.size() * 2, [](const V&) { return false; });
        ++size_;
        return &place(std::move(value), std::string(key), h)->value;
    }

    /// Removes every entry for which `drop(value)` is true; returns how many.
    template <class Pred>
    std::size_t erase_if(Pred drop) {
        const std::size_t before = size_;
        std::size_t live = 0;
        for (const auto& s : slots_) {
            if (s.used && !drop(s.value)) ++live;
        }
        if (live == before) return 0;
        rebuild(std::max<std::size_t>(16, round_up(live * 2 + 2)), drop);
        return before - size_;
    }

    template <class F>
    void for_each(F f) const {
        for (const auto& s : slots_) {
            if (s.used) f(s.value);
        }
    }

private:
    static std::size_t round_up(std::size_t n) {
        std::size_t c = 16;
        while (c < n) c *= 2;
        return c;
    }

    slot* place(V value, std::string key, std::uint64_t h) {
        const std::size_t mask = slots_.size() - 1;
        std::size_t i = h & mask;
        while (slots_[i].used) i = (i + 1) & mask;
        slot& s = slots_[i];
        s.used = true;
        s.hash = h;
        s.key = std::move(key);
        s.value = std::move(value);
        return &s;
    }

    template <class Pred>
    void rebuild(std::size_t capacity, Pred drop) {
        std::vector<slot> old(round_up(capacity));
        old.swap(slots_);
        size_ = 0;
        for (auto& s : old) {
            if (s.used && !drop(s.value)) {
                place(std::move(s.value), std::move(s.key), s.hash);
                ++size_;
            }
        }
    }

    std::vector<slot> slots_;
    std::size_t size_ = 0;
};

/// A shard: lock + table, on its own cache lines.
template <class V>
struct alignas(64) shard {
    spin_lock lock;
    key_table<V> table;
};

/// Bounded sharded table. `age(value, now)` says how far a value is from being forgettable (<= 0: idle now).
template <class V>
class sharded_table {
public:
    sharded_table(std::size_t shard_count, std::size_t max_keys) : seed_{hash_seed()} {
        std::size_t n = 1;
        while (n < shard_count) n *= 2;
        // Every shard holds at least one key, so more shards than keys would break the bound.
        while (n > 1 && n > max_keys) n /= 2;
        shards_ = std::make_unique<shard<V>[]>(n);
        shift_ = 64;
        for (std::size_t m = n; m > 1; m /= 2) --shift_;
        mask_ = n - 1;
        count_ = n;
        per_shard_cap_ = std::max<std::size_t>(1, max_keys / n);
    }

    [[nodiscard]] std::uint64_t hash(std::string_view key) const noexcept { return hash_key(key, seed_); }
    [[nodiscard]] shard<V>& shard_for(std::uint64_t h) noexcept {
        return shards_[count_ == 1 ? 0 : static_cast<std::size_t>(h >> shift_) & mask_];
    }
    [[nodiscard]] std::size_t shard_count() const noexcept { return count_; }
    [[nodiscard]] shard<V>& shard_at(std::size_t i) noexcept { return shards_[i]; }
    [[nodiscard]] std::size_t per_shard_cap() const noexcept { return per_shard_cap_; }

    /// Finds or creates the entry of `key` in `s` (whose lock the caller holds). Before creating an entry in a
    /// full shard, forgets idle entries (`idle(v)`); if that frees less than a quarter of the shard, it also
    /// forgets the half of the entries with the smallest `rank(v)` (those closest to idle).
    template <class Make, class Idle, class Rank>
    V& find_or_create(shard<V>& s, std::string_view key, std::uint64_t h, Make make, Idle idle, Rank rank) {
        if (V* v = s.table.find(key, h)) return *v;
        if (s.table.size() >= per_shard_cap_) make_room(s, idle, rank);
        return *s.table.insert(key, h, make());
    }

    template <class Idle, class Rank>
    void make_room(shard<V>& s, Idle idle, Rank rank) {
        s.table.erase_if(idle);
        if (s.table.size() * 4 <= per_shard_cap_ * 3) return;
        std::vector<std::int64_t> ranks;
        ranks.reserve(s.table.size());
        s.table.for_each([&](const V& v) { ranks.push_back(rank(v)); });
        auto mid = ranks.begin() + static_cast<std::ptrdiff_t>(ranks.size() / 2);
        std::nth_element(ranks.begin(), mid, ranks.end());
        const std::int64_t cut = *mid;
        s.table.erase_if([&](const V& v) { return rank(v) <= cut; });
        forced_evictions_.fetch_add(1, std::memory_order_relaxed);
    }

    [[nodiscard]] std::size_t size() noexcept {
        std::size_t n = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            std::lock_guard g{shards_[i].lock};
            n += shards_[i].table.size();
        }
        return n;
    }

    template <class Idle>
    std::size_t erase_if(Idle idle) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < count_; ++i) {
            std::lock_guard g{shards_[i].lock};
            n += shards_[i].table.erase_if(idle);
        }
        return n;
    }

    [[nodiscard]] std::uint64_t forced_evictions() const noexcept {
        return forced_evictions_.load(std::memory_order_relaxed);
    }

private:
    std::uint64_t seed_;
    std::unique_ptr<shard<V>[]> shards_;
    unsigned shift_ = 64;
    std::size_t mask_ = 0;
    std::size_t count_ = 1;
    std::size_t per_shard_cap_ = 1;
    std::atomic<std::uint64_t> forced_evictions_{0};
};

}  // namespace preflight::limits::detail
