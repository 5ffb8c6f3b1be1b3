#pragma once

#include <preflight/server/api.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <memory>
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

/// `n` io_contexts (0 = hardware threads), each run by one thread of its own (concurrency hint 1, marked with
/// `preflight::mark_single_threaded`), kept alive by work guards until `stop()` or destruction. Work on one of them
/// needs no strand: a connection, and every pipeline run it starts, stays on its context's thread. Context 0 is the
/// main one (acceptor, signals, pools). Not thread-safe; use from the owning thread. Lifetime: objects bound to a
/// context must go before the contexts do, i.e. before this object (`stop()` joins the threads and keeps the
/// contexts); the contexts are destroyed last to first, so context 0 goes last.
class io_context_per_thread {
public:
    explicit io_context_per_thread(std::size_t n);
    ~io_context_per_thread();
    io_context_per_thread(const io_context_per_thread&) = delete;
    io_context_per_thread& operator=(const io_context_per_thread&) = delete;

    /// Stops every context and joins every thread; the contexts remain. Idempotent.
    void stop();
    [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }
    [[nodiscard]] boost::asio::io_context& context(std::size_t i) { return *contexts_.at(i); }
    [[nodiscard]] boost::asio::io_context& main() { return *contexts_.front(); }
    [[nodiscard]] std::vector<boost::asio::io_context*> contexts() const;

private:
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
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

/// The same over `io`: accepts and waits for the signal on `io.main()`, spreads the connections over every context.
bool serve_until_signal(
    io_context_per_thread& io,
    api& a,
    const http_server_config& http,
    std::chrono::milliseconds drain_timeout,
    std::ostream& out
);

}  // namespace preflight::server
