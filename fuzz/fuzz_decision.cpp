// Fuzz target: the decision → JSON / HTTP mapping (`decision::to_json`, `gates::to_http`) with fuzzed denial
// text, gate names, statuses, retry-after and limiter values, and trace reasons.
// Must hold for every input: both bodies are valid JSON (valid UTF-8 included) that round-trip the text fields
// when they were valid UTF-8; every header name and value is free of control characters (no CR/LF injection);
// `Retry-After` is a positive whole number of seconds.

#include "fuzz_check.hpp"
#include <preflight/gates/decision.hpp>
#include <preflight/gates/http.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace {

using preflight::fuzz::require;

bool valid_utf8(std::string_view s) {
    boost::system::error_code ec;
    std::string quoted = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;  // the serializer escapes controls
    }
    quoted += '"';
    (void)boost::json::parse(quoted, ec);
    return !ec;
}

bool header_safe(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

boost::json::value parse_or_die(const std::string& text, std::string_view what) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) preflight::fuzz::finding(std::string(what) + " is not valid JSON (" + ec.message() + "): " + text);
    return v;
}

void check_text(const boost::json::object& o, std::string_view key, const std::string& expected) {
    const auto* v = o.if_contains(key);
    require(v && v->is_string(), std::string("missing text field ") + std::string(key));
    if (valid_utf8(expected))
        require(v->get_string() == expected, std::string("text not round-tripped: ") + std::string(key));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    preflight::fuzz::byte_reader in(data, size);
    preflight::gates::decision d;
    const auto flags = in.u8();
    d.allowed = (flags & 1) != 0;
    d.status = static_cast<int>(static_cast<std::int16_t>(in.u8() << 8 | in.u8()));
    d.code = in.str();
    d.message = in.str(1024);
    d.gate = in.str();
    if (flags & 2) d.retry_after = std::chrono::milliseconds{static_cast<std::int64_t>(in.u64())};
    if (flags & 4) {
        preflight::gates::limiter_info l;
        l.limit = in.u64();
        l.remaining = in.u64();
        l.window = std::chrono::seconds{static_cast<std::int64_t>(in.u64())};
        l.reset = std::chrono::seconds{static_cast<std::int64_t>(in.u64())};
        d.limiter = l;
    }
    const unsigned traces = in.u8() % 4u;
    for (unsigned i = 0; i < traces; ++i) {
        preflight::gates::gate_trace t;
        t.gate = in.str();
        t.reason = in.str();
        t.outcome = static_cast<preflight::gates::gate_outcome>(in.u8() % preflight::gates::gate_outcome_count);
        t.started = std::chrono::nanoseconds{static_cast<std::int64_t>(in.u64())};
        t.duration = std::chrono::nanoseconds{static_cast<std::int64_t>(in.u64())};
        d.trace.push_back(std::move(t));
    }

    const auto json = parse_or_die(boost::json::serialize(d.to_json()), "decision::to_json()");
    require(json.is_object(), "decision::to_json() is not an object");
    if (!d.allowed) {
        check_text(json.get_object(), "code", d.code);
        check_text(json.get_object(), "message", d.message);
        check_text(json.get_object(), "gate", d.gate);
    }
    const auto* trace = json.get_object().if_contains("trace");
    require(trace && trace->is_array() && trace->get_array().size() == d.trace.size(), "trace lost entries");
    for (std::size_t i = 0; i < d.trace.size(); ++i) {
        check_text(trace->get_array()[i].get_object(), "gate", d.trace[i].gate);
    }

    const auto res = preflight::gates::to_http(d);
    const auto body = parse_or_die(res.body, "to_http body");
    require(body.is_object(), "to_http body is not an object");
    if (!d.allowed) {
        const auto* err = body.get_object().if_contains("error");
        require(err && err->is_object(), "denial body without error object");
        check_text(err->get_object(), "message", d.message);
        check_text(err->get_object(), "code", d.code);
    }
    for (const auto& [name, value] : res.headers) {
        require(!name.empty() && header_safe(name), "unsafe header name");
        require(header_safe(value), "unsafe value in header " + name);
    }
    if (const auto* ra = res.header("Retry-After")) {
        require(!ra->empty() && ra->find_first_not_of("0123456789") == std::string::npos, "Retry-After not digits");
        require(*ra != "0", "Retry-After is 0");
    }
    return 0;
}
