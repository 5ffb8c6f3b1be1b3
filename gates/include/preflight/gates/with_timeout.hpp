#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

namespace preflight::gates {
namespace detail {

/// What one `with_timeout` call shares with its timer's handler, which may run after the call returned.
struct timeout_race {
    explicit timeout_race(const boost::asio::any_io_executor& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    boost::asio::cancellation_signal cancel_op;  // the operation's cancellation slot
    bool expired = false;
    bool caller_cancelled = false;
};

}  // namespace detail

/// Awaits `op` for at most `budget` (Boost 1.81 has no cancel_after). When the budget runs out first, `op`
/// receives terminal cancellation, is awaited until it stops, and the result is `errc::timeout`.
/// Cancellation: the caller's cancellation is forwarded to `op`; after a terminal one the result is
/// `errc::cancelled`. An exception thrown by `op` propagates (it is never dropped).
/// Cost: one shared state, one timer wait and one coroutine for `op` (no parallel group).
template <class T>
boost::asio::awaitable<result<T>> with_timeout(
    boost::asio::awaitable<result<T>> op, std::chrono::steady_clock::duration budget
) {
    namespace asio = boost::asio;
    const auto ex = co_await asio::this_coro::executor;
    auto race = std::make_shared<detail::timeout_race>(ex);
    race->timer.expires_after(budget);
    race->timer.async_wait([race](const boost::system::error_code& ec) {
        if (ec) return;  // cancelled: `op` finished first
        race->expired = true;
        race->cancel_op.emit(asio::cancellation_type::terminal);
    });
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    asio::cancellation_slot caller = state.slot();
    if (caller.is_connected()) {
        caller.assign([race](asio::cancellation_type type) {
            if ((type & asio::cancellation_type::terminal) != asio::cancellation_type::none) {
                race->caller_cancelled = true;
            }
            race->cancel_op.emit(type);
        });
    }
    std::exception_ptr ep;
    std::optional<result<T>> value;
    try {
        auto token = asio::bind_cancellation_slot(race->cancel_op.slot(), asio::use_awaitable);
        value.emplace(co_await asio::co_spawn(ex, std::move(op), token));
    } catch (...) {
        ep = std::current_exception();
    }
    if (caller.is_connected()) caller.clear();
    race->timer.cancel();
    if (race->caller_cancelled) co_return make_error_code(errc::cancelled);
    if (race->expired) co_return make_error_code(errc::timeout);
    if (ep) std::rethrow_exception(ep);
    co_return std::move(*value);
}

/// Awaits `op` for at most `budget`, and never longer: when the budget runs out first, `op` receives terminal
/// cancellation and is left to finish in the background (its result discarded), and the result is `errc::timeout`
/// at once, whether or not `op` honours the cancellation. For calls to providers whose own time-outs are not ours
/// (an HTTP client that hangs): the caller is bounded by `budget` whatever they do. `op` runs on the caller's
/// executor and must not outlive what it references.
/// Cancellation: a terminal cancellation of the caller is forwarded to `op` (left behind likewise) and the result is
/// `errc::cancelled`. An exception thrown by `op` before the budget ran out propagates.
template <class T>
boost::asio::awaitable<result<T>> abandon_after(
    boost::asio::awaitable<result<T>> op, std::chrono::steady_clock::duration budget
) {
    namespace asio = boost::asio;
    struct shared {
        explicit shared(const asio::any_io_executor& ex) : timer(ex) {}
        asio::steady_timer timer;  // the budget; cancelled by the op's completion to wake the caller early
        asio::cancellation_signal cancel_op;
        std::optional<result<T>> value;
        std::exception_ptr ep;
        bool done = false;
    };
    const auto ex = co_await asio::this_coro::executor;
    auto s = std::make_shared<shared>(ex);
    s->timer.expires_after(budget);
    asio::co_spawn(
        ex,
        std::move(op),
        asio::bind_cancellation_slot(
            s->cancel_op.slot(),
            [s](std::exception_ptr ep, result<T> r) {
                s->done = true;
                if (ep) {
                    s->ep = ep;
                } else {
                    s->value.emplace(std::move(r));
                }
                s->timer.cancel();
            }
        )
    );
    auto [ec] = co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (s->done) {
        if (s->ep) std::rethrow_exception(s->ep);
        co_return std::move(*s->value);
    }
    s->cancel_op.emit(asio::cancellation_type::terminal);  // asked to stop; not awaited
    if (ec) co_return make_error_code(errc::cancelled);    // the caller's cancellation ended the wait
    co_return make_error_code(errc::timeout);
}

}  // namespace preflight::gates
