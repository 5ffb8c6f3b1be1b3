#pragma once

#include <preflight/server/api.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <thread>
#include <vector>

namespace preflight::server {

/// Runs an io_context on `n` threads (0 = hardware threads), kept alive by a work guard, until `stop()` or
/// destruction (which stops the context and joins). Not thread-safe; use from the owning thread.
class io_threads {
public:
    io_threads(boost::asio::io_context& ctx, std::size_t n);
    ~io_threads();
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;

    /// Stops the io_context and joins every thread. Idempotent.
    void stop();
    [[nodiscard]] std::size_t size() const noexcept { return threads_.size(); }

private:
    boost::asio::io_context& ctx_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

/// Serves `a` over HTTP on `ctx` (which other threads run, e.g. `io_threads`) until SIGINT or SIGTERM: binds
/// (throws `boost::system::system_error` naming the address when it cannot), prints one line
/// `preflightd listening on http://ADDRESS:PORT` to `out`, and on the signal stops accepting, lets in-flight
/// requests finish (at most `drain_timeout`) and returns: true when every connection drained in time.
/// Lifetime: `a` must outlive the call. Blocks the calling thread (which must not be one of ctx's threads).
bool serve_until_signal(
    boost::asio::io_context& ctx,
    api& a,
    const http_server_config& http,
    std::chrono::milliseconds drain_timeout,
    std::ostream& out
);

}  // namespace preflight::server
