// POST /v1/leases/{id}/release and /renew.
#include "api_answers.hpp"
#include <preflight/gates/json_writer.hpp>
#include <preflight/server/api.hpp>

namespace preflight::server {

namespace jw = gates::json_writer;
using detail::error_response;

boost::asio::awaitable<http_response> api::renew(const http_request& req, std::string_view id_view) {
    const std::string id(id_view);
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    boost::system::error_code ec;
    const renew_status st = co_await leases_.renew(id, &ec);
    switch (st) {
        case renew_status::renewed:
            stats_.renewals.fetch_add(1, std::memory_order_relaxed);
            co_return json_response(
                200,
                R"({"renewed":true,"lease_id":)" + jw::quoted(id) + R"(,"ttl_ms":)" +
                    std::to_string(leases_.ttl().count()) + "}",
                version,
                keep_alive
            );
        case renew_status::expired:
        case renew_status::unknown:
            stats_.not_found.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                404, "lease_not_found", "no lease " + jw::quoted(id) + " (unknown, or expired)", version, keep_alive
            );
        case renew_status::released:
            co_return error_response(
                409, "lease_released", "lease " + jw::quoted(id) + " was released; take a new one", version, keep_alive
            );
        case renew_status::failed:
            stats_.renew_failures.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                503,
                "lease_renew_failed",
                "renewing lease " + jw::quoted(id) + " failed: " + ec.message(),
                version,
                keep_alive
            );
    }
    co_return error_response(500, "internal", "unexpected renew status", version, keep_alive);
}

boost::asio::awaitable<http_response> api::release(const http_request& req, std::string_view id) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    auto usage = parse_release_body(req.body());
    if (auto* bad = std::get_if<request_error>(&usage)) {
        stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
        co_return error_response(400, "bad_request", std::move(bad->message), version, keep_alive);
    }
    const auto [requests, tokens] = std::get<release_usage>(usage);
    boost::system::error_code ec;
    const release_status st = co_await leases_.release(std::string(id), &ec, requests, tokens);
    switch (st) {
        case release_status::released:
            stats_.releases.fetch_add(1, std::memory_order_relaxed);
            {
                // One allocation for the body (the hot path of W7's release requests).
                std::string body;
                body.reserve(48 + id.size());
                body += R"({"released":true,"lease_id":)";
                jw::string(body, id);
                body += '}';
                co_return json_response(200, std::move(body), version, keep_alive);
            }
        case release_status::already_released:
            co_return json_response(
                200,
                R"({"released":true,"already_released":true,"lease_id":)" + jw::quoted(id) + "}",
                version,
                keep_alive
            );
        case release_status::unknown:
            stats_.not_found.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                404, "lease_not_found", "no lease " + jw::quoted(id) + " (unknown, or expired)", version, keep_alive
            );
        case release_status::failed: break;
    }
    stats_.release_failures.fetch_add(1, std::memory_order_relaxed);
    co_return error_response(
        503,
        "release_failed",
        "releasing lease " + jw::quoted(id) + " failed: " + ec.message() + " (it expires with its ttl)",
        version,
        keep_alive
    );
}

}  // namespace preflight::server
