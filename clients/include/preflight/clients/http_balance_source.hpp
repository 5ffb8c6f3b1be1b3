#pragma once

#include <preflight/cache/client_key.hpp>
#include <preflight/cache/client_memoizer.hpp>
#include <preflight/clients/facts/balance_source.hpp>
#include <preflight/core/clock.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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

/// Fills `host`, `port` and `path_prefix` of `base` from a provider URL `http://HOST[:PORT][/PATH/PREFIX/]`
/// (port 80 by default; path "/v1/balance/" when absent or "/"; a trailing '/' is added to the prefix: the org id
/// follows it). HOST is a name, an IPv4 address or a bracketed IPv6 address. Other fields of `base` are kept.
/// Throws `std::invalid_argument` for another scheme (https is not supported), an empty host, a bad port, a query
/// or fragment, or credentials in the URL (`user:password@`: pass the secret as `api_key`); the message never
/// repeats a URL that may carry credentials. Thread safety: pure function.
[[nodiscard]] http_balance_config parse_http_balance_url(std::string_view url, http_balance_config base = {});

/// `url` as an error message may show it: credentials (`user:password@`) become `***@`, a query or fragment (which
/// may carry a token) becomes `?***`. Thread safety: pure function.
[[nodiscard]] std::string http_balance_url_for_messages(std::string_view url);

/// The provider URL of `c` (`http://host:port/path/prefix/`), without the secret.
[[nodiscard]] std::string http_balance_url(const http_balance_config& c);

/// Memoized HTTP balance clients: one `http_balance_source` (with its keep-alive connections) per provider URL and
/// fingerprint of the API key, through `cache::client_memoizer`. A rotated key gets a new client; the same key gets
/// the same client (and its warm connections). Client settings that are not credentials (timeout, idle connection
/// bound) are part of the key too, so two callers with different timeouts never share a client.
/// Eviction (capacity, idle ttl) only drops the memoizer's reference: a client still held by a caller (e.g. a
/// pipeline's store set) keeps working and is destroyed with its last holder; it is never closed under a user.
/// Thread safety: `get` may be called concurrently from any thread. Lifetime: `clk` must outlive this object; the
/// clients run on `ex`, whose execution context must outlive every client.
class http_balance_clients {
public:
    explicit http_balance_clients(
        boost::asio::any_io_executor ex,
        cache::client_memoizer_params params = {},
        const preflight::clock& clk = preflight::clock::steady()
    );

    /// The client of `config`: the memoized one, or a new one on the executor given at construction.
    [[nodiscard]] std::shared_ptr<http_balance_source> get(const http_balance_config& config);

    /// Memoized clients (live, not yet evicted).
    [[nodiscard]] std::size_t size() const { return memo_.size(); }
    [[nodiscard]] cache::cache_stats stats() const { return memo_.stats(); }

    /// The memoization credentials of `config`: provider "http_balance" with the client settings, `base_url` the
    /// provider URL, the API key as the (fingerprinted, never stored) secret.
    [[nodiscard]] static cache::client_credentials credentials_of(const http_balance_config& config);

private:
    boost::asio::any_io_executor ex_;
    cache::client_memoizer<http_balance_source> memo_;
};

}  // namespace preflight::clients
