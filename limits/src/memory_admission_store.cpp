#include <preflight/limits/memory_admission_store.hpp>

#include <algorithm>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace preflight::limits {
namespace {

struct lease {
    std::string id;
    clock::time_point expires_at;
};

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct memory_admission_store::impl {
    explicit impl(memory_admission_store_params p) : params{p} {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        rng.seed(seq);
    }

    std::string new_id() {
        static constexpr char hex[] = "0123456789abcdef";
        std::string id(32, '0');
        for (int half = 0; half < 2; ++half) {
            std::uint64_t v = rng();
            for (int i = 0; i < 16; ++i) {
                id[static_cast<std::size_t>(half * 16 + i)] = hex[v & 0xF];
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
        last_sweep = std::max(stored, params.sweep_floor);
    }

    memory_admission_store_params params;
    mutable std::mutex mu;
    std::mt19937_64 rng;
    std::unordered_map<std::string, std::vector<lease>, string_hash, std::equal_to<>> by_key;
    std::unordered_map<std::string, std::string, string_hash, std::equal_to<>> owner;  // lease id -> key
    std::size_t stored = 0;
    std::size_t last_sweep = 0;
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
    if (impl_->stored >= 2 * impl_->last_sweep) impl_->sweep(now);
    auto it = impl_->by_key.find(key);
    if (it == impl_->by_key.end()) it = impl_->by_key.emplace(std::string(key), std::vector<lease>{}).first;
    const std::size_t live = impl_->prune(it->second, now);
    lease_grant grant;
    grant.max = max_slots;
    if (live >= max_slots) {
        grant.in_use = static_cast<std::uint32_t>(live);
        if (live == 0) impl_->by_key.erase(it);
        return grant;
    }
    std::string id = impl_->new_id();
    while (impl_->owner.contains(id)) id = impl_->new_id();
    impl_->owner.emplace(id, std::string(key));
    it->second.push_back(lease{id, now + ttl});
    ++impl_->stored;
    grant.admitted = true;
    grant.lease_id = std::move(id);
    grant.in_use = static_cast<std::uint32_t>(live + 1);
    return grant;
}

bool memory_admission_store::release_now(std::string_view lease_id) {
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    auto o = impl_->owner.find(lease_id);
    if (o == impl_->owner.end()) return false;
    auto k = impl_->by_key.find(o->second);
    bool live = false;
    if (k != impl_->by_key.end()) {
        auto& ls = k->second;
        auto l = std::find_if(ls.begin(), ls.end(), [&](const lease& x) { return x.id == lease_id; });
        if (l != ls.end()) {
            live = l->expires_at > now;
            ls.erase(l);
            --impl_->stored;
        }
        if (ls.empty()) impl_->by_key.erase(k);
    }
    impl_->owner.erase(o);
    return live;
}

bool memory_admission_store::renew_now(std::string_view lease_id, std::chrono::milliseconds ttl) {
    if (ttl.count() <= 0) return false;
    const auto now = clock_.now();
    std::lock_guard g{impl_->mu};
    auto o = impl_->owner.find(lease_id);
    if (o == impl_->owner.end()) return false;
    auto k = impl_->by_key.find(o->second);
    if (k == impl_->by_key.end()) return false;
    for (auto& l : k->second) {
        if (l.id == lease_id) {
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

std::size_t memory_admission_store::stored_leases() const {
    std::lock_guard g{impl_->mu};
    return impl_->stored;
}

}  // namespace preflight::limits
