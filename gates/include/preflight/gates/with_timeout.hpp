#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <utility>
#include <variant>

namespace preflight::gates {
namespace detail {

/// Runs `op` and returns its exception as a value: `||` waits for the first *successful* operand, so an
/// exception inside it would otherwise be dropped in favour of the timer.
template <class T>
boost::asio::awaitable<std::pair<std::exception_ptr, std::optional<result<T>>>> capture(
    boost::asio::awaitable<result<T>> op
) {
    try {
        co_return std::pair<std::exception_ptr, std::optional<result<T>>>{nullptr, co_await std::move(op)};
    } catch (...) {
        co_return std::pair<std::exception_ptr, std::optional<result<T>>>{std::current_exception(), std::nullopt};
    }
}

}  // namespace detail

/// Awaits `op` for at most `budget` (Boost 1.81 has no cancel_after). When the budget runs out first, `op`
/// receives terminal cancellation, is awaited until it stops, and the result is `errc::timeout`.
/// Cancellation: terminal cancellation of the caller cancels both and yields `errc::cancelled`.
/// An exception thrown by `op` propagates (it is never dropped).
template <class T>
boost::asio::awaitable<result<T>> with_timeout(
    boost::asio::awaitable<result<T>> op, std::chrono::steady_clock::duration budget
) {
    using namespace boost::asio::experimental::awaitable_operators;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, budget);
    auto winner = co_await (
        detail::capture(std::move(op)) || timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable))
    );
    if (winner.index() == 0) {
        auto& [ep, value] = std::get<0>(winner);
        if (ep) std::rethrow_exception(ep);
        co_return std::move(*value);
    }
    auto [ec] = std::get<1>(winner);
    if (ec == boost::asio::error::operation_aborted) co_return make_error_code(errc::cancelled);
    co_return make_error_code(errc::timeout);
}

}  // namespace preflight::gates
