#include <preflight/limits/invocation_limits.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>

#include <exception>
#include <stdexcept>

namespace preflight::limits {

namespace asio = boost::asio;

boost::json::value to_json(const trip_record& t) {
    return boost::json::object{
        {"limit", t.limit},
        {"used", t.used},
        {"max", t.max},
        {"subject", t.subject},
        {"hook", t.hook},
        {"request_id", t.request_id},
    };
}

host_call_scope::~host_call_scope() {
    if (guard_ == nullptr) return;
    std::lock_guard g{guard_->mu_};
    --guard_->in_flight_;
}

invocation_guard::invocation_guard(invocation_limits_config limits, invocation_context ctx)
    : limits_{std::move(limits)}, ctx_{std::move(ctx)} {
    if (limits_.deadline.count() <= 0) {
        throw std::invalid_argument(
            "invocation.deadline_ms must be > 0, got " + std::to_string(limits_.deadline.count())
        );
    }
    if (limits_.host_concurrency == 0) throw std::invalid_argument("invocation.host_concurrency must be >= 1, got 0");
    for (const auto& c : limits_.counters) {
        for (const auto& existing : counters_) {
            if (existing.name == c.name)
                throw std::invalid_argument("invocation counter '" + c.name + "' is duplicated");
        }
        counters_.push_back({c.name, c.max, 0});
    }
}

result<void> invocation_guard::charge(std::string_view name, std::uint64_t amount) {
    std::uint64_t attempted = 0;
    std::uint64_t max = 0;
    {
        std::lock_guard g{mu_};
        counter_state* c = nullptr;
        for (auto& s : counters_) {
            if (s.name == name) c = &s;
        }
        if (c == nullptr)
            throw std::invalid_argument("invocation counter '" + std::string(name) + "' is not configured");
        if (trip_) return errc::budget_exhausted;
        if (amount <= c->max && c->used <= c->max - amount) {
            c->used += amount;
            return {};
        }
        attempted = c->used + amount < c->used ? UINT64_MAX : c->used + amount;
        max = c->max;
    }
    trip(name, attempted, max);
    return errc::budget_exhausted;
}

result<host_call_scope> invocation_guard::enter_host_call() {
    std::uint32_t attempted = 0;
    {
        std::lock_guard g{mu_};
        if (trip_) return errc::budget_exhausted;
        if (in_flight_ < limits_.host_concurrency) {
            ++in_flight_;
            return host_call_scope{this};
        }
        attempted = in_flight_ + 1;
    }
    trip("host_concurrency", attempted, limits_.host_concurrency);
    return errc::budget_exhausted;
}

bool invocation_guard::trip(std::string_view limit, std::uint64_t used, std::uint64_t max) {
    std::function<void()> cancel;
    std::function<void(const trip_record&)> notify;
    trip_record record;
    {
        std::lock_guard g{mu_};
        if (trip_) return false;
        trip_ = trip_record{std::string(limit), used, max, ctx_.subject, ctx_.hook, ctx_.request_id};
        record = *trip_;
        cancel = cancel_;
        notify = on_trip;
    }
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

struct guard_access {
    static void set_cancel(invocation_guard& g, std::function<void()> f) {
        std::lock_guard l{g.mu_};
        g.cancel_ = std::move(f);
    }
};

namespace {

// Runs `body` until it finishes or a limit trips; on a trip the body is cancelled. Rethrows the body's exception
// only when nothing tripped.
asio::awaitable<void> run_guarded(invocation_guard& g, std::function<asio::awaitable<void>()> body) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex, g.limits().deadline);
    const auto started = std::chrono::steady_clock::now();
    // A trip (from any thread) moves the timer's expiry to the past: a pending wait ends at once and a wait that
    // has not started yet completes immediately, so the waiter below always finishes and `||` cancels the body.
    guard_access::set_cancel(g, [timer, ex] {
        asio::post(ex, [timer] { timer->expires_at(asio::steady_timer::time_point::min()); });
    });
    auto waiter = [&g, timer, started]() -> asio::awaitable<void> {
        if (g.tripped()) co_return;
        auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        // operation_aborted without a trip: `||` cancelled the wait because the body finished.
        if (ec || g.tripped()) co_return;
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        g.trip(
            "deadline",
            static_cast<std::uint64_t>(elapsed.count()),
            static_cast<std::uint64_t>(g.limits().deadline.count())
        );
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
        co_await (shielded() || waiter());
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
