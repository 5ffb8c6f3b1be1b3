#include <preflight/limits/memory_admission_store.hpp>

#include <algorithm>
#include <array>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace preflight::limits {
namespace {

// A lease id: 32 hex characters, kept inline (no heap allocation per lease).
using lease_id_text = std::array<char, 32>;

struct lease {
    lease_id_text id;
    clock::time_point expires_at;
};

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct id_hash {
    std::size_t operator()(const lease_id_text& id) const noexcept {
        return std::hash<std::string_view>{}(std::string_view(id.data(), id.size()));
    }
};

std::optional<lease_id_text> parse_id(std::string_view s) {
    if (s.size() != std::tuple_size_v<lease_id_text>) return std::nullopt;
    lease_id_text id;
    std::copy(s.begin(), s.end(), id.begin());
    return id;
}

std::string_view view(const lease_id_text& id) {
    return {id.data(), id.size()};
}

}  // namespace

// Leases by key, and the owning key of every lease id. A key whose last lease was released keeps its (empty)
// entry, so a hot key reuses its node and vector instead of allocating them again per reservation; empty entries
// are dropped by the next sweep, which runs when they outnumber max(sweep_floor, keys / 2): memory stays bounded
// under a flood of distinct keys.
struct memory_admission_store::impl {
    using key_map = std::unordered_map<std::string, std::vector<lease>, string_hash, std::equal_to<>>;

    explicit impl(memory_admission_store_params p) : params{p} {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        rng.seed(seq);
    }

    lease_id_text new_id() {
        static constexpr char hex[] = "0123456789abcdef";
        lease_id_text id;
        for (std::size_t half = 0; half < 2; ++half) {
            std::uint64_t v = rng();
            for (std::size_t i = 0; i < 16; ++i) {
                id[half * 16 + i] = hex[v & 0xF];
                v >>= 4;
            }
        }
        return id;
    }

    // Drops expired leases of one key; returns the number of live ones.
    std::size_t prune(std::vector<lease>& ls, clock::time_point now) {
        auto dead = std::remove_if(ls.begin(), ls.end(), [&](const lease& l) {
            if (l.expires_at > now) return false;
            owner.erase(l.id);
            return true;
        });
        stored -= static_cast<std::size_t>(ls.end() - dead);
        ls.erase(dead, ls.end());
        return ls.size();
    }

    void sweep(clock::time_point now) {
        for (auto it = by_key.begin(); it != by_key.end();) {
            if (prune(it->second, now) == 0) {
                it = by_key.erase(it);
            } else {
                ++it;
            }
        }
        empty_keys = 0;
        last_sweep = std::max(stored, params.sweep_floor);
    }

    [[nodiscard]] bool sweep_due() const noexcept {
        return stored >= 2 * last_sweep || empty_keys > std::max(params.sweep_floor, by_key.size() / 2);
    }

    memory_admission_store_params params;
    mutable std::mutex mu;
    std::mt19937_64 rng;
    key_map by_key;
    std::unordered_map<lease_id_text, key_map::value_type*, id_hash> owner;  // lease id -> its key's entry
    std::size_t stored = 0;
    std::size_t last_sweep = 0;
    std::size_t empty_keys = 0;  // entries of by_key left empty by a release (an upper bound)
};

memory_admission_store::memory_admission_store(const preflight::clock& c, memory_admission_store_params p)
    : clock_{c}, impl_{std::make_unique<impl>(p)} {
    impl_->last_sweep = p.sweep_floor;
}

memory_admission_store::~memory_admission_store() = default;

result<lease_grant> memory_admission_store::reserve_now(
    std::string_view key, std::uint32_t max_slots, std::chrono::milliseconds ttl
) {
    if (max_slots == 0 || ttl.count() <= 0) return errc::bad_input;
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    if (impl_->sweep_due()) impl_->sweep(now);
    auto it = impl_->by_key.find(key);
    if (it == impl_->by_key.end()) {
        it = impl_->by_key.emplace(std::string(key), std::vector<lease>{}).first;
        ++impl_->empty_keys;
    }
    auto& ls = it->second;
    const bool was_empty = ls.empty();
    const std::size_t live = impl_->prune(ls, now);
    lease_grant grant;
    grant.max = max_slots;
    if (live >= max_slots) {
        grant.in_use = static_cast<std::uint32_t>(live);
        if (!was_empty && live == 0) ++impl_->empty_keys;
        return grant;
    }
    lease_id_text id = impl_->new_id();
    while (impl_->owner.contains(id)) id = impl_->new_id();
    impl_->owner.emplace(id, &*it);
    ls.push_back(lease{id, now + ttl});
    if (was_empty && impl_->empty_keys > 0) --impl_->empty_keys;
    ++impl_->stored;
    grant.admitted = true;
    grant.lease_id.assign(view(id));
    grant.in_use = static_cast<std::uint32_t>(live + 1);
    return grant;
}

bool memory_admission_store::release_now(std::string_view lease_id) {
    const auto id = parse_id(lease_id);
    if (!id) return false;
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    auto o = impl_->owner.find(*id);
    if (o == impl_->owner.end()) return false;
    auto& ls = o->second->second;
    bool live = false;
    auto l = std::find_if(ls.begin(), ls.end(), [&](const lease& x) { return x.id == *id; });
    if (l != ls.end()) {
        live = l->expires_at > now;
        ls.erase(l);
        --impl_->stored;
        if (ls.empty()) ++impl_->empty_keys;
    }
    impl_->owner.erase(o);
    return live;
}

bool memory_admission_store::renew_now(std::string_view lease_id, std::chrono::milliseconds ttl) {
    if (ttl.count() <= 0) return false;
    const auto id = parse_id(lease_id);
    if (!id) return false;
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    auto o = impl_->owner.find(*id);
    if (o == impl_->owner.end()) return false;
    for (auto& l : o->second->second) {
        if (l.id == *id) {
            if (l.expires_at <= now) return false;
            l.expires_at = now + ttl;
            return true;
        }
    }
    return false;
}

boost::asio::awaitable<result<lease_grant>> memory_admission_store::reserve(
    std::string key, std::uint32_t max_slots, std::chrono::milliseconds ttl
) {
    co_return reserve_now(key, max_slots, ttl);
}

boost::asio::awaitable<result<bool>> memory_admission_store::release(std::string lease_id) {
    co_return release_now(lease_id);
}

boost::asio::awaitable<result<bool>> memory_admission_store::renew(
    std::string lease_id, std::chrono::milliseconds ttl
) {
    if (ttl.count() <= 0) co_return errc::bad_input;
    co_return renew_now(lease_id, ttl);
}

std::size_t memory_admission_store::in_use(std::string_view key) const {
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    auto it = impl_->by_key.find(key);
    if (it == impl_->by_key.end()) return 0;
    return static_cast<std::size_t>(std::count_if(it->second.begin(), it->second.end(), [&](const lease& l) {
        return l.expires_at > now;
    }));
}

std::size_t memory_admission_store::keys() const {
    std::lock_guard g{impl_->mu};
    return impl_->by_key.size();
}

std::size_t memory_admission_store::stored_leases() const {
    std::lock_guard g{impl_->mu};
    return impl_->stored;
}

}  // namespace preflight::limits
