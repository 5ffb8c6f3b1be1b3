#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/core/config.hpp>
#include <preflight/core/errc.hpp>
#include <preflight/gates/decision.hpp>
#include <preflight/gates/pipeline.hpp>
#include <preflight/gates/request.hpp>
#include <preflight/server/http_server.hpp>
#include <preflight/server/lease_registry.hpp>
#include <preflight/server/request_json.hpp>
#include <preflight/server/server_config.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace preflight::server {

/// Checks a dependency (e.g. Postgres) for GET /healthz: success, or an error whose message is reported.
using health_check = std::function<boost::asio::awaitable<result<void>>()>;

/// Options of the API. Aggregate with defaults in every field.
struct api_params {
    request_limits limits;
    /// Kept this long unless released or renewed: preflightd sets the admission store's `admission.lease_ttl_ms`.
    std::chrono::milliseconds lease_ttl{std::chrono::minutes{5}};
    std::size_t max_leases = 100'000;          ///< bound of the held leases
    std::size_t max_released_leases = 10'000;  ///< released ids remembered (a repeated release is still 200)
    const preflight::clock* clock = &preflight::clock::steady();  ///< lease expiry; must outlive the api
    health_check health;                                          ///< empty: /healthz checks nothing else
    std::function<std::string()> extra_metrics;                   ///< more Prometheus text (e.g. pool usage)
    boost::json::value effective_config;  ///< served by GET /v1/config (use `config::to_json()`: redacted)
};

/// Counters of the API itself (exposed by /metrics).
struct api_stats {
    std::atomic<std::uint64_t> preflight_requests{0};  ///< decisions asked for (a batch counts each item)
    std::atomic<std::uint64_t> batch_requests{0};      ///< POST /v1/preflight/batch requests
    std::atomic<std::uint64_t> auth_requests{0};       ///< GET/HEAD/POST /v1/auth (a gateway's subrequest)
    std::atomic<std::uint64_t> invalid_requests{0};    ///< 400 from the body validation
    std::atomic<std::uint64_t> lease_registry_full{0};
    std::atomic<std::uint64_t> releases{0};
    std::atomic<std::uint64_t> release_failures{0};
    std::atomic<std::uint64_t> renewals{0};
    std::atomic<std::uint64_t> renew_failures{0};
    std::atomic<std::uint64_t> not_found{0};
    std::atomic<std::uint64_t> method_not_allowed{0};
};

/// preflightd's endpoints over a `gates::pipeline`:
/// - `POST /v1/preflight`: the decision as JSON with its trace; status and headers from `gates::to_http`
///   (200 with `lease_id`; 403/402/429/503 with `{"error": {...}, "decision": {...}}`, `Retry-After` and RateLimit
///   fields on 429). A granted lease is kept in the lease registry; when the registry is full the lease is
///   released at once and the answer is 503 `lease_registry_full`. 400 `bad_request` names the field at fault.
/// - `GET|HEAD|POST /v1/auth`: for a gateway's authorisation subrequest (nginx `auth_request`): the subject from
///   `X-Preflight-*` headers, the same pipeline run; 200 with no body, or the denial's status with
///   `X-Preflight-Code`/`X-Preflight-Gate` (gateway_auth.hpp). A granted lease is released at once.
/// - `POST /v1/leases/{id}/release`: 200 `{"released": true}` (also when already released: idempotent),
///   404 for an unknown or expired id, 503 when the store's release failed.
/// - `GET /healthz`: 200 `{"status":"ok"}`, or 503 with the health check's error.
/// - `GET /metrics`: Prometheus text: the pipeline's metrics, the HTTP server's and the API's counters, the
///   lease registry's size, and `api_params::extra_metrics`.
/// - `POST /v1/preflight/batch`: `{"requests": [<preflight body>, ...]}` (1 to `request_limits::max_batch_items`),
///   run one after another in order; 200 `{"results": [{"status", "body"}, ...]}` where each `body` is the answer
///   POST /v1/preflight would have given (leases included); 400 naming the item at fault, 413 over the item limit.
/// - `GET /v1/config`: `api_params::effective_config`.
/// - 404 for other paths, 405 (with `Allow`) for a known path with another method.
/// Thread safety: `handle` may run concurrently on any number of threads.
/// Lifetime: destroy the api (it holds leases) before the io_context the pipeline's leases run on.
class api {
public:
    api(gates::pipeline pipeline, api_params params);

    /// The request handler for `http_server`. Never throws for bad input (4xx answers); an internal failure
    /// propagates (the server answers 500). Cancellation: none beyond the pipeline's own.
    boost::asio::awaitable<http_response> handle(http_request req);

    /// An `http_handler` bound to this api (which must outlive the server).
    [[nodiscard]] http_handler handler();

    /// Shows `server`'s counters in /metrics. Call before serving; `server` must outlive the api's use.
    void attach(const http_server& server) noexcept { server_ = &server; }

    [[nodiscard]] lease_registry& leases() noexcept { return leases_; }
    [[nodiscard]] const api_stats& stats() const noexcept { return stats_; }

    /// The /metrics body.
    [[nodiscard]] std::string metrics_text() const;

private:
    struct routes;
    /// A decision with its answer's body, its lease in the registry (or `registry_full` says why not).
    struct answer {
        gates::decision decision;
        std::string body;
        std::string registry_full;  ///< non-empty: the registry was full, the lease was given back
    };
    boost::asio::awaitable<answer> decide(gates::request r);

    // The endpoints (api::routes): the request and the `{id}` of the route, if it has one.
    boost::asio::awaitable<http_response> preflight(const http_request& req, std::string_view);
    boost::asio::awaitable<http_response> preflight_batch(const http_request& req, std::string_view);
    /// GET/HEAD/POST /v1/auth (server/src/api_auth.cpp): the subject from headers (`request_from_headers`), the
    /// answer from `auth_response`; a granted lease is released before answering.
    boost::asio::awaitable<http_response> auth(const http_request& req, std::string_view);
    boost::asio::awaitable<http_response> release(const http_request& req, std::string_view id);
    boost::asio::awaitable<http_response> renew(const http_request& req, std::string_view id);
    boost::asio::awaitable<http_response> healthz(const http_request& req, std::string_view);
    boost::asio::awaitable<http_response> metrics(const http_request& req, std::string_view);
    boost::asio::awaitable<http_response> config(const http_request& req, std::string_view);

    gates::pipeline pipeline_;
    api_params params_;
    lease_registry leases_;
    api_stats stats_;
    const http_server* server_ = nullptr;
    std::string config_body_;
};

}  // namespace preflight::server
