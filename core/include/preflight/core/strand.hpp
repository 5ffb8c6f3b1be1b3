#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
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

namespace detail {
/// The mark `mark_single_threaded` leaves on an io_context: a service that does nothing but exist.
class single_threaded_mark final : public boost::asio::execution_context::service {
public:
    using key_type = single_threaded_mark;
    static inline boost::asio::execution_context::id id;  // NOLINT: Asio's service identity
    explicit single_threaded_mark(boost::asio::execution_context& ctx) : service(ctx) {}

private:
    void shutdown() override {}
};
}  // namespace detail

/// Promises that exactly one thread runs `ctx` (for its whole life): work on its executor then needs no strand to
/// stay serial, and a pipeline run started on it runs in place instead of on a strand of its own (a strand and a
/// coroutine spawn saved per run). Breaking the promise lets one run's checks race each other. Idempotent.
inline void mark_single_threaded(boost::asio::io_context& ctx) {
    (void)boost::asio::use_service<detail::single_threaded_mark>(ctx);
}

/// Whether work submitted to `ex` runs one handler at a time: a strand that `make_io_strand` made, or the executor
/// of an io_context marked by `mark_single_threaded`.
[[nodiscard]] inline bool runs_serially(const boost::asio::any_io_executor& ex) noexcept {
    namespace asio = boost::asio;
    if (is_io_strand(ex)) return true;
    asio::io_context* ctx = nullptr;
    if (const auto* io = ex.target<asio::io_context::executor_type>()) ctx = &io->context();
    if (const auto* io = ex.target<detail::tracked_io_executor>()) ctx = &io->context();
    return ctx != nullptr && asio::has_service<detail::single_threaded_mark>(*ctx);
}

}  // namespace preflight
