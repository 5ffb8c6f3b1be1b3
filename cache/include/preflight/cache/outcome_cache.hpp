#pragma once

#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace preflight::cache {

/// Options of an `outcome_cache`.
struct outcome_cache_params {
    clock::duration ttl = std::chrono::seconds{60};  ///< how long a real outcome is served as fresh, > 0
    /// After `ttl`, while the provider fails, the last real outcome is still served (flagged stale) for
    /// this long. Zero disables it: an error is then returned as is.
    clock::duration stale_if_error = clock::duration::zero();
    std::size_t capacity = 10000;
    std::size_t shards = 16;
};

/// An outcome served by `outcome_cache::get_or_check`.
template <class Outcome>
struct served_outcome {
    std::shared_ptr<const Outcome> outcome;  ///< never null
    bool stale = false;                      ///< true: the provider failed and this is the last real outcome
    clock::duration age{};                   ///< time since the provider produced `outcome`
    boost::system::error_code error;         ///< when stale: the provider's error that made it stale
};

/// Per-key cache of the outcomes of a slow provider check (e.g. a billing balance gate, per org).
///
/// Every real outcome is cached for `ttl` (60 s), whatever it says (allowed and blocked alike); errors
/// are never cached. Concurrent checks of one key are coalesced into one provider call. With
/// `stale_if_error`, a failing provider is answered with the last real outcome, flagged stale, for a
/// bounded time after it stopped being fresh.
///
/// `Outcome` is any movable type the gate defines. Thread safety: all members may be called
/// concurrently from any thread. Lifetimes: `clk` must outlive the cache and every check it started.
template <class Outcome>
class outcome_cache {
public:
    /// Throws `std::invalid_argument` for a zero capacity, a non-positive TTL or a negative stale window.
    explicit outcome_cache(outcome_cache_params params = {}, const clock& clk = clock::steady())
        : params_(validated(params)), clock_(&clk), cache_(lru_params(params_), clk) {}

    /// The fresh outcome of `key`, or the outcome of `check()` (a callable returning
    /// `boost::asio::awaitable<preflight::result<Outcome>>`) run once for all concurrent callers of `key`.
    /// On a check error: the last real outcome flagged stale if it is within `ttl + stale_if_error`,
    /// otherwise the error. An exception thrown by `check` reaches every waiter and is not cached.
    ///
    /// Cancellation: a cancelled caller completes with `errc::cancelled`; the check itself goes on for the
    /// others and its outcome is cached. `check` runs on the executor of the caller that started it.
    template <class Check>
    boost::asio::awaitable<result<served_outcome<Outcome>>> get_or_check(std::string key, Check check) {
        const auto ttl = params_.ttl;
        auto fresh = [ttl](const stamped& s, clock::time_point now) { return now - s.at < ttl; };
        const clock* clk = clock_;
        auto load = [clk, check = std::move(check)]() mutable { return run_check(std::move(check), clk); };
        auto lookup_key = key;
        auto r = co_await cache_.get_or_load_if(std::move(key), fresh, std::move(load));
        const auto now = clock_->now();
        if (r) co_return serve(*r, now, false, {});
        if (r.error() == make_error_code(errc::cancelled) || params_.stale_if_error == clock::duration::zero()) {
            co_return r.error();
        }
        auto last = cache_.get(lookup_key);  // kept up to ttl + stale_if_error after the check
        if (!last) co_return r.error();
        co_return serve(last, now, true, r.error());
    }

    /// The fresh outcome of `key` without calling the provider, or null.
    [[nodiscard]] std::shared_ptr<const Outcome> peek(std::string_view key) {
        auto p = cache_.get(key);
        if (!p || clock_->now() - p->at >= params_.ttl) return nullptr;
        return {p, &p->outcome};
    }

    /// Records a real outcome for `key` obtained elsewhere (fresh from now).
    void put(std::string_view key, Outcome outcome) { cache_.put(key, stamped{std::move(outcome), clock_->now()}); }

    /// Forgets `key` (a check in flight still answers its callers but is not stored).
    bool erase(std::string_view key) { return cache_.erase(key); }

    [[nodiscard]] cache_stats stats() const { return cache_.stats(); }
    [[nodiscard]] const outcome_cache_params& params() const noexcept { return params_; }

private:
    struct stamped {
        Outcome outcome;
        clock::time_point at;  ///< when the provider produced it
    };

    static outcome_cache_params validated(const outcome_cache_params& p) {
        if (p.stale_if_error < clock::duration::zero()) {
            throw std::invalid_argument("outcome_cache: stale_if_error must be >= 0");
        }
        return p;
    }
    static ttl_lru_params lru_params(const outcome_cache_params& p) {
        ttl_lru_params out;
        out.capacity = p.capacity;
        out.ttl = p.ttl > clock::duration::zero() ? p.ttl + p.stale_if_error : p.ttl;  // ttl <= 0 throws there
        out.mode = ttl_mode::absolute;
        out.shards = p.shards;
        return out;
    }

    template <class Check>
    static boost::asio::awaitable<result<stamped>> run_check(Check check, const clock* clk) {
        result<Outcome> r = co_await check();
        if (!r) co_return r.error();
        co_return stamped{std::move(*r), clk->now()};
    }

    static served_outcome<Outcome> serve(
        const std::shared_ptr<const stamped>& s, clock::time_point now, bool stale, boost::system::error_code ec
    ) {
        served_outcome<Outcome> out;
        out.outcome = std::shared_ptr<const Outcome>(s, &s->outcome);
        out.stale = stale;
        out.age = now - s->at;
        out.error = ec;
        return out;
    }

    outcome_cache_params params_;
    const clock* clock_;
    ttl_lru_cache<std::string, stamped> cache_;
};

}  // namespace preflight::cache
