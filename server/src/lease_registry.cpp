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

void lease_registry::order_list::push_back(entry* e) noexcept {
    e->prev = tail;
    e->next = nullptr;
    if (tail != nullptr) {
        tail->next = e;
    } else {
        head = e;
    }
    tail = e;
    ++size;
}

void lease_registry::order_list::erase(entry* e) noexcept {
    (e->prev != nullptr ? e->prev->next : head) = e->next;
    (e->next != nullptr ? e->next->prev : tail) = e->prev;
    e->prev = e->next = nullptr;
    --size;
}

void lease_registry::erase_locked(order_list& order, entry* e) {
    order.erase(e);
    auto it = entries_.find(*e->id);
    entries_.erase(it);  // drops the lease (an expired one starts its harmless release)
}

void lease_registry::purge_locked(preflight::clock::time_point now) {
    // Dropping an expired lease starts its release: the store has expired it by now, so that is a no-op there.
    for (auto* order : {&held_order_, &tomb_order_}) {
        while (order->head != nullptr && order->head->expires <= now) erase_locked(*order, order->head);
    }
}

bool lease_registry::add(gates::lease& l) {
    if (!l.held() || l.id().empty()) return false;
    const auto now = clock_->now();
    std::lock_guard lock(mutex_);
    purge_locked(now);
    if (held_order_.size >= capacity_) return false;
    auto [it, inserted] = entries_.try_emplace(l.id());
    if (!inserted) return false;
    entry& e = it->second;
    e.lease = std::move(l);
    e.expires = now + ttl_;
    e.id = &it->first;
    held_order_.push_back(&e);
    return true;
}

boost::asio::awaitable<release_status> lease_registry::release(
    std::string id, boost::system::error_code* ec, std::uint64_t requests, std::uint64_t tokens
) {
    gates::lease taken;
    {
        const auto now = clock_->now();
        std::lock_guard lock(mutex_);
        purge_locked(now);
        auto it = entries_.find(id);
        if (it == entries_.end()) co_return release_status::unknown;
        entry& e = it->second;
        if (e.tombstone) co_return release_status::already_released;
        taken = std::move(e.lease);
        held_order_.erase(&e);
        if (max_released_ == 0) {
            entries_.erase(it);
        } else {
            if (tomb_order_.size >= max_released_) erase_locked(tomb_order_, tomb_order_.head);  // the oldest goes
            e.tombstone = true;
            tomb_order_.push_back(&e);
        }
    }
    result<void> r = co_await taken.release(requests, tokens);
    if (!r) {
        if (ec != nullptr) *ec = r.error();
        co_return release_status::failed;
    }
    co_return release_status::released;
}

boost::asio::awaitable<renew_status> lease_registry::renew(std::string id, boost::system::error_code* ec) {
    gates::renew_function renew;
    {
        std::lock_guard lock(mutex_);
        purge_locked(clock_->now());
        auto it = entries_.find(id);
        if (it == entries_.end()) co_return renew_status::unknown;
        if (it->second.tombstone) co_return renew_status::released;
        renew = it->second.lease.renewer();
    }
    if (!renew) {
        if (ec != nullptr) *ec = make_error_code(errc::bad_input);
        co_return renew_status::failed;
    }
    result<bool> r = co_await renew();  // not under the lock: the entry may be released meanwhile
    if (!r) {
        if (ec != nullptr) *ec = r.error();
        co_return renew_status::failed;
    }
    gates::lease dropped;  // destroyed after the lock is let go
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) co_return renew_status::unknown;
    entry& e = it->second;
    if (e.tombstone) co_return renew_status::released;
    if (!*r) {
        dropped = std::move(e.lease);
        held_order_.erase(&e);
        entries_.erase(it);
        co_return renew_status::expired;
    }
    e.expires = clock_->now() + ttl_;  // the latest expiry of all: to the back of the order
    held_order_.erase(&e);
    held_order_.push_back(&e);
    co_return renew_status::renewed;
}

std::size_t lease_registry::held() const {
    std::lock_guard lock(mutex_);
    return held_order_.size;
}

std::size_t lease_registry::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace preflight::server
