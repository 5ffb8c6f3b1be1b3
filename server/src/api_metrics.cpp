// GET /metrics: the Prometheus text of the pipeline, the HTTP server, the API and the lease registry.
#include <preflight/gates/metrics.hpp>
#include <preflight/server/api.hpp>

namespace preflight::server {

namespace {

std::string counter(std::string_view name, std::string_view help, std::uint64_t v, std::string_view type = "counter") {
    std::string s;
    gates::append_prometheus_metric(s, name, type, help, v);
    return s;
}

}  // namespace

std::string api::metrics_text() const {
    std::string out;
    try {
        out = pipeline_.metrics().prometheus_text();
    } catch (const std::logic_error&) {
        // metrics disabled in this pipeline: nothing to show for it
    }
    if (server_ != nullptr) {
        const auto& s = server_->stats();
        const auto get = [](const auto& a) { return static_cast<std::uint64_t>(a.load(std::memory_order_relaxed)); };
        out +=
            counter("preflight_http_connections_accepted_total", "Connections accepted.", get(s.connections_accepted));
        out += counter(
            "preflight_http_connections_rejected_total",
            "Connections closed at once (over max_connections).",
            get(s.connections_rejected)
        );
        out += counter("preflight_http_open_connections", "Open connections.", get(s.open_connections), "gauge");
        out += counter("preflight_http_requests_total", "HTTP requests read.", get(s.requests));
        out += counter("preflight_http_bad_requests_total", "Unparsable HTTP requests (400).", get(s.bad_requests));
        out += counter("preflight_http_too_large_total", "Requests over the size limit (413).", get(s.too_large));
        out += counter("preflight_http_timeouts_total", "Slow or idle connections dropped.", get(s.timeouts));
        out += counter("preflight_http_handler_errors_total", "Internal errors (500).", get(s.handler_errors));
    }
    const auto get = [](const auto& a) { return a.load(std::memory_order_relaxed); };
    out += counter(
        "preflight_api_preflight_requests_total", "POST /v1/preflight requests.", get(stats_.preflight_requests)
    );
    out +=
        counter("preflight_api_batch_requests_total", "POST /v1/preflight/batch requests.", get(stats_.batch_requests));
    out += counter(
        "preflight_api_auth_requests_total", "GET/HEAD/POST /v1/auth requests (gateways).", get(stats_.auth_requests)
    );
    out += counter(
        "preflight_api_invalid_requests_total",
        "Preflight bodies refused by validation (400).",
        get(stats_.invalid_requests)
    );
    out += counter("preflight_api_not_found_total", "404 answers.", get(stats_.not_found));
    out += counter("preflight_api_method_not_allowed_total", "405 answers.", get(stats_.method_not_allowed));
    out += counter("preflight_leases_held", "Leases granted and not yet released or expired.", leases_.held(), "gauge");
    out += counter(
        "preflight_lease_registry_entries",
        "Lease registry entries (held + released tombstones).",
        leases_.size(),
        "gauge"
    );
    out += counter("preflight_lease_registry_capacity", "Lease registry bound.", leases_.capacity(), "gauge");
    out += counter(
        "preflight_lease_registry_full_total",
        "Admissions refused because the registry was full.",
        get(stats_.lease_registry_full)
    );
    out += counter("preflight_lease_releases_total", "Leases released by the caller.", get(stats_.releases));
    out += counter("preflight_lease_renewals_total", "Leases renewed by the caller.", get(stats_.renewals));
    out += counter("preflight_lease_renew_failures_total", "Renewals the store failed.", get(stats_.renew_failures));
    out +=
        counter("preflight_lease_release_failures_total", "Releases the store failed.", get(stats_.release_failures));
    if (params_.extra_metrics) out += params_.extra_metrics();
    return out;
}

}  // namespace preflight::server
