#pragma once

#include <preflight/server/field_allocator.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace preflight::server {

/// HTTP requests and responses: Beast messages whose header fields recycle their blocks per thread
/// (`field_allocator`).
using http_fields = boost::beast::http::basic_fields<field_allocator<char>>;
using http_request = boost::beast::http::request<boost::beast::http::string_body, http_fields>;
using http_response = boost::beast::http::response<boost::beast::http::string_body, http_fields>;

/// Produces the response for one request. Runs on the connection's strand (or its single-threaded io_context); may
/// suspend. An exception thrown here becomes a 500 with a generic body (the detail goes to the error hook, not the
/// client).
using http_handler = std::function<boost::asio::awaitable<http_response>(http_request)>;

struct http_server_config {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8080;  ///< 0 picks a free port (see `http_server::port()`)
    std::size_t max_body_bytes = 64 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    std::chrono::steady_clock::duration read_timeout = std::chrono::seconds{10};  ///< whole request
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds{30};  ///< keep-alive wait
    std::chrono::steady_clock::duration write_timeout = std::chrono::seconds{10};
    std::size_t max_connections = 10'000;  ///< further connections are accepted and closed at once
    /// The io_context is run by exactly one thread: connections use its executor directly instead of a strand each
    /// (cheaper per request). Leave false when more than one thread runs the io_context.
    bool single_threaded = false;
};

/// Counters of the server itself (for /metrics).
struct http_server_stats {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> connections_rejected{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bad_requests{0};    ///< 400: unparsable
    std::atomic<std::uint64_t> too_large{0};       ///< 413: body over the limit
    std::atomic<std::uint64_t> timeouts{0};        ///< slow or idle clients dropped
    std::atomic<std::uint64_t> handler_errors{0};  ///< 500: the handler threw
    std::atomic<std::int64_t> open_connections{0};
};

/// HTTP/1.1 server (Boost.Beast) with keep-alive, body and header limits, read/idle/write timeouts and
/// a graceful drain. Each connection runs on its own strand, so the io_context may be run by many threads (unless
/// `http_server_config::single_threaded`), or on one of several single-threaded io_contexts (the second
/// constructor).
/// Thread safety: `start`, `stop` and the accessors may be called from any thread.
class http_server : public std::enable_shared_from_this<http_server> {
public:
    /// Binds and listens at once (throws `boost::system::system_error` naming the address when it cannot).
    http_server(boost::asio::io_context& ctx, http_server_config config, http_handler handler);
    /// The same, accepting on `ctx` but spreading the connections over `connection_contexts` (round robin), each
    /// connection on its context's executor without a strand: every one of them must be run by exactly one thread
    /// (as `io_context_per_thread` runs them). Throws `std::invalid_argument` when the list is empty or holds null.
    http_server(
        boost::asio::io_context& ctx,
        std::vector<boost::asio::io_context*> connection_contexts,
        http_server_config config,
        http_handler handler
    );
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Starts accepting. The server must be owned by a shared_ptr.
    void start();

    /// Stops accepting, lets in-flight requests finish and be answered (with `Connection: close`), closes
    /// idle connections, then calls `on_drained` once (on an io_context thread).
    void stop(std::function<void()> on_drained);

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] const http_server_stats& stats() const noexcept { return stats_; }
    /// Receives diagnostic text of handler exceptions (never sent to clients). Set before `start`.
    void set_error_hook(std::function<void(const std::string&)> hook) { error_hook_ = std::move(hook); }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
    http_server_stats stats_;
    std::function<void(const std::string&)> error_hook_;

    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> session(std::shared_ptr<void> conn);
    void session_ended();
};

/// A JSON response with the given status and a compact body; `Content-Type: application/json`.
http_response json_response(unsigned status, std::string body, unsigned version = 11, bool keep_alive = true);

}  // namespace preflight::server
