#include <preflight/server/lease_registry.hpp>

#include <stdexcept>
#include <utility>
#include <vector>

namespace preflight::server {

lease_registry::lease_registry(std::size_t capacity, std::chrono::milliseconds ttl, const preflight::clock& c)
    : capacity_(capacity), ttl_(ttl), clock_(&c) {
    if (capacity == 0) throw std::invalid_argument("lease_registry: capacity must be > 0");
    if (ttl <= std::chrono::milliseconds::zero()) throw std::invalid_argument("lease_registry: ttl must be > 0");
}

void lease_registry::purge_locked(preflight::clock::time_point now) {
    while (!order_.empty() && order_.front().first <= now) {
        auto it = entries_.find(order_.front().second);
        if (it != entries_.end() && it->second.expires == order_.front().first) {
            if (it->second.lease.held()) --held_;
            // Dropping the lease starts its release: the store has expired it by now, so that is a no-op there.
            entries_.erase(it);
        }
        order_.pop_front();
    }
}

bool lease_registry::add(gates::lease& l) {
    if (!l.held() || l.id().empty()) return false;
    const auto now = clock_->now();
    std::lock_guard lock(mutex_);
    purge_locked(now);
    if (entries_.size() >= capacity_ || entries_.contains(l.id())) return false;
    const auto expires = now + ttl_;
    std::string id = l.id();
    order_.emplace_back(expires, id);
    entries_.emplace(std::move(id), entry{std::move(l), expires});
    ++held_;
    return true;
}

boost::asio::awaitable<release_status> lease_registry::release(std::string id, boost::system::error_code* ec) {
    gates::lease taken;
    {
        const auto now = clock_->now();
        std::lock_guard lock(mutex_);
        purge_locked(now);
        auto it = entries_.find(id);
        if (it == entries_.end()) co_return release_status::unknown;
        if (!it->second.lease.held()) co_return release_status::already_released;
        taken = std::move(it->second.lease);  // the entry stays as a tombstone until its expiry
        --held_;
    }
    result<void> r = co_await taken.release();
    if (!r) {
        if (ec != nullptr) *ec = r.error();
        co_return release_status::failed;
    }
    co_return release_status::released;
}

std::size_t lease_registry::held() const {
    std::lock_guard lock(mutex_);
    return held_;
}

std::size_t lease_registry::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace preflight::server
