#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <stdexcept>
#include <utility>

namespace preflight::test {

/// Runs `aw` on `ctx` until it completes and returns its value (rethrows its exception). Fails loudly
/// when the coroutine does not finish, or when work is left over in the io_context afterwards.
template <class T>
T run_coro(boost::asio::io_context& ctx, boost::asio::awaitable<T> aw) {
    auto fut = boost::asio::co_spawn(ctx, std::move(aw), boost::asio::use_future);
    ctx.restart();
    ctx.run();
    if (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        throw std::logic_error("run_coro: the coroutine did not complete");
    }
    return fut.get();
}

}  // namespace preflight::test
