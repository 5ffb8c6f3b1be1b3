#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <memory>

namespace preflight {

namespace detail {
/// An io_context executor with outstanding_work.tracked, as `prefer` makes it.
using tracked_io_executor = boost::asio::io_context::basic_executor_type<std::allocator<void>, 4>;
}  // namespace detail

/// A strand over `ex`, as an `any_io_executor`. When `ex` is an io_context's executor (the usual case), the strand
/// is built over that concrete type: `strand<io_context::executor_type>` fits in `any_io_executor`'s inline storage,
/// whereas `strand<any_io_executor>` does not, so every copy, `prefer` and `require` of the latter (each handler,
/// work guard and coroutine step on it) allocates. Same ordering guarantees either way; other executors get
/// `strand<any_io_executor>`.
[[nodiscard]] inline boost::asio::any_io_executor make_io_strand(const boost::asio::any_io_executor& ex) {
    namespace asio = boost::asio;
    if (const auto* io = ex.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
    if (const auto* io = ex.target<detail::tracked_io_executor>()) return asio::make_strand(*io);
    return asio::make_strand(ex);
}

/// Whether `ex` is a strand that `make_io_strand` made over an io_context's executor.
[[nodiscard]] inline bool is_io_strand(const boost::asio::any_io_executor& ex) noexcept {
    namespace asio = boost::asio;
    return ex.target<asio::strand<asio::io_context::executor_type>>() != nullptr ||
           ex.target<asio::strand<detail::tracked_io_executor>>() != nullptr;
}

}  // namespace preflight
