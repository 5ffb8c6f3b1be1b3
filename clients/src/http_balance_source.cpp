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
#include <mutex>
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

}  // namespace preflight::clients
