#pragma once

#include <preflight/clients/facts/balance_source.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace preflight::clients {

/// Where and how to reach an HTTP JSON billing provider.
/// The provider answers `GET {path_prefix}{url-encoded org id}` with 200 and
/// `{"allowed": bool, "remaining": int (optional), "reason": string (optional)}`, or 404 for an unknown
/// customer.
struct http_balance_config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 80;
    std::string path_prefix = "/v1/balance/";
    std::string api_key;  ///< sent as `Authorization: Bearer …`; never logged
    std::chrono::steady_clock::duration timeout = std::chrono::seconds{2};  ///< whole call, connect included
    std::size_t max_idle_connections = 16;                                  ///< keep-alive pool size
};

/// Balance source over HTTP/1.1 (Boost.Beast) with keep-alive connection reuse.
/// Errors: `errc::not_found` (404), `errc::timeout` (over the budget), `errc::store_unavailable` (connect
/// failure, 5xx, broken connection), `errc::protocol_error` (a body that is not the expected JSON).
/// Cancellation: a cancelled `check` closes its connection (it is not returned to the pool).
/// Thread safety: `check` may be called concurrently from any thread; each call uses its own connection.
class http_balance_source final : public balance_source {
public:
    http_balance_source(boost::asio::any_io_executor ex, http_balance_config config);
    ~http_balance_source() override;

    boost::asio::awaitable<result<balance_outcome>> check(std::string org_id) override;

    /// Connections currently parked for reuse (for tests and metrics).
    [[nodiscard]] std::size_t idle_connections() const;
    /// Connections opened so far.
    [[nodiscard]] std::uint64_t connections_opened() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

/// Percent-encodes everything but unreserved characters (RFC 3986), for a path segment.
[[nodiscard]] std::string url_encode_segment(std::string_view s);

}  // namespace preflight::clients
