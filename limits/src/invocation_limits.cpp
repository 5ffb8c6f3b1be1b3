#include "invocation_check.hpp"
#include <preflight/limits/invocation_limits.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace preflight::limits {

namespace asio = boost::asio;

boost::json::value to_json(const trip_record& t) {
    boost::json::object o{
        {"kind", to_string(t.kind)},
        {"limit", t.limit},
        {"used", t.used},
        {"max", t.max},
        {"subject", t.subject},
        {"hook", t.hook},
        {"request_id", t.request_id},
        {"profile", t.profile},
    };
    if (t.kind == trip_kind::circuit_open) o["retry_after_ms"] = static_cast<std::int64_t>(t.retry_after.count());
    return o;
}

namespace detail {

std::optional<limits_problem> find_problem(const invocation_limits_config& limits) {
    // The wall clock is compared with nanosecond durations: it must fit in them.
    constexpr auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::duration::max()).count();
    if (limits.wall_clock.count() <= 0)
        return limits_problem{"wall_clock_ms", std::to_string(limits.wall_clock.count()), "must be >= 1"};
    if (limits.wall_clock.count() > max_ms) {
        return limits_problem{
            "wall_clock_ms", std::to_string(limits.wall_clock.count()), "must be <= " + std::to_string(max_ms)};
    }
    if (limits.host_concurrency == 0) return limits_problem{"host_concurrency", "0", "must be >= 1"};
    for (std::size_t i = 0; i < limits.counters.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (limits.counters[i].name == limits.counters[j].name)
                return limits_problem{"counters", "'" + limits.counters[i].name + "'", "is duplicated"};
        }
    }
    return std::nullopt;
}

}  // namespace detail

host_call_scope::~host_call_scope() {
    if (guard_ != nullptr) guard_->end_host_call();
}

invocation_guard::invocation_guard(
    invocation_limits_config limits, invocation_context ctx, circuit_breaker* breaker, const clock& clk
)
    : limits_{std::move(limits)}, ctx_{std::move(ctx)}, breaker_{breaker}, clock_{clk}, started_{clk.now()} {
    if (auto p = detail::find_problem(limits_)) {
        if (p->field == "counters") throw std::invalid_argument("invocation counter " + p->value + " " + p->reason);
        throw std::invalid_argument("invocation." + p->field + " " + p->reason + ", got " + p->value);
    }
    for (const auto& c : limits_.counters) counters_.push_back({c.name, c.max, 0});
}

invocation_guard::~invocation_guard() {
    std::deque<waiter> left;
    {
        std::lock_guard g{mu_};
        left.swap(waiters_);
    }
    for (auto& w : left) complete(std::move(w), asio::error::operation_aborted);
}

invocation_guard::counter_state& invocation_guard::counter_locked(std::string_view name) {
    for (auto& s : counters_) {
        if (s.name == name) return s;
    }
    throw std::invalid_argument("invocation counter '" + std::string(name) + "' is not configured");
}

clock::duration invocation_guard::elapsed() const noexcept {
    return clock_.now() - started_;
}

bool invocation_guard::trip_wall_clock(clock::duration elapsed) {
    return record_trip(
        trip_kind::wall_clock,
        limit_name(trip_kind::wall_clock),
        static_cast<std::uint64_t>(std::chrono::floor<std::chrono::milliseconds>(elapsed).count()),
        static_cast<std::uint64_t>(limits_.wall_clock.count()),
        std::chrono::milliseconds{0}
    );
}

result<void> invocation_guard::check_wall_clock() {
    const auto e = elapsed();
    if (e >= limits_.wall_clock) {
        trip_wall_clock(e);
        return errc::budget_exhausted;
    }
    if (tripped()) return errc::budget_exhausted;
    return {};
}

result<void> invocation_guard::charge(std::string_view name, std::uint64_t amount) {
    const auto e = elapsed();
    std::uint64_t attempted = 0;
    std::uint64_t max = 0;
    {
        std::lock_guard g{mu_};
        counter_state& c = counter_locked(name);
        if (trip_) return errc::budget_exhausted;
        if (e < limits_.wall_clock) {
            if (amount <= c.max && c.used <= c.max - amount) {
                c.used += amount;
                return {};
            }
            attempted = c.used + amount < c.used ? UINT64_MAX : c.used + amount;
            max = c.max;
        }
    }
    if (e >= limits_.wall_clock) {
        trip_wall_clock(e);
    } else {
        record_trip(trip_kind_of(name), name, attempted, max, std::chrono::milliseconds{0});
    }
    return errc::budget_exhausted;
}

result<void> invocation_guard::set_used(std::string_view name, std::uint64_t value) {
    const auto e = elapsed();
    std::uint64_t max = 0;
    {
        std::lock_guard g{mu_};
        counter_state& c = counter_locked(name);
        if (trip_) return errc::budget_exhausted;
        if (e < limits_.wall_clock) {
            if (value <= c.max) {
                c.used = value;
                return {};
            }
            max = c.max;
        }
    }
    if (e >= limits_.wall_clock) {
        trip_wall_clock(e);
    } else {
        record_trip(trip_kind_of(name), name, value, max, std::chrono::milliseconds{0});
    }
    return errc::budget_exhausted;
}

void invocation_guard::complete(waiter w, boost::system::error_code ec) {
    // Completed on the waiter's executor (the coroutine's, taken when it queued), never inside the caller of
    // `complete` (a scope's destructor, a trip on another thread). The cancellation slot is cleared there too, where
    // the waiter's cancellation is emitted.
    asio::post(w.executor, [h = std::move(w.handler), ec]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(ec);
    });
}

void invocation_guard::end_host_call() {
    std::optional<waiter> next;
    {
        std::lock_guard g{mu_};
        --in_flight_;
        if (!trip_ && !waiters_.empty() && in_flight_ < limits_.host_concurrency) {
            next.emplace(std::move(waiters_.front()));
            waiters_.pop_front();
            ++in_flight_;  // handed over: the waiter owns this slot from now on
        }
    }
    if (next) complete(std::move(*next), {});
}

struct guard_access {
    static void set_cancel(invocation_guard& g, std::function<void()> f) {
        std::lock_guard l{g.mu_};
        g.cancel_ = std::move(f);
    }

    // Removes a queued host call and completes it with operation_aborted; a no-op when it was granted meanwhile.
    static void cancel_waiter(invocation_guard& g, std::uint64_t id) {
        std::optional<invocation_guard::waiter> w;
        {
            std::lock_guard l{g.mu_};
            auto it = std::find_if(g.waiters_.begin(), g.waiters_.end(), [id](const auto& x) { return x.id == id; });
            if (it == g.waiters_.end()) return;
            w.emplace(std::move(*it));
            g.waiters_.erase(it);
        }
        invocation_guard::complete(std::move(*w), asio::error::operation_aborted);
    }

    // Queues a host call (or grants it at once when a slot is free and nobody waits). The handler is type-erased
    // first: any_completion_handler installs its own cancellation state in the caller's slot, so the waiter's
    // canceller goes into the slot of the erased handler (which forwards every type of cancellation).
    static void initiate_host_call(
        invocation_guard& g,
        asio::any_completion_handler<void(boost::system::error_code)> handler,
        const asio::any_io_executor& ex
    ) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        boost::system::error_code ec;
        {
            std::lock_guard l{g.mu_};
            if (g.trip_) {
                ec = errc::budget_exhausted;
            } else if (g.in_flight_ < g.limits_.host_concurrency && g.waiters_.empty()) {
                ++g.in_flight_;
            } else {
                const std::uint64_t id = g.next_waiter_++;
                // Every type: leaving the queue undoes everything the wait did.
                if (slot.is_connected()) slot.template emplace<waiter_cancel>(&g, id);
                g.waiters_.push_back({id, ex, std::move(handler)});
                return;
            }
        }
        invocation_guard::complete({0, ex, std::move(handler)}, ec);
    }

    static void refuse(invocation_guard& g, const circuit_refusal& r) {
        const std::uint64_t threshold = g.breaker_->config().trips;
        g.record_trip(
            trip_kind::circuit_open, limit_name(trip_kind::circuit_open), threshold, threshold, r.retry_after
        );
    }

    struct waiter_cancel {
        invocation_guard* guard;
        std::uint64_t id;
        void operator()(asio::cancellation_type t) const {
            constexpr auto honoured =
                asio::cancellation_type::terminal | asio::cancellation_type::partial | asio::cancellation_type::total;
            if ((t & honoured) != asio::cancellation_type::none) cancel_waiter(*guard, id);
        }
    };
};

asio::awaitable<result<host_call_scope>> invocation_guard::enter_host_call() {
    if (auto r = check_wall_clock(); !r) co_return r.error();
    bool granted = false;
    bool is_tripped = false;
    {
        std::lock_guard g{mu_};
        is_tripped = trip_.has_value();
        if (!is_tripped && in_flight_ < limits_.host_concurrency && waiters_.empty()) {
            ++in_flight_;
            granted = true;
        }
    }
    if (is_tripped) co_return errc::budget_exhausted;
    if (granted) co_return host_call_scope{this};
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto token = asio::as_tuple(asio::use_awaitable);
    auto [ec] = co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(
        [this, ex](auto handler) {
            guard_access::initiate_host_call(
                *this, asio::any_completion_handler<void(boost::system::error_code)>(std::move(handler)), ex
            );
        },
        token
    );
    if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
    if (ec) co_return ec;
    co_return host_call_scope{this};
}

bool invocation_guard::trip(std::string_view limit, std::uint64_t used, std::uint64_t max) {
    return record_trip(trip_kind_of(limit), limit, used, max, std::chrono::milliseconds{0});
}

bool invocation_guard::trip(trip_kind kind, std::uint64_t used, std::uint64_t max) {
    return record_trip(kind, limit_name(kind), used, max, std::chrono::milliseconds{0});
}

bool invocation_guard::record_trip(
    trip_kind kind, std::string_view limit, std::uint64_t used, std::uint64_t max, std::chrono::milliseconds retry_after
) {
    std::function<void()> cancel;
    std::function<void(const trip_record&)> notify;
    std::deque<waiter> woken;
    trip_record record;
    {
        std::lock_guard g{mu_};
        if (trip_) return false;
        trip_ = trip_record{
            kind, std::string(limit), used, max, ctx_.subject, ctx_.hook, ctx_.request_id, ctx_.profile, retry_after};
        record = *trip_;
        cancel = cancel_;
        notify = on_trip;
        woken.swap(waiters_);
    }
    for (auto& w : woken) complete(std::move(w), errc::budget_exhausted);
    if (breaker_ != nullptr && kind != trip_kind::circuit_open) breaker_->record_trip(kind);
    if (notify) notify(record);
    if (cancel) cancel();
    return true;
}

bool invocation_guard::tripped() const {
    std::lock_guard g{mu_};
    return trip_.has_value();
}

std::optional<trip_record> invocation_guard::trip_info() const {
    std::lock_guard g{mu_};
    return trip_;
}

std::uint64_t invocation_guard::used(std::string_view name) const {
    std::lock_guard g{mu_};
    for (const auto& s : counters_) {
        if (s.name == name) return s.used;
    }
    return 0;
}

std::uint32_t invocation_guard::host_calls_in_flight() const {
    std::lock_guard g{mu_};
    return in_flight_;
}

std::size_t invocation_guard::host_calls_waiting() const {
    std::lock_guard g{mu_};
    return waiters_.size();
}

namespace {

// Runs `body` until it finishes or a limit trips; on a trip the body is cancelled. Rethrows the body's exception
// only when nothing tripped. An open circuit breaker or a guard that tripped already: the body does not run.
asio::awaitable<void> run_guarded(invocation_guard& g, std::function<asio::awaitable<void>()> body) {
    using namespace asio::experimental::awaitable_operators;
    if (auto* b = g.breaker()) {
        if (auto refusal = b->try_admit()) {
            guard_access::refuse(g, *refusal);
            co_return;
        }
    }
    if (!g.check_wall_clock()) co_return;
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex);
    // A trip (from any thread) moves the timer's expiry to the past: a pending wait ends at once and a wait that
    // has not started yet completes immediately, so the watcher below always finishes and `||` cancels the body.
    guard_access::set_cancel(g, [timer, ex] {
        asio::post(ex, [timer] { timer->expires_at(asio::steady_timer::time_point::min()); });
    });
    // Sleeps until the wall clock would run out, then re-reads the injected clock: the real timer only says when to
    // look, the injected clock decides (under a manual clock nothing trips until the test moves it).
    auto watcher = [&g, timer]() -> asio::awaitable<void> {
        for (;;) {
            const auto left = g.limits().wall_clock - g.elapsed();
            if (left <= clock::duration::zero()) {
                (void)g.check_wall_clock();
                co_return;
            }
            timer->expires_after(std::max<clock::duration>(left, std::chrono::milliseconds{1}));
            // After re-arming: a trip recorded before this point moved nothing (its post may have run already).
            if (g.tripped()) co_return;
            auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
            // operation_aborted without a trip: `||` cancelled the wait because the body finished.
            if (ec || g.tripped()) co_return;
        }
    };
    // `||` waits for the first operand that completes *successfully*, so the body must not end with an exception:
    // it is caught here and rethrown below.
    std::exception_ptr failure;
    auto shielded = [&failure, &body]() -> asio::awaitable<void> {
        try {
            co_await body();
        } catch (...) {
            failure = std::current_exception();
        }
    };
    try {
        co_await (shielded() || watcher());
    } catch (...) {
        if (!failure) failure = std::current_exception();
    }
    guard_access::set_cancel(g, {});
    if (failure && !g.tripped()) std::rethrow_exception(failure);
}

}  // namespace

asio::awaitable<filter_outcome> run_filter(
    invocation_guard& guard,
    boost::json::value input,
    std::function<asio::awaitable<boost::json::value>(boost::json::value)> body
) {
    boost::json::value out;
    co_await run_guarded(guard, [&]() -> asio::awaitable<void> { out = co_await body(input); });
    filter_outcome r;
    r.trip = guard.trip_info();
    if (r.trip) {
        r.neutral = true;
        r.value = std::move(input);
    } else {
        r.value = std::move(out);
    }
    co_return r;
}

asio::awaitable<action_outcome> run_action(invocation_guard& guard, std::function<asio::awaitable<void>()> body) {
    co_await run_guarded(guard, std::move(body));
    action_outcome r;
    r.trip = guard.trip_info();
    r.neutral = r.trip.has_value();
    r.success = true;
    co_return r;
}

}  // namespace preflight::limits
