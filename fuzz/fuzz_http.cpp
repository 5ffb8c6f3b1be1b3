// Fuzz target: whole HTTP requests through a real `server::http_server` on a loopback socket.
//
// The raw input is written to a fresh connection (which is then half-closed), so keep-alive, pipelining,
// chunked bodies, limits and malformed framing all go through the server's real read/parse/respond loop.
// The handler stands in for the /v1/preflight endpoint: it parses the body with Boost.JSON (the parser the
// server's handlers use), maps a denial through `gates::to_http` and echoes valid JSON.
// Must hold for every input: the server answers with well-formed HTTP responses whose bodies are JSON, never a
// 500, and closes the connection once the client has half-closed.

#include "fuzz_check.hpp"
#include <preflight/gates/decision.hpp>
#include <preflight/gates/http.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/socket.h>
#include <sys/time.h>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using preflight::fuzz::require;
using preflight::server::http_request;
using preflight::server::http_response;

asio::awaitable<http_response> handle(http_request req) {
    if (req.target() != "/v1/preflight") {
        co_return preflight::server::json_response(404, R"({"error":{"code":"not_found","message":"no such path"}})");
    }
    boost::system::error_code ec;
    auto body = boost::json::parse(req.body(), ec);
    if (ec || !body.is_object()) {
        co_return preflight::server::json_response(
            400, R"({"error":{"code":"bad_request","message":"body is not a JSON object"}})"
        );
    }
    preflight::gates::decision d;
    if (const auto* m = body.get_object().if_contains("deny"); m && m->is_string()) {
        d.allowed = false;
        d.status = 429;
        d.code = "rate_limited";
        d.message = std::string(m->get_string());
        d.gate = "fuzz";
        d.retry_after = std::chrono::milliseconds{1500};
        d.limiter = preflight::gates::limiter_info{10, 0, std::chrono::seconds{1}, std::chrono::seconds{1}};
    }
    const auto mapped = preflight::gates::to_http(d);
    auto res = preflight::server::json_response(static_cast<unsigned>(mapped.status), mapped.body);
    for (const auto& [name, value] : mapped.headers) res.set(name, value);
    co_return res;
}

struct fixture {
    asio::io_context ctx;
    std::shared_ptr<preflight::server::http_server> server;
    std::thread runner;
    asio::io_context client_ctx;

    fixture() {
        preflight::server::http_server_config cfg;
        cfg.port = 0;
        cfg.read_timeout = std::chrono::seconds{5};
        cfg.idle_timeout = std::chrono::seconds{5};
        cfg.write_timeout = std::chrono::seconds{5};
        server = std::make_shared<preflight::server::http_server>(ctx, cfg, handle);
        server->set_error_hook([](const std::string& e) { preflight::fuzz::finding("handler error: " + e); });
        server->start();
        runner = std::thread([this] { ctx.run(); });
        runner.detach();  // lives for the whole process
    }
};

fixture& the_fixture() {
    static auto* f = new fixture();  // never destroyed: the server thread runs until the process exits
    return *f;
}

// Checks every response in `bytes`: well-formed, JSON body, no 500. Returns how many there were. After a
// connection reset (the server closed with request bytes unread) the kernel may drop the tail of the
// responses, so a truncated last response is accepted then.
std::size_t check_responses(std::string_view bytes, bool reset) {
    std::size_t count = 0;
    while (!bytes.empty()) {
        http::response_parser<http::string_body> p;
        p.body_limit(1 << 20);
        p.eager(true);
        boost::system::error_code ec;
        const auto used = p.put(asio::buffer(bytes.data(), bytes.size()), ec);
        if (reset && (ec == http::error::need_more || (!ec && !p.is_done()))) break;
        require(!ec && p.is_done(), "the server sent a malformed or truncated response: " + std::string(bytes));
        const auto& res = p.get();
        require(res.result_int() != 500, "the server answered 500");
        boost::system::error_code jec;
        (void)boost::json::parse(res.body(), jec);
        require(!jec, "response body is not JSON: " + res.body());
        bytes.remove_prefix(used);
        ++count;
    }
    return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& f = the_fixture();
    tcp::socket s(f.client_ctx);
    s.connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
    timeval tv{5, 0};  // a server that never closes is a finding, not a hang
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    boost::system::error_code ec;
    std::size_t written = 0;
    while (written < size) {  // the server may close early (e.g. 400 on garbage): then stop writing
        written += asio::write(s, asio::buffer(data + written, size - written), ec);
        if (ec && ec != asio::error::interrupted) break;
    }
    s.shutdown(tcp::socket::shutdown_send, ec);
    std::string received;
    bool reset = false;
    char buf[16384];
    for (;;) {
        const auto n = s.read_some(asio::buffer(buf), ec);
        received.append(buf, n);
        if (ec == asio::error::interrupted) continue;  // libFuzzer's timer signal (SIGALRM) interrupts reads
        if (ec == asio::error::eof) break;
        if (ec == asio::error::connection_reset) {
            reset = true;
            break;
        }
        if (ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::timed_out) {
            preflight::fuzz::finding("the server did not close the connection within 5 s");
        }
        if (ec) preflight::fuzz::finding("client read failed: " + ec.message());
    }
    check_responses(received, reset);
    return 0;
}
