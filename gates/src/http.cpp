#include <preflight/gates/http.hpp>

#include <boost/json/serialize.hpp>

namespace preflight::gates {
namespace {

std::string whole_seconds_at_least_one(std::chrono::milliseconds ms) {
    auto s = (ms.count() + 999) / 1000;
    return std::to_string(s < 1 ? 1 : s);
}

/// An sf-string (RFC 8941): quotes and backslashes escaped. Gate names are validated at build time.
std::string sf_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

}  // namespace

const std::string* http_response::header(std::string_view name) const noexcept {
    for (const auto& [k, v] : headers) {
        if (k == name) return &v;
    }
    return nullptr;
}

http_response to_http(const decision& d) {
    http_response r;
    r.headers.emplace_back("Content-Type", "application/json");
    if (d.allowed) {
        r.status = 200;
        r.body = boost::json::serialize(d.to_json());
        return r;
    }
    r.status = d.status;
    boost::json::object err;
    err["code"] = d.code;
    err["message"] = d.message;
    err["gate"] = d.gate;
    boost::json::object body;
    body["error"] = std::move(err);
    r.body = boost::json::serialize(body);
    if (d.status == 429 || d.retry_after) {
        r.headers.emplace_back(
            "Retry-After", whole_seconds_at_least_one(d.retry_after.value_or(std::chrono::seconds{1}))
        );
    }
    if (d.limiter) {
        const auto& l = *d.limiter;
        auto name = sf_string(d.gate);
        r.headers.emplace_back(
            "RateLimit-Policy", name + ";q=" + std::to_string(l.limit) + ";w=" + std::to_string(l.window.count())
        );
        r.headers.emplace_back(
            "RateLimit", name + ";r=" + std::to_string(l.remaining) + ";t=" + std::to_string(l.reset.count())
        );
    }
    return r;
}

}  // namespace preflight::gates
