#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace preflight {

/// A strand over `ex`, as an `any_io_executor`. When `ex` is an io_context's executor (the usual case), the strand
/// is built over that concrete type: `strand<io_context::executor_type>` fits in `any_io_executor`'s inline storage,
/// whereas `strand<any_io_executor>` does not, so every copy, `prefer` and `require` of the latter (each handler,
/// work guard and coroutine step on it) allocates. Same ordering guarantees either way; other executors get
/// `strand<any_io_executor>`.
[[nodiscard]] inline boost::asio::any_io_executor make_io_strand(const boost::asio::any_io_executor& ex) {
    namespace asio = boost::asio;
    using plain = asio::io_context::executor_type;
    using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;  // outstanding_work.tracked
    if (const auto* io = ex.target<plain>()) return asio::make_strand(*io);
    if (const auto* io = ex.target<tracked>()) return asio::make_strand(*io);
    return asio::make_strand(ex);
}

/// Whether `ex` is a strand that `make_io_strand` made over an io_context's executor.
[[nodiscard]] inline bool is_io_strand(const boost::asio::any_io_executor& ex) noexcept {
    namespace asio = boost::asio;
    using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;
    return ex.target<asio::strand<asio::io_context::executor_type>>() != nullptr ||
           ex.target<asio::strand<tracked>>() != nullptr;
}

}  // namespace preflight
