#include <preflight/gates/decision_json.hpp>
#include <preflight/gates/http.hpp>
#include <preflight/gates/json_writer.hpp>

namespace preflight::gates {
namespace {

namespace jw = json_writer;

std::chrono::milliseconds::rep whole_seconds_at_least_one(std::chrono::milliseconds ms) {
    // Rounds up without `count() + 999`, which overflowed for a retry-after near the maximum (fuzz finding).
    const auto c = ms.count();
    const auto s = c / 1000 + (c % 1000 > 0 ? 1 : 0);
    return s < 1 ? 1 : s;
}

/// Appends an sf-string (RFC 8941): quotes and backslashes escaped. Gate names are validated when a pipeline is
/// built, but this is a header value: anything outside printable ASCII (CR, LF, other controls, non-ASCII
/// bytes), which an sf-string cannot carry, becomes '?' so that no name can inject a header line.
void append_sf_string(std::string& out, std::string_view s) {
    out += '"';
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
}

/// The RateLimit-Policy and RateLimit values under construction; a thread's buffers are reused from one answer to
/// the next (taken out for the call, so that a nested call cannot clobber them).
struct rate_limit_values {
    std::string policy;
    std::string state;
};
thread_local rate_limit_values reusable_values;

}  // namespace

const std::string* http_response::header(std::string_view name) const noexcept {
    for (const auto& [k, v] : headers) {
        if (k == name) return &v;
    }
    return nullptr;
}

void for_each_http_field(
    const decision& d, const std::function<void(std::string_view name, std::string_view value)>& emit
) {
    if (!d.allowed && (d.status == 429 || (d.status == 503 && d.retry_after))) {
        std::string seconds;  // short: in the string's own storage for any retry-after under 30 million years
        jw::number(seconds, whole_seconds_at_least_one(d.retry_after.value_or(std::chrono::seconds{1})));
        emit("Retry-After", seconds);
    }
    rate_limit_values v = std::move(reusable_values);
    v.policy.clear();
    v.state.clear();
    const auto add = [&](std::string_view gate, const limiter_info& l) {
        if (l.window.count() <= 0) return;  // a concurrency or monthly quota: not a time-window policy
        if (!v.policy.empty()) {
            v.policy += ", ";
            v.state += ", ";
        }
        append_sf_string(v.policy, gate);
        v.policy += ";q=";
        jw::number(v.policy, l.limit);
        v.policy += ";w=";
        jw::number(v.policy, l.window.count());
        append_sf_string(v.state, gate);
        v.state += ";r=";
        jw::number(v.state, l.remaining);
        v.state += ";t=";
        jw::number(v.state, l.reset.count());
    };
    if (!d.allowed) {
        if (d.limiter) add(d.gate, *d.limiter);
    } else {
        for (const auto& t : d.trace) {
            if (t.outcome == gate_outcome::pass && t.limiter) add(t.gate, *t.limiter);
        }
    }
    if (!v.policy.empty()) {
        emit("RateLimit-Policy", v.policy);
        emit("RateLimit", v.state);
    }
    reusable_values = std::move(v);
}

std::vector<std::pair<std::string, std::string>> http_fields(const decision& d) {
    std::vector<std::pair<std::string, std::string>> out;
    for_each_http_field(d, [&](std::string_view name, std::string_view value) { out.emplace_back(name, value); });
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
