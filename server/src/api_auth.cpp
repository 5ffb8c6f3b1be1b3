// GET/HEAD/POST /v1/auth: the api's endpoint for a gateway's authorisation subrequest (nginx `auth_request`).
// Kept apart from api.cpp: the request comes from headers (gateway_auth.cpp) and the answer is status and headers.
#include <preflight/server/api.hpp>
#include <preflight/server/gateway_auth.hpp>

#include <boost/beast/http/verb.hpp>

#include <string>
#include <utility>

// g++ 12 at -O2: the same false -Wmismatched-new-delete on Asio's awaitable frames as in api.cpp (see there).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace preflight::server {

boost::asio::awaitable<http_response> api::auth(const http_request& req, std::string_view) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    stats_.auth_requests.fetch_add(1, std::memory_order_relaxed);
    auto parsed = request_from_headers(req, params_.limits);
    http_response res;
    if (auto* bad = std::get_if<request_error>(&parsed)) {
        stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
        res = auth_bad_request(*bad, version, keep_alive);
    } else {
        gates::decision d = co_await pipeline_.run(std::move(std::get<gates::request>(parsed)));
        res = auth_response(d, version, keep_alive);
        // A gateway never calls back when the upstream request ends, so a granted lease goes back at once: admission
        // bounds concurrent decisions here, not the upstream request's duration. The release records one request of
        // usage where the pipeline records usage on release.
        if (d.lease.held()) {
            const std::string id = d.lease.id();
            result<void> released = co_await d.lease.release();
            if (!released) {
                // The decision stands (the slot returns with the store's ttl); the failure is counted and named.
                stats_.release_failures.fetch_add(1, std::memory_order_relaxed);
                res.set(
                    auth_header_release_error,
                    auth_header_text("releasing lease " + id + " failed: " + released.error().message())
                );
            }
        }
    }
    if (req.method() == boost::beast::http::verb::head) {
        res.body().clear();  // the HTTP layer recomputes Content-Length
        res.prepare_payload();
    }
    co_return res;
}

}  // namespace preflight::server
