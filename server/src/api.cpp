// The api: its endpoint table and the preflight endpoints. Leases: api_leases.cpp; /metrics: api_metrics.cpp;
// request bodies: request_json.cpp; configuration keys and the command line: server_config.cpp.
#include "api_answers.hpp"
#include <preflight/gates/decision_json.hpp>
#include <preflight/gates/http.hpp>
#include <preflight/gates/json_writer.hpp>
#include <preflight/server/api.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <utility>

// g++ 12 at -O2 reports -Wmismatched-new-delete for Asio's awaitable frames once it inlines their recycling
// allocator (aligned_new behind operator new, the class's own operator delete): a false positive, the pair is
// Asio's own (awaitable_frame_base::operator new/delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace preflight::server {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace jw = gates::json_writer;
using detail::error_response;

namespace {

// A route: an exact path, or a pattern with one `{id}` segment (the lease id, at most 256 bytes, no '/').
struct route {
    std::string_view path;
    std::string_view allow;  ///< the methods, as the Allow field lists them
    bool (*accepts)(http::verb);
    boost::asio::awaitable<http_response> (api::*handle)(const http_request&, std::string_view);
};

bool is_post(http::verb v) {
    return v == http::verb::post;
}
bool is_get(http::verb v) {
    return v == http::verb::get;
}
bool is_get_head_or_post(http::verb v) {
    return v == http::verb::get || v == http::verb::head || v == http::verb::post;
}

// `target` matched against `pattern`; the `{id}` part in `id`.
bool matches(std::string_view pattern, std::string_view target, std::string_view& id) {
    const auto brace = pattern.find("{id}");
    if (brace == std::string_view::npos) return pattern == target;
    const auto prefix = pattern.substr(0, brace);
    const auto suffix = pattern.substr(brace + 4);
    if (target.size() <= prefix.size() + suffix.size() || !target.starts_with(prefix) || !target.ends_with(suffix)) {
        return false;
    }
    id = target.substr(prefix.size(), target.size() - prefix.size() - suffix.size());
    return id.find('/') == std::string_view::npos && id.size() <= 256;
}

}  // namespace

struct api::routes {
    static constexpr std::array<route, 8> table{{
        {"/v1/preflight", "POST", is_post, &api::preflight},
        {"/v1/preflight/batch", "POST", is_post, &api::preflight_batch},
        {"/v1/auth", "GET, HEAD, POST", is_get_head_or_post, &api::auth},
        {"/v1/leases/{id}/release", "POST", is_post, &api::release},
        {"/v1/leases/{id}/renew", "POST", is_post, &api::renew},
        {"/healthz", "GET", is_get, &api::healthz},
        {"/metrics", "GET", is_get, &api::metrics},
        {"/v1/config", "GET", is_get, &api::config},
    }};
};

api::api(gates::pipeline pipeline, api_params params)
    : pipeline_(std::move(pipeline)),
      params_(std::move(params)),
      leases_(params_.max_leases, params_.lease_ttl, *params_.clock, params_.max_released_leases),
      config_body_(json::serialize(params_.effective_config)) {}

http_handler api::handler() {
    return [this](http_request req) { return handle(std::move(req)); };
}

boost::asio::awaitable<http_response> api::handle(http_request req) {
    std::string_view target(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    for (const route& r : routes::table) {
        std::string_view id;
        if (!matches(r.path, target, id)) continue;
        if (!r.accepts(req.method())) {
            stats_.method_not_allowed.fetch_add(1, std::memory_order_relaxed);
            auto res = error_response(
                405,
                "method_not_allowed",
                std::string(req.method_string()) + " is not allowed on " + detail::valid_text(target) +
                    " (allowed: " + std::string(r.allow) + ")",
                req.version(),
                req.keep_alive()
            );
            res.set(http::field::allow, r.allow);
            co_return res;
        }
        co_return co_await (this->*r.handle)(req, id);
    }
    stats_.not_found.fetch_add(1, std::memory_order_relaxed);
    co_return error_response(404, "not_found", "no endpoint " + jw::quoted(target), req.version(), req.keep_alive());
}

boost::asio::awaitable<api::answer> api::decide(gates::request r) {
    answer out;
    out.decision = co_await pipeline_.run(std::move(r));
    gates::decision& d = out.decision;
    // The body before the lease moves into the registry; reserved for a typical answer (~190 bytes per trace entry),
    // so that it grows once instead of doubling its way up from nothing.
    out.body.reserve(256 + 224 * d.trace.size());
    gates::append_answer_json(out.body, d);
    if (d.lease.held()) {
        if (!leases_.add(d.lease)) {  // on failure `d.lease` is untouched
            // Nobody could release it later: give the slot back now and refuse.
            stats_.lease_registry_full.fetch_add(1, std::memory_order_relaxed);
            const std::string id = d.lease.id();
            result<void> released = co_await d.lease.release();
            out.registry_full =
                "lease registry is full (" + std::to_string(leases_.capacity()) + " leases); retry later";
            if (!released) {
                out.registry_full += "; releasing lease " + jw::quoted(id) + " failed: " + released.error().message();
            }
        }
    }
    co_return out;
}

boost::asio::awaitable<http_response> api::preflight(const http_request& req, std::string_view) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    stats_.preflight_requests.fetch_add(1, std::memory_order_relaxed);
    auto parsed = parse_preflight_request(req.body(), params_.limits);
    if (auto* bad = std::get_if<request_error>(&parsed)) {
        stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
        const std::string_view field = bad->field;
        co_return error_response(400, "bad_request", bad->message, version, keep_alive, &field);
    }
    answer a = co_await decide(std::move(std::get<gates::request>(parsed)));
    if (!a.registry_full.empty()) {
        auto res = error_response(503, "lease_registry_full", a.registry_full, version, keep_alive);
        res.set(http::field::retry_after, "1");
        co_return res;
    }
    const gates::decision& d = a.decision;
    http_response res{d.allowed ? http::status::ok : static_cast<http::status>(d.status), version};
    res.set(http::field::content_type, "application/json");
    // Retry-After, RateLimit-Policy and RateLimit as gates::http_fields maps them (allowed answers too).
    gates::for_each_http_field(d, [&res](std::string_view name, std::string_view value) { res.set(name, value); });
    res.set(http::field::server, "preflightd");
    res.keep_alive(keep_alive);
    res.body() = std::move(a.body);
    res.prepare_payload();
    co_return res;
}

boost::asio::awaitable<http_response> api::preflight_batch(const http_request& req, std::string_view) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    stats_.batch_requests.fetch_add(1, std::memory_order_relaxed);
    auto parsed = parse_batch_request(req.body(), params_.limits);
    if (auto* bad = std::get_if<batch_error>(&parsed)) {
        stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
        const std::string_view field = bad->error.field;
        co_return error_response(
            bad->too_many ? 413 : 400,
            bad->too_many ? "too_many_requests_in_batch" : "bad_request",
            bad->error.message,
            version,
            keep_alive,
            &field
        );
    }
    auto& items = std::get<std::vector<gates::request>>(parsed);
    std::string body = R"({"results":[)";
    // One after another, in order: a later item sees what an earlier one consumed, as if sent one by one.
    for (std::size_t i = 0; i < items.size(); ++i) {
        stats_.preflight_requests.fetch_add(1, std::memory_order_relaxed);
        answer a = co_await decide(std::move(items[i]));
        if (i != 0) body.push_back(',');
        if (!a.registry_full.empty()) {
            body.append(R"({"status":503,"error":{"code":"lease_registry_full","message":)");
            jw::string(body, a.registry_full);
            body.append("}}");
            continue;
        }
        body.append(R"({"status":)");
        jw::number(body, a.decision.allowed ? 200 : a.decision.status);
        jw::key(body, "body");
        body.append(a.body);
        body.push_back('}');
    }
    body.append("]}");
    co_return json_response(200, std::move(body), version, keep_alive);
}

boost::asio::awaitable<http_response> api::metrics(const http_request& req, std::string_view) {
    http_response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::server, "preflightd");
    res.keep_alive(req.keep_alive());
    res.body() = metrics_text();
    res.prepare_payload();
    co_return res;
}

boost::asio::awaitable<http_response> api::config(const http_request& req, std::string_view) {
    co_return json_response(200, config_body_, req.version(), req.keep_alive());
}

boost::asio::awaitable<http_response> api::healthz(const http_request& req, std::string_view) {
    if (params_.health) {
        result<void> r = co_await params_.health();
        if (!r) {
            std::string body = R"({"status":"unavailable","error":)";
            jw::string(body, r.error().message());
            body.push_back('}');
            co_return json_response(503, std::move(body), req.version(), req.keep_alive());
        }
    }
    co_return json_response(200, R"({"status":"ok"})", req.version(), req.keep_alive());
}

}  // namespace preflight::server
