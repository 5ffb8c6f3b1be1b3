#include <preflight/server/lease_registry.hpp>

#include <stdexcept>
#include <utility>

namespace preflight::server {

lease_registry::lease_registry(
    std::size_t capacity, std::chrono::milliseconds ttl, const preflight::clock& c, std::size_t max_released
)
    : capacity_(capacity), max_released_(max_released), ttl_(ttl), clock_(&c) {
    if (capacity == 0) throw std::invalid_argument("lease_registry: capacity must be > 0");
    if (ttl <= std::chrono::milliseconds::zero()) throw std::invalid_argument("lease_registry: ttl must be > 0");
}

void lease_registry::purge_locked(preflight::clock::time_point now) {
    // Dropping an expired lease starts its release: the store has expired it by now, so that is a no-op there.
    for (auto* order : {&held_order_, &tomb_order_}) {
        while (!order->empty()) {
            auto it = entries_.find(order->front());
            if (it != entries_.end() && it->second.expires > now) break;
            if (it != entries_.end()) entries_.erase(it);
            order->pop_front();
        }
    }
}

bool lease_registry::add(gates::lease& l) {
    if (!l.held() || l.id().empty()) return false;
    const auto now = clock_->now();
    std::lock_guard lock(mutex_);
    purge_locked(now);
    if (held_order_.size() >= capacity_ || entries_.contains(l.id())) return false;
    held_order_.push_back(l.id());
    std::string id = l.id();
    entries_.emplace(std::move(id), entry{std::move(l), now + ttl_, std::prev(held_order_.end()), false});
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
        if (it->second.tombstone) co_return release_status::already_released;
        taken = std::move(it->second.lease);
        held_order_.erase(it->second.pos);
        if (max_released_ == 0) {
            entries_.erase(it);
        } else {
            if (tomb_order_.size() >= max_released_) {  // the oldest tombstone makes room
                entries_.erase(tomb_order_.front());
                tomb_order_.pop_front();
            }
            tomb_order_.push_back(id);
            it->second.pos = std::prev(tomb_order_.end());
            it->second.tombstone = true;
        }
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
    return held_order_.size();
}

std::size_t lease_registry::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace preflight::server
