#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/core/config.hpp>
#include <preflight/core/errc.hpp>
#include <preflight/gates/decision.hpp>
#include <preflight/gates/pipeline.hpp>
#include <preflight/gates/request.hpp>
#include <preflight/server/http_server.hpp>
#include <preflight/server/lease_registry.hpp>

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

/// Limits on a POST /v1/preflight body (the HTTP layer already caps its size, 64 KiB by default).
struct request_limits {
    std::size_t max_depth = 8;            ///< JSON nesting (objects/arrays), the top-level object counts 1
    std::size_t max_key_bytes = 256;      ///< each subject key
    std::size_t max_extension_keys = 64;  ///< members of `extension`
};

/// Why a request body was refused (400). `field` is the JSON path at fault (`"operation"`, `"subject.org"`,
/// `""` for the document itself); `message` is client-safe and names the field and, where useful, the value.
struct request_error {
    std::string field;
    std::string message;
};

/// Parses and strictly validates a POST /v1/preflight body:
/// `{"operation": "execute", "subject": {"user", "org", "workspace", "ip", "api_key_id", "run_id",
/// "request_id"}, "extension": {...}}`. `operation` is required (one of execute, execute_with_pause, resume,
/// cancel, read); `subject` members are optional strings; `extension` an optional object. Unknown members,
/// wrong types, malformed JSON, too deep nesting or oversized keys are errors naming the field.
/// Thread safety: pure function.
[[nodiscard]] std::variant<gates::request, request_error> parse_preflight_request(
    std::string_view body, const request_limits& limits = {}
);

/// The JSON text of `d`: the same document as `boost::json::serialize(d.to_json())` (same members, strings with
/// invalid UTF-8 repaired the same way; numbers may be spelt differently), written straight into one string
/// instead of through `boost::json` objects (this is the body of every allowed POST /v1/preflight).
/// Thread safety: pure function.
[[nodiscard]] std::string decision_body(const gates::decision& d);

/// The body of a denied POST /v1/preflight: `{"error": {"code", "message", "gate"[, "retry_after_ms"]},
/// "decision": decision_body(d)}`. Thread safety: pure function.
[[nodiscard]] std::string denial_body(const gates::decision& d);

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
    std::atomic<std::uint64_t> preflight_requests{0};
    std::atomic<std::uint64_t> auth_requests{0};     ///< GET/HEAD/POST /v1/auth (a gateway's subrequest)
    std::atomic<std::uint64_t> invalid_requests{0};  ///< 400 from the body validation
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
    boost::asio::awaitable<http_response> preflight(const http_request& req);
    /// GET/HEAD/POST /v1/auth (server/src/api_auth.cpp): the subject from headers (`request_from_headers`), the
    /// answer from `auth_response`; a granted lease is released before answering.
    boost::asio::awaitable<http_response> auth(const http_request& req);
    boost::asio::awaitable<http_response> release(
        std::string id, std::string_view body, unsigned version, bool keep_alive
    );
    boost::asio::awaitable<http_response> renew(std::string id, unsigned version, bool keep_alive);
    boost::asio::awaitable<http_response> healthz(unsigned version, bool keep_alive);

    gates::pipeline pipeline_;
    api_params params_;
    lease_registry leases_;
    api_stats stats_;
    const http_server* server_ = nullptr;
    std::string config_body_;
};

/// preflightd's own configuration keys: `server.listen` ("127.0.0.1"), `server.port` (8080), `server.threads`
/// (0 = hardware threads), `server.data` (fact data JSON file for the in-memory stores, "" = none),
/// `server.postgres_url` (secret; "" = in-memory stores), `server.pool_size` (8),
/// `server.pg_batch_writes` (true: `clients::pg_store_options::batch_limit_writes`), `server.pg_gather_reads` (true:
/// `gather_reads`), `server.pg_batch_in_flight` (2) and `server.pg_batch_max_per_call` (64)
/// (`clients::pg_gather_options`), `server.purge_interval_ms` (60000; 0 = never: `clients::periodic_purge` of the
/// Postgres store set), `server.max_leases` (100000), `server.drain_timeout_ms`
/// (10000); the HTTP billing provider of the balance gate: `server.balance_url` ("" = the store set's balance source),
/// `server.balance_api_key` (secret), `server.balance_timeout_ms` (2000).
void register_server_config(preflight::config_registry& registry);

/// The server's short command line, translated for `config_inputs::args`: `--listen` → `--server-listen`,
/// `--port`, `--threads`, `--data`, `--postgres` (→ `--server-postgres-url`), `--balance-url`; `--config FILE` is taken
/// out (returned in `config_file`). Other arguments pass through unchanged (the layered config rejects unknown ones).
struct command_line {
    std::string config_file;  ///< empty: none
    std::vector<std::string> args;
};
[[nodiscard]] command_line translate_command_line(int argc, const char* const* argv);

}  // namespace preflight::server
