#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace preflight::cache {

/// How an entry's time to live is counted.
enum class ttl_mode {
    absolute,  ///< expires at insertion + ttl; reads never extend it
    idle,      ///< expires ttl after the last read or write; every hit extends it
};

/// Options of a `ttl_lru_cache`. Every field has a default.
struct ttl_lru_params {
    std::size_t capacity = 1000;                    ///< maximum number of entries (all shards together), > 0
    clock::duration ttl = std::chrono::minutes{5};  ///< > 0
    ttl_mode mode = ttl_mode::absolute;
    /// Number of independently locked shards, rounded up to a power of two and capped at `capacity`.
    /// Capacity is shared: nothing is evicted before the whole cache holds `capacity` entries. Once it
    /// is full, an insert evicts the least recently used entry of its own shard, so LRU order is exact
    /// within a shard, and with 1 shard exact for the whole cache.
    std::size_t shards = 16;
};

/// Counters of a cache since construction. Read with `stats()`; each shard is read under its lock.
struct cache_stats {
    std::uint64_t hits = 0;         ///< lookups that returned a live entry
    std::uint64_t misses = 0;       ///< lookups that returned nothing (absent, expired, or not accepted)
    std::uint64_t evictions = 0;    ///< live entries dropped to make room (least recently used first)
    std::uint64_t expirations = 0;  ///< entries dropped because their TTL had passed
    std::uint64_t inserts = 0;      ///< new entries written (put, put_if_absent, successful loads)
    std::uint64_t loads = 0;        ///< loader runs started by get_or_load
    std::uint64_t coalesced = 0;    ///< get_or_load misses that joined a load already in flight
    std::uint64_t load_errors = 0;  ///< loader runs that ended in an error or an exception
    std::size_t size = 0;           ///< entries currently stored (expired ones not yet dropped included)
};

/// Default hash: `std::hash<Key>`, and for `std::string` a transparent hash over `std::string_view` so
/// that lookups never allocate a key.
template <class Key>
struct default_hash : std::hash<Key> {};

template <>
struct default_hash<std::string> {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

namespace detail {

template <class Key>
struct key_view_of {
    using type = const Key&;
};
template <>
struct key_view_of<std::string> {
    using type = std::string_view;
};

/// What a load produced, shared by every waiter of that load.
template <class Value>
struct load_outcome {
    result<std::shared_ptr<const Value>> value{make_error_code(errc::store_unavailable)};
    std::exception_ptr exception;
};

template <class Value>
using load_channel = boost::asio::experimental::concurrent_channel<
    void(boost::system::error_code, std::shared_ptr<const load_outcome<Value>>)>;

/// One load in flight for one key. Guarded by its shard's mutex.
template <class Value>
struct flight {
    std::vector<std::shared_ptr<load_channel<Value>>> waiters;
    bool store = true;  ///< false once a put/erase/clear of the key overtook this load
};

struct lru_link {
    lru_link* prev = this;
    lru_link* next = this;
};

template <class Key, class Value, class Hash, class KeyEqual>
class lru_state {
public:
    using key_view = typename key_view_of<Key>::type;
    using value_ptr = std::shared_ptr<const Value>;
    using time_point = clock::time_point;

    struct node : lru_link {
        Key key;
        std::size_t hash = 0;
        value_ptr value;
        time_point expires{};
        node* chain = nullptr;
    };

    struct alignas(64) shard {
        mutable std::mutex mutex;
        std::vector<node*> buckets;
        unsigned bucket_shift = 0;
        lru_link lru;  // lru.next: most recently used; lru.prev: least recently used
        std::size_t size = 0;
        std::size_t capacity = 0;                   // of the whole cache
        std::atomic<std::size_t>* total = nullptr;  // entries in the whole cache
        node* free_list = nullptr;
        std::unordered_map<Key, std::shared_ptr<flight<Value>>, Hash, KeyEqual> flights;
        std::uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0, inserts = 0, loads = 0, coalesced = 0,
                      load_errors = 0;

        shard() = default;
        shard(const shard&) = delete;
        shard& operator=(const shard&) = delete;
        ~shard() {
            for (lru_link* l = lru.next; l != &lru;) {
                auto* n = static_cast<node*>(l);
                l = l->next;
                delete n;
            }
            while (free_list != nullptr) {
                node* n = free_list;
                free_list = n->chain;
                delete n;
            }
        }

        node*& bucket_of(std::size_t h) noexcept { return buckets[(h << bucket_shift_in) >> bucket_shift]; }
        unsigned bucket_shift_in = 0;

        node* find(key_view k, std::size_t h) noexcept {
            for (node* n = bucket_of(h); n != nullptr; n = n->chain) {
                if (n->hash == h && KeyEqual{}(n->key, k)) return n;
            }
            return nullptr;
        }
        static void lru_unlink(lru_link* l) noexcept {
            l->prev->next = l->next;
            l->next->prev = l->prev;
        }
        void lru_push_front(lru_link* l) noexcept {
            l->prev = &lru;
            l->next = lru.next;
            lru.next->prev = l;
            lru.next = l;
        }
        void touch(node* n) noexcept {
            if (lru.next != n) {
                lru_unlink(n);
                lru_push_front(n);
            }
        }
        void chain_unlink(node* n) noexcept {
            node** p = &bucket_of(n->hash);
            while (*p != n) p = &(*p)->chain;
            *p = n->chain;
        }
        /// Removes `n`; returns its value so the caller destroys it after unlocking.
        value_ptr remove(node* n) noexcept {
            chain_unlink(n);
            lru_unlink(n);
            --size;
            total->fetch_sub(1, std::memory_order_relaxed);
            value_ptr v = std::move(n->value);
            n->chain = free_list;
            free_list = n;
            return v;
        }
        /// Writes a new entry (the key is known absent). When the cache is full, this shard's least
        /// recently used entry makes room; a full cache with this shard empty grows by one and sets
        /// `over` (the caller trims another shard after unlocking). Returns the displaced value, if any.
        value_ptr insert_new(key_view k, std::size_t h, value_ptr v, time_point expires, time_point now, bool& over) {
            value_ptr displaced;
            node* n;
            if (size > 0 && total->load(std::memory_order_relaxed) >= capacity) {
                n = static_cast<node*>(lru.prev);
                if (now >= n->expires) {
                    ++expirations;
                } else {
                    ++evictions;
                }
                chain_unlink(n);
                lru_unlink(n);
                displaced = std::move(n->value);
            } else {
                if (free_list != nullptr) {
                    n = free_list;
                    free_list = n->chain;
                } else {
                    n = new node;
                }
                ++size;
                over = total->fetch_add(1, std::memory_order_relaxed) + 1 > capacity;
            }
            if constexpr (std::is_same_v<Key, std::string>) {
                n->key.assign(k.data(), k.size());
            } else {
                n->key = k;
            }
            n->hash = h;
            n->value = std::move(v);
            n->expires = expires;
            node*& b = bucket_of(h);
            n->chain = b;
            b = n;
            lru_push_front(n);
            ++inserts;
            return displaced;
        }
    };

    lru_state(const ttl_lru_params& p, const clock& clk) : params_(p), clock_(&clk) {
        if (p.capacity == 0) throw std::invalid_argument("ttl_lru_cache: capacity must be > 0 (got 0)");
        if (p.ttl <= clock::duration::zero()) {
            throw std::invalid_argument(
                "ttl_lru_cache: ttl must be > 0 (got " +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(p.ttl).count()) + " ms)"
            );
        }
        std::size_t n = std::bit_ceil(std::max<std::size_t>(p.shards, 1));
        while (n > 1 && n > p.capacity) n /= 2;
        shard_bits_ = static_cast<unsigned>(std::countr_zero(n));
        shards_ = std::make_unique<shard[]>(n);
        shard_count_ = n;
        for (std::size_t i = 0; i < n; ++i) {
            shard& s = shards_[i];
            s.capacity = p.capacity;
            s.total = &total_;
            // Sized for twice the fair share of a shard; chains stay short.
            const std::size_t fair = p.capacity / n + 1;
            const std::size_t buckets = std::bit_ceil(std::max<std::size_t>(fair * 4, 2));
            const auto bucket_bits = static_cast<unsigned>(std::countr_zero(buckets));
            s.buckets.assign(buckets, nullptr);
            s.bucket_shift_in = shard_bits_;
            s.bucket_shift = 64 - bucket_bits;
        }
    }

    std::size_t hash_of(key_view k) const noexcept {
        return static_cast<std::size_t>(static_cast<std::uint64_t>(Hash{}(k)) * 0x9E3779B97F4A7C15ull);
    }
    shard& shard_of(std::size_t h) noexcept { return shards_[shard_bits_ == 0 ? 0 : h >> (64 - shard_bits_)]; }

    time_point now() const noexcept { return clock_->now(); }
    time_point expiry_from(time_point now) const noexcept { return now + params_.ttl; }

    /// Looks `k` up under the shard lock (already held); drops it when expired. Touches on hit.
    node* live_locked(shard& s, key_view k, std::size_t h, time_point now, value_ptr& dead) noexcept {
        node* n = s.find(k, h);
        if (n == nullptr) return nullptr;
        if (now >= n->expires) {
            dead = s.remove(n);
            ++s.expirations;
            return nullptr;
        }
        if (params_.mode == ttl_mode::idle) n->expires = expiry_from(now);
        s.touch(n);
        return n;
    }

    /// Insert or replace under the shard lock. Returns the displaced value to destroy after unlocking.
    value_ptr put_locked(shard& s, key_view k, std::size_t h, value_ptr v, time_point now, bool& over) {
        if (node* n = s.find(k, h)) {
            value_ptr old = std::move(n->value);
            n->value = std::move(v);
            n->expires = expiry_from(now);
            s.touch(n);
            ++s.inserts;
            return old;
        }
        return s.insert_new(k, h, std::move(v), expiry_from(now), now, over);
    }

    /// Brings the cache back within capacity after inserts raced past it, evicting the least recently
    /// used entry of other shards in turn. Call without holding any shard lock.
    void trim() {
        while (total_.load(std::memory_order_relaxed) > params_.capacity) {
            shard& s = shards_[trim_cursor_.fetch_add(1, std::memory_order_relaxed) & (shard_count_ - 1)];
            value_ptr dead;
            std::lock_guard lock(s.mutex);
            if (s.size == 0 || total_.load(std::memory_order_relaxed) <= params_.capacity) continue;
            auto* n = static_cast<node*>(s.lru.prev);
            if (now() >= n->expires) {
                ++s.expirations;
            } else {
                ++s.evictions;
            }
            dead = s.remove(n);
        }
    }

    static void overtake_flight_locked(shard& s, key_view k) {
        if (s.flights.empty()) return;
        auto it = s.flights.find(k);
        if (it != s.flights.end()) {
            it->second->store = false;
            s.flights.erase(it);
        }
    }

    shard* shards() noexcept { return shards_.get(); }
    std::size_t shard_count() const noexcept { return shard_count_; }
    const ttl_lru_params& params() const noexcept { return params_; }

private:
    ttl_lru_params params_;
    const clock* clock_;
    unsigned shard_bits_ = 0;
    std::size_t shard_count_ = 0;
    std::atomic<std::size_t> total_{0};
    std::atomic<std::size_t> trim_cursor_{0};
    std::unique_ptr<shard[]> shards_;
};

}  // namespace detail

/// Thread-safe, sharded LRU cache with a time to live per entry and a hard capacity bound.
///
/// - Reads return `std::shared_ptr<const Value>`: zero-copy and immutable; the value stays alive while
///   the caller holds it, even after eviction. `get_clone` returns an independent deep copy instead,
///   for callers that mutate. `visit` reads in place under the shard lock (no reference counting).
/// - TTL is absolute (from insertion, never extended by reads) or idle (extended by each hit), counted
///   on the injected `preflight::clock`, read once per call. Expired entries are dropped when met.
/// - Capacity: once the cache holds `capacity` entries, an insert evicts the least recently used entry
///   of its shard (of another shard when its own is empty). Inserts racing on different shards may
///   exceed the bound by one entry each until they return.
/// - `get_or_load` coalesces concurrent misses of one key (from any thread) into one loader run.
///
/// Thread safety: every member function may be called concurrently from any thread. A value is
/// destroyed outside the shard lock. Lifetimes: `clk` must outlive the cache and any load it started;
/// loads in flight keep the cache's internal state alive after the cache object is destroyed.
/// `Hash` must be stateless and, for heterogeneous lookup, transparent (see `default_hash`).
template <class Key, class Value, class Hash = default_hash<Key>, class KeyEqual = std::equal_to<>>
class ttl_lru_cache {
    using state = detail::lru_state<Key, Value, Hash, KeyEqual>;

public:
    using key_type = Key;
    using mapped_type = Value;
    /// `std::string_view` when `Key` is `std::string` (lookups never allocate), else `const Key&`.
    using key_view = typename state::key_view;
    using value_ptr = std::shared_ptr<const Value>;

    /// Throws `std::invalid_argument` (naming the value) when `capacity` is 0 or `ttl` is not positive.
    explicit ttl_lru_cache(ttl_lru_params params = {}, const clock& clk = clock::steady())
        : state_(std::make_shared<state>(params, clk)) {}

    ttl_lru_cache(const ttl_lru_cache&) = delete;
    ttl_lru_cache& operator=(const ttl_lru_cache&) = delete;

    /// The live value of `key`, or null. A hit marks the entry most recently used and, in idle mode,
    /// extends its TTL.
    [[nodiscard]] value_ptr get(key_view key) {
        const std::size_t h = state_->hash_of(key);
        auto& s = state_->shard_of(h);
        const auto now = state_->now();
        value_ptr out;
        value_ptr dead;
        {
            std::lock_guard lock(s.mutex);
            if (auto* n = state_->live_locked(s, key, h, now, dead)) {
                ++s.hits;
                out = n->value;
            } else {
                ++s.misses;
            }
        }
        return out;
    }

    /// Calls `f(const Value&)` on the live value of `key` under the shard lock, without touching any
    /// reference count; returns false (f not called) on a miss. Counts and touches like `get`. `f` must
    /// be short and must not call into this cache (the shard lock is held).
    template <class F>
    bool visit(key_view key, F&& f) {
        const std::size_t h = state_->hash_of(key);
        auto& s = state_->shard_of(h);
        const auto now = state_->now();
        value_ptr dead;
        std::lock_guard lock(s.mutex);
        auto* n = state_->live_locked(s, key, h, now, dead);
        if (n == nullptr) {
            ++s.misses;
            return false;
        }
        ++s.hits;
        std::invoke(std::forward<F>(f), *n->value);
        return true;
    }

    /// Clone-on-read: an independent copy of the live value of `key` (Value's copy constructor, which
    /// must be deep), or nullopt. Mutating the copy never changes what the cache or other readers see.
    [[nodiscard]] std::optional<Value> get_clone(key_view key) requires std::copy_constructible<Value> {
        value_ptr p = get(key);
        if (!p) return std::nullopt;
        return std::optional<Value>(std::in_place, *p);
    }

    /// Inserts or replaces `key` (a new TTL starts; the entry becomes most recently used). May evict.
    void put(key_view key, Value value) { put(key, std::make_shared<const Value>(std::move(value))); }

    /// Inserts or replaces `key` with a shared value (not copied). `value` must not be null.
    void put(key_view key, value_ptr value) {
        if (!value) throw std::invalid_argument("ttl_lru_cache::put: null value");
        const std::size_t h = state_->hash_of(key);
        auto& s = state_->shard_of(h);
        const auto now = state_->now();
        bool over = false;
        {
            value_ptr displaced;
            std::lock_guard lock(s.mutex);
            state::overtake_flight_locked(s, key);
            displaced = state_->put_locked(s, key, h, std::move(value), now, over);
        }
        if (over) state_->trim();
    }

    /// Returns the live value of `key` if there is one (a hit); otherwise stores `value` and returns it.
    [[nodiscard]] value_ptr put_if_absent(key_view key, value_ptr value) {
        if (!value) throw std::invalid_argument("ttl_lru_cache::put_if_absent: null value");
        const std::size_t h = state_->hash_of(key);
        auto& s = state_->shard_of(h);
        const auto now = state_->now();
        bool over = false;
        {
            value_ptr displaced;
            value_ptr dead;
            std::lock_guard lock(s.mutex);
            if (auto* n = state_->live_locked(s, key, h, now, dead)) {
                ++s.hits;
                return n->value;
            }
            ++s.misses;
            state::overtake_flight_locked(s, key);
            displaced = s.insert_new(key, h, value, state_->expiry_from(now), now, over);
        }
        if (over) state_->trim();
        return value;
    }

    /// Removes `key`; returns whether a live entry was removed. A load of `key` in flight still answers
    /// its waiters but its result is not stored.
    bool erase(key_view key) {
        const std::size_t h = state_->hash_of(key);
        auto& s = state_->shard_of(h);
        const auto now = state_->now();
        value_ptr dead;
        std::lock_guard lock(s.mutex);
        state::overtake_flight_locked(s, key);
        auto* n = s.find(key, h);
        if (n == nullptr) return false;
        const bool live = now < n->expires;
        dead = s.remove(n);
        return live;
    }

    /// Removes every entry (loads in flight are not stored). Counters are kept.
    void clear() {
        for (std::size_t i = 0; i < state_->shard_count(); ++i) {
            auto& s = state_->shards()[i];
            std::vector<value_ptr> dead;
            std::lock_guard lock(s.mutex);
            dead.reserve(s.size);
            while (s.lru.next != &s.lru) dead.push_back(s.remove(static_cast<typename state::node*>(s.lru.next)));
            for (auto& [k, f] : s.flights) f->store = false;
            s.flights.clear();
        }
    }

    /// Number of stored entries (may include expired entries not yet met).
    [[nodiscard]] std::size_t size() const {
        std::size_t n = 0;
        for (std::size_t i = 0; i < state_->shard_count(); ++i) {
            auto& s = state_->shards()[i];
            std::lock_guard lock(s.mutex);
            n += s.size;
        }
        return n;
    }

    /// Sum of the counters of every shard.
    [[nodiscard]] cache_stats stats() const {
        cache_stats out;
        for (std::size_t i = 0; i < state_->shard_count(); ++i) {
            auto& s = state_->shards()[i];
            std::lock_guard lock(s.mutex);
            out.hits += s.hits;
            out.misses += s.misses;
            out.evictions += s.evictions;
            out.expirations += s.expirations;
            out.inserts += s.inserts;
            out.loads += s.loads;
            out.coalesced += s.coalesced;
            out.load_errors += s.load_errors;
            out.size += s.size;
        }
        return out;
    }

    [[nodiscard]] const ttl_lru_params& params() const noexcept { return state_->params(); }

    /// Returns the live value of `key`, or loads it once for all concurrent callers.
    ///
    /// `loader` is a callable `() -> boost::asio::awaitable<preflight::result<Value>>`, invoked at most
    /// once, on the executor of the caller whose miss started the load; that executor must keep running
    /// until the load ends. Concurrent misses of `key` from any thread join that load. A value is stored
    /// and handed to every waiter; an error (or an exception, rethrown in every waiter) reaches every
    /// waiter and is never stored, so the next call loads again. Each waiter resumes on its own executor.
    ///
    /// Cancellation: terminal, partial and total cancellation of one waiter completes that waiter with
    /// `errc::cancelled` at once; the load itself is never cancelled and still answers the others.
    template <class Loader>
    boost::asio::awaitable<result<value_ptr>> get_or_load(Key key, Loader loader) {
        return get_or_load_if(std::move(key), always_accept{}, std::move(loader));
    }

    /// Like `get_or_load`, but a live entry counts as a hit only when `accept(const Value&, now)` is true
    /// (evaluated under the shard lock; must be short). A rejected entry stays readable with `get` until
    /// the load replaces it (a failed load leaves it in place).
    template <class Accept, class Loader>
    boost::asio::awaitable<result<value_ptr>> get_or_load_if(Key key, Accept accept, Loader loader) {
        namespace asio = boost::asio;
        using channel = detail::load_channel<Value>;
        const key_view kv = key;
        const std::size_t h = state_->hash_of(kv);
        auto& s = state_->shard_of(h);
        auto ex = co_await asio::this_coro::executor;
        const auto now = state_->now();
        std::shared_ptr<detail::flight<Value>> fl;
        std::shared_ptr<channel> ch;
        bool start = false;
        value_ptr hit;
        {
            value_ptr dead;
            std::lock_guard lock(s.mutex);
            auto* n = state_->live_locked(s, kv, h, now, dead);
            if (n != nullptr && accept(std::as_const(*n->value), now)) {
                ++s.hits;
                hit = n->value;
            } else {
                ++s.misses;
                ch = std::make_shared<channel>(ex, 1);
                auto it = s.flights.find(kv);
                if (it == s.flights.end()) {
                    fl = std::make_shared<detail::flight<Value>>();
                    s.flights.emplace(key, fl);
                    ++s.loads;
                    start = true;
                } else {
                    fl = it->second;
                    ++s.coalesced;
                }
                fl->waiters.push_back(ch);
            }
        }
        if (hit) co_return hit;
        if (start) {
            asio::co_spawn(ex, run_load(state_, std::move(key), h, fl, std::move(loader)), [](std::exception_ptr e) {
                // run_load catches the loader's exceptions; anything else is a bug: let it surface.
                if (e) std::rethrow_exception(e);
            });
        }
        auto [ec, out] = co_await ch->async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return make_error_code(errc::cancelled);
        if (out->exception) std::rethrow_exception(out->exception);
        co_return out->value;
    }

private:
    struct always_accept {
        bool operator()(const Value&, clock::time_point) const noexcept { return true; }
    };

    template <class Loader>
    static boost::asio::awaitable<void> run_load(
        std::shared_ptr<state> st, Key key, std::size_t h, std::shared_ptr<detail::flight<Value>> fl, Loader loader
    ) {
        auto out = std::make_shared<detail::load_outcome<Value>>();
        try {
            result<Value> r = co_await loader();
            if (r) {
                out->value = std::make_shared<const Value>(std::move(*r));
            } else {
                out->value = r.error();
            }
        } catch (...) {
            out->exception = std::current_exception();
        }
        const bool ok = !out->exception && out->value.has_value();
        auto& s = st->shard_of(h);
        const auto now = st->now();
        decltype(fl->waiters) waiters;
        bool over = false;
        {
            value_ptr displaced;
            std::lock_guard lock(s.mutex);
            const key_view kv = key;
            auto it = s.flights.find(kv);
            if (it != s.flights.end() && it->second == fl) s.flights.erase(it);
            if (ok && fl->store) {
                displaced = st->put_locked(s, kv, h, *out->value, now, over);
            }
            if (!ok) ++s.load_errors;
            waiters.swap(fl->waiters);
        }
        if (over) st->trim();
        std::shared_ptr<const detail::load_outcome<Value>> shared = std::move(out);
        for (auto& w : waiters) w->try_send(boost::system::error_code{}, shared);
    }

    std::shared_ptr<state> state_;
};

}  // namespace preflight::cache
