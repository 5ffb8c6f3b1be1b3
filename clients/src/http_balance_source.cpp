#include <preflight/clients/http_balance_source.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <charconv>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace preflight::clients {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string url_encode_segment(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        }
    }
    return out;
}

struct http_balance_source::impl {
    impl(asio::any_io_executor e, http_balance_config c) : ex(std::move(e)), config(std::move(c)) {}

    asio::any_io_executor ex;
    http_balance_config config;
    mutable std::mutex mutex;
    std::vector<std::unique_ptr<beast::tcp_stream>> idle;
    std::atomic<std::uint64_t> opened{0};

    std::unique_ptr<beast::tcp_stream> take() {
        std::lock_guard lock(mutex);
        if (idle.empty()) return nullptr;
        auto s = std::move(idle.back());
        idle.pop_back();
        return s;
    }

    void give_back(std::unique_ptr<beast::tcp_stream> s) {
        std::lock_guard lock(mutex);
        if (idle.size() < config.max_idle_connections) idle.push_back(std::move(s));
    }

    // One attempt on one connection; `reused` tells whether a stale keep-alive connection may be the cause
    // of a failure (then the caller retries once on a fresh connection).
    asio::awaitable<result<balance_outcome>> attempt(
        const std::string& target, std::unique_ptr<beast::tcp_stream>& stream, bool& stale
    ) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        http::request<http::string_body> req{http::verb::get, target, 11};
        req.set(http::field::host, config.host);
        req.set(http::field::accept, "application/json");
        req.set(http::field::user_agent, "preflight");
        if (!config.api_key.empty()) req.set(http::field::authorization, "Bearer " + config.api_key);
        req.keep_alive(true);

        auto [wec, wn] = co_await http::async_write(*stream, req, tuple);
        (void)wn;
        if (wec) {
            stale = true;
            co_return wec == beast::error::timeout ? errc::timeout : errc::store_unavailable;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        auto [rec, rn] = co_await http::async_read(*stream, buffer, parser, tuple);
        (void)rn;
        if (rec) {
            stale = rec != beast::error::timeout;
            co_return rec == beast::error::timeout ? errc::timeout : errc::store_unavailable;
        }
        auto res = parser.release();
        if (!res.keep_alive()) stream.reset();
        const auto status = res.result_int();
        if (status == 404) co_return errc::not_found;
        if (status >= 500) co_return errc::store_unavailable;
        if (status != 200) co_return errc::protocol_error;
        boost::system::error_code jec;
        auto body = json::parse(res.body(), jec);
        if (jec || !body.is_object()) co_return errc::protocol_error;
        const auto& obj = body.get_object();
        const auto* allowed = obj.if_contains("allowed");
        if (!allowed || !allowed->is_bool()) co_return errc::protocol_error;
        balance_outcome out;
        out.allowed = allowed->get_bool();
        if (const auto* rem = obj.if_contains("remaining"); rem && rem->is_int64()) out.remaining = rem->get_int64();
        if (const auto* reason = obj.if_contains("reason"); reason && reason->is_string()) {
            out.reason = std::string(reason->get_string());
        }
        co_return out;
    }
};

http_balance_source::http_balance_source(asio::any_io_executor ex, http_balance_config config)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(config))) {}

http_balance_source::~http_balance_source() = default;

std::size_t http_balance_source::idle_connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->idle.size();
}

std::uint64_t http_balance_source::connections_opened() const {
    return impl_->opened.load();
}

asio::awaitable<result<balance_outcome>> http_balance_source::check(std::string org_id) {
    auto self = impl_;  // keeps the pool alive for the whole call
    const auto& cfg = self->config;
    const auto deadline = std::chrono::steady_clock::now() + cfg.timeout;
    const std::string target = cfg.path_prefix + url_encode_segment(org_id);
    auto ex = co_await asio::this_coro::executor;

    for (int round = 0; round < 2; ++round) {
        auto stream = self->take();
        const bool reused = stream != nullptr;
        if (!stream) {
            stream = std::make_unique<beast::tcp_stream>(ex);
            stream->expires_at(deadline);
            tcp::endpoint ep;
            boost::system::error_code aec;
            ep = tcp::endpoint(asio::ip::make_address(cfg.host, aec), cfg.port);
            if (aec) {
                // A host name: resolve it (bounded by the same deadline through the stream's timer).
                tcp::resolver resolver(ex);
                auto [rec, results] = co_await resolver.async_resolve(
                    cfg.host, std::to_string(cfg.port), asio::as_tuple(asio::use_awaitable)
                );
                if (rec || results.empty()) co_return errc::store_unavailable;
                ep = *results.begin();
            }
            auto [cec] = co_await stream->async_connect(ep, asio::as_tuple(asio::use_awaitable));
            if (cec) co_return cec == beast::error::timeout ? errc::timeout : errc::store_unavailable;
            self->opened.fetch_add(1, std::memory_order_relaxed);
        }
        stream->expires_at(deadline);
        bool stale = false;
        auto out = co_await self->attempt(target, stream, stale);
        if (out.has_error() && stale && reused && std::chrono::steady_clock::now() < deadline) {
            continue;  // the provider closed an idle keep-alive connection: retry once on a fresh one
        }
        if (stream && (out.has_value() || out.error() == errc::not_found)) {
            stream->expires_never();
            self->give_back(std::move(stream));
        }
        co_return out;
    }
    co_return errc::store_unavailable;
}

std::string http_balance_url_for_messages(std::string_view url) {
    std::string_view kept = url.substr(0, url.find_first_of("?#"));
    const bool cut = kept.size() < url.size();
    const auto scheme_end = kept.find("://");
    const std::size_t authority_at = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const std::size_t authority_end = std::min(kept.find('/', authority_at), kept.size());
    const auto at = kept.substr(0, authority_end).rfind('@');
    std::string out(kept);
    if (at != std::string_view::npos && at >= authority_at) {
        out = std::string(kept.substr(0, authority_at)) + "***" + std::string(kept.substr(at));
    }
    return cut ? out + "?***" : out;
}

http_balance_config parse_http_balance_url(std::string_view url, http_balance_config base) {
    auto bad = [](std::string why) { return std::invalid_argument("balance provider URL: " + std::move(why)); };
    const std::string shown = http_balance_url_for_messages(url);  // never the query or credentials
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme)) {
        if (url.starts_with("https://")) throw bad("https is not supported (use http:// to a local TLS proxy)");
        throw bad("must start with http://");
    }
    std::string_view rest = url.substr(scheme.size());
    const auto path_at = rest.find('/');
    std::string_view authority = rest.substr(0, path_at);
    std::string_view path = path_at == std::string_view::npos ? std::string_view{} : rest.substr(path_at);
    if (authority.find('@') != std::string_view::npos) {
        throw bad("must not contain credentials (user:password@); pass the secret as the API key");
    }
    if (path.find_first_of("?#") != std::string_view::npos || authority.find_first_of("?#") != std::string_view::npos) {
        throw bad("must not have a query or fragment: '" + shown + "'");
    }
    std::string_view host;
    std::string_view port_text;
    if (authority.starts_with('[')) {  // [IPv6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) throw bad("unterminated IPv6 address in '" + shown + "'");
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') throw bad("bad text after the IPv6 address in '" + shown + "'");
            port_text = after.substr(1);
            if (port_text.empty()) throw bad("empty port in '" + shown + "'");
        }
    } else {
        const auto colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (host.find(':') != std::string_view::npos) {
            throw bad("put an IPv6 address in brackets: '" + shown + "'");
        }
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) throw bad("empty port in '" + shown + "'");
        }
    }
    if (host.empty()) throw bad("no host in '" + shown + "'");
    base.host = std::string(host);
    base.port = 80;
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
            throw bad("bad port '" + std::string(port_text) + "' in '" + shown + "' (1-65535)");
        }
        base.port = static_cast<std::uint16_t>(value);
    }
    if (path.empty() || path == "/") {
        base.path_prefix = "/v1/balance/";
    } else {
        base.path_prefix = std::string(path);
        if (base.path_prefix.back() != '/') base.path_prefix.push_back('/');
    }
    return base;
}

std::string http_balance_url(const http_balance_config& c) {
    const bool v6 = c.host.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port) + c.path_prefix;
}

http_balance_clients::http_balance_clients(
    asio::any_io_executor ex, cache::client_memoizer_params params, const preflight::clock& clk
)
    : ex_(std::move(ex)), memo_(params, clk) {}

cache::client_credentials http_balance_clients::credentials_of(const http_balance_config& config) {
    cache::client_credentials c;
    const auto timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(config.timeout).count();
    c.provider = "http_balance;timeout_us=" + std::to_string(timeout_us) +
                 ";max_idle=" + std::to_string(config.max_idle_connections);
    c.base_url = http_balance_url(config);
    c.secret = cache::secret_string(config.api_key);
    return c;
}

std::shared_ptr<http_balance_source> http_balance_clients::get(const http_balance_config& config) {
    return memo_.get_or_create(credentials_of(config), [&](const cache::client_credentials&) {
        return std::make_shared<http_balance_source>(ex_, config);
    });
}

}  // namespace preflight::clients
