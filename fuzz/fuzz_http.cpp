// Fuzz target: whole HTTP requests through preflightd's real request handling on a loopback socket.
//
// The server is `server::http_server` with the real `server::api` handler over `gates::default_pipeline` on
// in-memory stores loaded from examples/data.json, so every endpoint is reached: POST /v1/preflight (body
// validation, the whole pipeline, the lease registry), GET/HEAD/POST /v1/auth (the subject from headers),
// POST /v1/leases/{id}/release, GET /metrics, /healthz, /v1/config, and 404/405 answers. The raw input is written
// to a fresh connection (which is then half-closed), so keep-alive, pipelining, chunked bodies, limits and
// malformed framing go through the server's real read/parse/respond loop. A literal `$LEASE` in the input is
// replaced by the id of the last lease the server granted, so releases of real leases are reached too.
// Must hold for every input: every answer is a well-formed HTTP response; its body is JSON (only a 200 from
// /metrics is Prometheus text/plain; /v1/auth answers an allowed request with an empty 200 without Content-Type,
// and HEAD with no body); never a 500 (the api answers 500 only when a handler throws, which the in-memory stores
// never do: the error hook reports it as a finding); the server closes the connection within 5 s of the client's
// half-close.

#include "fuzz_check.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/server/api.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <mutex>
#include <sstream>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using preflight::fuzz::require;

boost::json::value read_data() {
    std::ifstream in(preflight::fuzz::data_json_path, std::ios::binary);
    if (!in) preflight::fuzz::finding(std::string("cannot read ") + preflight::fuzz::data_json_path);
    std::ostringstream text;
    text << in.rdbuf();
    return boost::json::parse(text.str());
}

// preflightd's parts, as in server/src/main.cpp and run_preflightd with in-memory stores, but with small
// bounds so the fuzzer reaches full registries and expiring leases.
struct fixture {
    asio::io_context ctx;
    preflight::clients::memory_fact_stores facts;
    std::unique_ptr<preflight::server::api> api;
    std::shared_ptr<preflight::server::http_server> server;
    std::thread runner;
    asio::io_context client_ctx;

    fixture() {
        preflight::config_registry registry;
        preflight::server::register_server_config(registry);
        preflight::gates::register_default_pipeline_config(registry);
        preflight::config_inputs inputs;
        inputs.args = {"--admission-max-concurrent=3", "--admission-lease-ttl-ms=2000", "--server-max-leases=64"};
        inputs.environment = std::vector<std::string>{};  // the fuzzer's environment must not change the config
        inputs.getenv = [](const std::string&) { return std::optional<std::string>{}; };
        const auto cfg = preflight::config::resolve(registry, inputs);

        preflight::clients::load_fact_data(read_data(), facts);
        preflight::gates::default_pipeline_deps deps;
        deps.stores = preflight::clients::make_memory_store_set(facts, preflight::clock::steady());
        preflight::server::api_params params;
        params.lease_ttl = std::chrono::milliseconds{2000};
        params.max_leases = static_cast<std::size_t>(cfg.get_int("server.max_leases"));
        params.max_released_leases = 64;
        params.effective_config = cfg.to_json();
        api = std::make_unique<preflight::server::api>(
            preflight::gates::default_pipeline(cfg, std::move(deps)), std::move(params)
        );

        preflight::server::http_server_config http_cfg;
        http_cfg.port = 0;
        http_cfg.read_timeout = std::chrono::seconds{5};
        http_cfg.idle_timeout = std::chrono::seconds{5};
        http_cfg.write_timeout = std::chrono::seconds{5};
        server = std::make_shared<preflight::server::http_server>(ctx, http_cfg, api->handler());
        server->set_error_hook([](const std::string& e) { preflight::fuzz::finding("handler error (500): " + e); });
        api->attach(*server);
        server->start();
        runner = std::thread([this] { ctx.run(); });
        runner.detach();  // lives for the whole process
    }
};

std::mutex last_lease_mutex;
std::string last_lease = "00000000-0000-0000-0000-000000000000";

// Remembers the lease id of a granted /v1/preflight answer.
void remember_lease(const boost::json::value& body) {
    const auto* o = body.if_object();
    const auto* id = o ? o->if_contains("lease_id") : nullptr;
    if (id && id->is_string()) {
        std::lock_guard lock(last_lease_mutex);
        last_lease = std::string(id->get_string());
    }
}

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
        const auto type = res[http::field::content_type];
        if (type.starts_with("text/plain")) {
            require(res.result_int() == 200, "a text/plain answer that is not a 200 from /metrics");
            require(res.body().find("preflight_leases_held ") != std::string::npos, "/metrics without the lease gauge");
        } else if (res.body().empty() && (type.empty() ? res.result_int() == 200 : res.count("X-Preflight-Code") != 0)) {
            // GET/HEAD/POST /v1/auth: an allowed answer is a 200 with no body and no Content-Type; a HEAD answer has
            // its headers (a denial's X-Preflight-Code) and no body.
        } else {
            require(type.starts_with("application/json"), "unexpected Content-Type: " + std::string(type));
            boost::system::error_code jec;
            const auto body = boost::json::parse(res.body(), jec);
            require(!jec, "response body is not JSON: " + res.body());
            remember_lease(body);
        }
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
    std::string input(reinterpret_cast<const char*>(data), size);
    {
        std::lock_guard lock(last_lease_mutex);
        for (auto pos = input.find("$LEASE"); pos != std::string::npos; pos = input.find("$LEASE", pos + 1)) {
            input.replace(pos, 6, last_lease);
        }
    }
    boost::system::error_code ec;
    std::size_t written = 0;
    while (written < input.size()) {  // the server may close early (e.g. 400 on garbage): then stop writing
        written += asio::write(s, asio::buffer(input.data() + written, input.size() - written), ec);
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
