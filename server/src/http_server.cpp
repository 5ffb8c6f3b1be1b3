#include <preflight/server/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace preflight::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct connection {
    explicit connection(tcp::socket s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    bool busy = false;  // a request is being handled; guarded by the connection's strand
    std::string head;   // the status line and fields of the answer being written (its capacity is kept)
};

/// Writes the status line and the header fields of `res` (as they are: `prepare_payload` has run) into `out`, the
/// head Beast's serializer would write, so that the answer goes out as two buffers (head, body) from storage the
/// connection keeps.
void write_head(std::string& out, const http_response& res) {
    out.clear();
    out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    std::array<char, 8> code{};
    const auto r = std::to_chars(code.data(), code.data() + code.size(), res.result_int());
    out.append(code.data(), static_cast<std::size_t>(r.ptr - code.data()));
    out += ' ';
    out += res.reason();
    out += "\r\n";
    for (const auto& f : res) {
        out += f.name_string();
        out += ": ";
        out += f.value();
        out += "\r\n";
    }
    out += "\r\n";
}

}  // namespace

struct http_server::impl {
    impl(asio::io_context& c, http_server_config cfg, http_handler h)
        : ctx(c), config(std::move(cfg)), handler(std::move(h)), acceptor(asio::make_strand(c)) {}

    asio::io_context& ctx;
    http_server_config config;
    http_handler handler;
    tcp::acceptor acceptor;
    std::vector<asio::io_context*> spread;  // connection contexts (empty: connections go on ctx)
    std::size_t next_context = 0;           // round robin over `spread`; the accept loop's only

    std::mutex mutex;
    std::unordered_set<std::shared_ptr<connection>> connections;
    bool stopping = false;                   // guarded by mutex (accept and drain decisions)
    std::atomic<bool> stopping_flag{false};  // the same, read lock-free by sessions once per request
    std::function<void()> on_drained;
};

http_response json_response(unsigned status, std::string body, unsigned version, bool keep_alive) {
    http_response res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "preflightd");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

http_server::http_server(
    asio::io_context& ctx,
    std::vector<asio::io_context*> connection_contexts,
    http_server_config config,
    http_handler handler
)
    : http_server(ctx, std::move(config), std::move(handler)) {
    if (connection_contexts.empty()) throw std::invalid_argument("http_server: no connection io_contexts");
    for (const auto* c : connection_contexts) {
        if (c == nullptr) throw std::invalid_argument("http_server: a connection io_context is null");
    }
    impl_->spread = std::move(connection_contexts);
}

http_server::http_server(asio::io_context& ctx, http_server_config config, http_handler handler)
    : impl_(std::make_unique<impl>(ctx, std::move(config), std::move(handler))) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(impl_->config.address, ec);
    if (ec) {
        throw boost::system::system_error(ec, "preflightd: bad listen address '" + impl_->config.address + "'");
    }
    tcp::endpoint ep{address, impl_->config.port};
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol());
    acc.set_option(asio::socket_base::reuse_address(true));
    acc.bind(ep, ec);
    if (ec) {
        throw boost::system::system_error(
            ec, "preflightd: cannot listen on " + impl_->config.address + ":" + std::to_string(impl_->config.port)
        );
    }
    acc.listen(asio::socket_base::max_listen_connections);
    port_ = acc.local_endpoint().port();
}

http_server::~http_server() = default;

void http_server::start() {
    asio::co_spawn(impl_->acceptor.get_executor(), accept_loop(), asio::detached);
}

asio::awaitable<void> http_server::accept_loop() {
    auto self = shared_from_this();
    for (;;) {
        asio::any_io_executor conn_ex;
        if (!impl_->spread.empty()) {
            conn_ex = impl_->spread[impl_->next_context++ % impl_->spread.size()]->get_executor();
        } else if (impl_->config.single_threaded) {
            conn_ex = impl_->ctx.get_executor();
        } else {
            conn_ex = asio::make_strand(impl_->ctx);
        }
        auto [ec, socket] = co_await impl_->acceptor.async_accept(conn_ex, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !impl_->acceptor.is_open()) co_return;
            continue;  // e.g. EMFILE: keep serving the connections we have
        }
        // Responses go out in one write each; without Nagle's delay a small answer never waits for an ACK.
        // Best effort: a socket that refuses the option still works (only later answers may be delayed).
        boost::system::error_code nodelay_ec;
        socket.set_option(tcp::no_delay(true), nodelay_ec);
        std::shared_ptr<connection> conn;
        {
            std::lock_guard lock(impl_->mutex);
            if (impl_->stopping) co_return;
            if (impl_->connections.size() >= impl_->config.max_connections) {
                stats_.connections_rejected.fetch_add(1, std::memory_order_relaxed);
                socket.close(ec);
                continue;
            }
            conn = std::make_shared<connection>(std::move(socket));
            impl_->connections.insert(conn);
        }
        stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
        stats_.open_connections.fetch_add(1, std::memory_order_relaxed);
        auto ex = conn->stream.get_executor();
        asio::co_spawn(ex, session(conn), asio::detached);
    }
}

asio::awaitable<void> http_server::session(std::shared_ptr<void> erased) {
    auto self = shared_from_this();
    auto conn = std::static_pointer_cast<connection>(erased);
    auto& stream = conn->stream;
    const auto& cfg = impl_->config;
    beast::flat_buffer buffer;
    bool first = true;

    for (;;) {
        if (impl_->stopping_flag.load(std::memory_order_acquire)) break;
        http::request_parser<http::string_body, field_allocator<char>> parser;
        parser.body_limit(cfg.max_body_bytes);
        parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
        stream.expires_after(first ? cfg.read_timeout : cfg.idle_timeout);
        first = false;
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        (void)n;
        if (ec) {
            if (impl_->stopping_flag.load(std::memory_order_acquire)) break;  // closed by stop(): no answer owed
            if (ec == beast::error::timeout) {
                stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
                break;
            }
            if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                ec == asio::error::operation_aborted) {
                break;
            }
            const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
            (too_large ? stats_.too_large : stats_.bad_requests).fetch_add(1, std::memory_order_relaxed);
            auto res =
                too_large ? json_response(
                                413,
                                R"({"error":{"code":"payload_too_large","message":"request over )" +
                                    std::to_string(cfg.max_body_bytes) + R"( bytes"}})",
                                11,
                                false
                            )
                          : json_response(
                                400, R"({"error":{"code":"bad_request","message":"malformed HTTP request"}})", 11, false
                            );
            stream.expires_after(cfg.write_timeout);
            co_await http::async_write(stream, res, use_tuple);
            break;
        }

        conn->busy = true;
        stats_.requests.fetch_add(1, std::memory_order_relaxed);
        auto req = parser.release();
        const auto version = req.version();
        const bool keep_alive = req.keep_alive();
        http_response res;
        try {
            res = co_await impl_->handler(std::move(req));
        } catch (const std::exception& e) {
            stats_.handler_errors.fetch_add(1, std::memory_order_relaxed);
            if (error_hook_) error_hook_(std::string("handler error: ") + e.what());
            res = json_response(500, R"({"error":{"code":"internal_error","message":"internal error"}})");
        }
        conn->busy = false;
        const bool stopping = impl_->stopping_flag.load(std::memory_order_acquire);
        res.version(version);
        res.keep_alive(keep_alive && !stopping && res.keep_alive());
        res.prepare_payload();
        write_head(conn->head, res);
        const std::array<asio::const_buffer, 2> out{asio::buffer(conn->head), asio::buffer(res.body())};
        stream.expires_after(cfg.write_timeout);
        auto [wec, wn] = co_await asio::async_write(stream, out, use_tuple);
        (void)wn;
        if (wec || !res.keep_alive()) break;
    }

    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->connections.erase(conn);
    }
    stats_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    session_ended();
}

void http_server::session_ended() {
    std::function<void()> done;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping && impl_->connections.empty() && impl_->on_drained)
            done = std::exchange(impl_->on_drained, {});
    }
    if (done) done();
}

void http_server::stop(std::function<void()> on_drained) {
    std::vector<std::shared_ptr<connection>> idle;
    bool already_empty = false;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping) return;
        impl_->stopping = true;
        impl_->stopping_flag.store(true, std::memory_order_release);
        impl_->on_drained = std::move(on_drained);
        idle.assign(impl_->connections.begin(), impl_->connections.end());
        already_empty = impl_->connections.empty();
    }
    asio::post(impl_->acceptor.get_executor(), [self = shared_from_this()] {
        boost::system::error_code ec;
        self->impl_->acceptor.close(ec);
    });
    // Connections waiting for a request, or holding only part of one, are closed at once; a busy one finishes its
    // response first. Closed, not cancelled: a cancel reaches only the read pending at that instant, and a request
    // arriving in pieces may be between two reads of Beast's composed read then, so the next read would have held
    // the drain until its read timeout (1.7 s in some runs, 10 s in others).
    for (auto& c : idle) {
        asio::post(c->stream.get_executor(), [c] {
            if (!c->busy) c->stream.close();
        });
    }
    if (already_empty) session_ended();
}

}  // namespace preflight::server
