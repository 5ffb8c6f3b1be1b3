#include <preflight/gates/decision_json.hpp>
#include <preflight/gates/http.hpp>

namespace preflight::gates {
namespace {

std::string whole_seconds_at_least_one(std::chrono::milliseconds ms) {
    // Rounds up without `count() + 999`, which overflowed for a retry-after near the maximum (fuzz finding).
    const auto c = ms.count();
    const auto s = c / 1000 + (c % 1000 > 0 ? 1 : 0);
    return std::to_string(s < 1 ? 1 : s);
}

/// An sf-string (RFC 8941): quotes and backslashes escaped. Gate names are validated when a pipeline is
/// built, but this is a header value: anything outside printable ASCII (CR, LF, other controls, non-ASCII
/// bytes), which an sf-string cannot carry, becomes '?' so that no name can inject a header line.
std::string sf_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e) {
            out += '?';
            continue;
        }
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

std::vector<std::pair<std::string, std::string>> http_fields(const decision& d) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!d.allowed && (d.status == 429 || (d.status == 503 && d.retry_after))) {
        out.emplace_back("Retry-After", whole_seconds_at_least_one(d.retry_after.value_or(std::chrono::seconds{1})));
    }
    std::string policy;
    std::string state;
    const auto add = [&](std::string_view gate, const limiter_info& l) {
        if (l.window.count() <= 0) return;  // a concurrency or monthly quota: not a time-window policy
        const auto name = sf_string(gate);
        if (!policy.empty()) {
            policy += ", ";
            state += ", ";
        }
        policy += name + ";q=" + std::to_string(l.limit) + ";w=" + std::to_string(l.window.count());
        state += name + ";r=" + std::to_string(l.remaining) + ";t=" + std::to_string(l.reset.count());
    };
    if (!d.allowed) {
        if (d.limiter) add(d.gate, *d.limiter);
    } else {
        for (const auto& t : d.trace) {
            if (t.outcome == gate_outcome::pass && t.limiter) add(t.gate, *t.limiter);
        }
    }
    if (!policy.empty()) {
        out.emplace_back("RateLimit-Policy", std::move(policy));
        out.emplace_back("RateLimit", std::move(state));
    }
    return out;
}

http_response to_http(const decision& d) {
    http_response r;
    r.status = d.allowed ? 200 : d.status;
    r.headers.emplace_back("Content-Type", "application/json");
    auto fields = http_fields(d);
    r.headers.insert(r.headers.end(), std::make_move_iterator(fields.begin()), std::make_move_iterator(fields.end()));
    append_answer_json(r.body, d);
    return r;
}

}  // namespace preflight::gates
