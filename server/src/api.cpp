#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/gates/http.hpp>
#include <preflight/gates/operation.hpp>
#include <preflight/gates/utf8.hpp>
#include <preflight/server/api.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
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

namespace {

// Request targets and lease ids are raw bytes: quoted in a message (serialised byte for byte by Boost.JSON) a
// target with invalid UTF-8 made the body invalid JSON (found by fuzz/fuzz_http.cpp; corpus
// regress-404-invalid-utf8-target, regress-405-invalid-utf8-target). `s` with every byte that is not part of a
// well-formed UTF-8 sequence replaced by U+FFFD.
std::string valid_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    gates::append_valid_utf8(out, s);
    return out;
}

// `s` as a JSON string literal appended to `out`.
void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        // A run of bytes that need no escaping goes in one append (gate names, codes, ids: the whole string).
        std::size_t plain = i;
        while (plain < s.size()) {
            const auto c = static_cast<unsigned char>(s[plain]);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
            ++plain;
        }
        if (plain > i) {
            out.append(s.data() + i, plain - i);
            i = plain;
            if (i == s.size()) break;
        }
        const auto b0 = static_cast<unsigned char>(s[i]);
        if (b0 < 0x80) {
            switch (b0) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (b0 < 0x20) {
                        out.append("\\u00");
                        out.push_back(hex[b0 >> 4]);
                        out.push_back(hex[b0 & 0xf]);
                    } else {
                        out.push_back(static_cast<char>(b0));
                    }
            }
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence is copied; any other byte becomes U+FFFD, as gates::decision::to_json does.
        const std::size_t len = gates::utf8_sequence_length(s, i);
        const bool ok = len != 0;
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out.append("\xef\xbf\xbd");
            ++i;
        }
    }
    out.push_back('"');
}

template <class T>
void append_number(std::string& out, T v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// `"key":` (keys are literals that need no escaping).
void append_key(std::string& out, std::string_view key, bool first = false) {
    if (!first) out.push_back(',');
    out.push_back('"');
    out.append(key);
    out.append("\":");
}

void append_bool(std::string& out, bool b) {
    out.append(b ? "true" : "false");
}

// A duration in µs as a JSON number that reads back as a double ("0.0", not "0"), like Boost.JSON's "0E0".
void append_micros(std::string& out, std::chrono::nanoseconds ns) {
    char buf[48];
    const auto r = std::to_chars(buf, buf + sizeof buf, std::chrono::duration<double, std::micro>(ns).count());
    const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    out.append(text);
    if (text.find_first_of(".e") == std::string_view::npos) out.append(".0");
}

std::string quoted(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

// A short rendering of a bad value for an error message (never the whole of a large value).
std::string shown(const json::value& v) {
    std::string s = json::serialize(v);
    if (s.size() > 64) s = s.substr(0, 61) + "...";
    return s;
}

std::string_view kind_of(const json::value& v) {
    switch (v.kind()) {
        case json::kind::null: return "null";
        case json::kind::bool_: return "a boolean";
        case json::kind::int64:
        case json::kind::uint64:
        case json::kind::double_: return "a number";
        case json::kind::string: return "a string";
        case json::kind::array: return "an array";
        case json::kind::object: return "an object";
    }
    return "?";
}

constexpr std::array<std::pair<std::string_view, std::string gates::subject_keys::*>, 7> subject_fields{{
    {"user", &gates::subject_keys::user},
    {"org", &gates::subject_keys::org},
    {"workspace", &gates::subject_keys::workspace},
    {"ip", &gates::subject_keys::ip},
    {"api_key_id", &gates::subject_keys::api_key_id},
    {"run_id", &gates::subject_keys::run_id},
    {"request_id", &gates::subject_keys::request_id},
}};

http_response error_response(
    unsigned status,
    std::string_view code,
    std::string message,
    unsigned version,
    bool keep_alive,
    std::string_view field = {},
    bool with_field = false
) {
    json::object err;
    err["code"] = code;
    err["message"] = std::move(message);
    if (with_field) err["field"] = field;
    json::object body;
    body["error"] = std::move(err);
    return json_response(status, json::serialize(body), version, keep_alive);
}

std::string counter(std::string_view name, std::string_view help, std::uint64_t v, std::string_view type = "counter") {
    std::string s;
    gates::append_prometheus_metric(s, name, type, help, v);
    return s;
}

// The denial's fields (code, message, gate, retry_after_ms), shared by the decision and the error object.
void append_denial_fields(std::string& out, const gates::decision& d, bool first) {
    append_key(out, "code", first);
    append_json_string(out, d.code);
    append_key(out, "message");
    append_json_string(out, d.message);
    append_key(out, "gate");
    append_json_string(out, d.gate);
    if (d.retry_after) {
        append_key(out, "retry_after_ms");
        append_number(out, static_cast<std::int64_t>(d.retry_after->count()));
    }
    for (const auto& [k, v] : d.details) {
        out.push_back(',');
        append_json_string(out, k);  // set by a gate, escaped all the same
        out.push_back(':');
        append_json_string(out, v);
    }
}

void append_decision_json(std::string& out, const gates::decision& d) {
    out.push_back('{');
    append_key(out, "allowed", true);
    append_bool(out, d.allowed);
    append_key(out, "status");
    append_number(out, d.status);
    if (!d.allowed) append_denial_fields(out, d, false);
    if (d.lease.held()) {
        append_key(out, "lease_id");
        append_json_string(out, d.lease.id());
    }
    append_key(out, "trace");
    out.push_back('[');
    bool first = true;
    for (const auto& t : d.trace) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('{');
        append_key(out, "gate", true);
        append_json_string(out, t.gate);
        append_key(out, "phase");
        append_json_string(out, gates::to_string(t.phase));
        append_key(out, "outcome");
        append_json_string(out, gates::to_string(t.outcome));
        append_key(out, "started_us");
        append_micros(out, t.started);
        append_key(out, "duration_us");
        append_micros(out, t.duration);
        append_key(out, "fail_open");
        append_bool(out, t.fail_open);
        append_key(out, "shadow");
        append_bool(out, t.shadow);
        append_key(out, "would_deny");
        append_bool(out, t.would_deny);
        append_key(out, "compensated");
        append_bool(out, t.compensated);
        if (!t.reason.empty()) {
            append_key(out, "reason");
            append_json_string(out, t.reason);
        }
        if (!t.key.empty()) {
            append_key(out, "key");
            append_json_string(out, t.key);
        }
        if (t.limiter) {
            append_key(out, "limiter");
            out.push_back('{');
            append_key(out, "limit", true);
            append_number(out, t.limiter->limit);
            append_key(out, "remaining");
            append_number(out, t.limiter->remaining);
            append_key(out, "window_s");
            append_number(out, static_cast<std::int64_t>(t.limiter->window.count()));
            append_key(out, "reset_s");
            append_number(out, static_cast<std::int64_t>(t.limiter->reset.count()));
            out.push_back('}');
        }
        out.push_back('}');
    }
    out.append("]}");
}

}  // namespace

std::string decision_body(const gates::decision& d) {
    std::string out;
    out.reserve(256 + d.trace.size() * 160);
    append_decision_json(out, d);
    return out;
}

std::string denial_body(const gates::decision& d) {
    std::string out;
    out.reserve(384 + d.trace.size() * 160);
    out.append(R"({"error":{)");
    append_denial_fields(out, d, true);
    out.append(R"(},"decision":)");
    append_decision_json(out, d);
    out.push_back('}');
    return out;
}

std::variant<gates::request, request_error> parse_preflight_request(
    std::string_view body, const request_limits& limits
) {
    json::parse_options opt;
    opt.max_depth = limits.max_depth;
    boost::system::error_code ec;
    // The document lives only in this call: a monotonic arena on the stack (spilling to the heap for big bodies)
    // instead of one allocation per member; what is kept (the extension object) is copied out to the default
    // storage when it is moved into the request.
    unsigned char arena[4096];
    json::monotonic_resource mr(arena, sizeof arena);
    json::value doc = json::parse(body, ec, &mr, opt);
    if (ec) {
        if (ec == json::error::too_deep) {
            return request_error{"", "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels"};
        }
        return request_error{"", "malformed JSON: " + ec.message()};
    }
    if (!doc.is_object()) return request_error{"", "the body must be a JSON object, not " + std::string(kind_of(doc))};
    gates::request out;
    bool have_op = false;
    for (auto& [k, v] : doc.get_object()) {
        if (k == "operation") {
            if (!v.is_string()) {
                return request_error{"operation", "operation must be a string, not " + std::string(kind_of(v))};
            }
            auto op = gates::parse_operation(v.get_string());
            if (!op) {
                return request_error{
                    "operation",
                    "unknown operation " + shown(v) +
                        " (expected execute, execute_with_pause, resume, cancel or read)"};
            }
            out.op = *op;
            have_op = true;
        } else if (k == "subject") {
            if (!v.is_object()) {
                return request_error{"subject", "subject must be an object, not " + std::string(kind_of(v))};
            }
            for (auto& [sk, sv] : v.get_object()) {
                const auto field = [&sk = sk] { return "subject." + std::string(sk); };  // only for errors
                const std::string_view name(sk);  // clang 14 (fuzz builds) cannot capture a structured binding
                auto it = std::find_if(subject_fields.begin(), subject_fields.end(), [&](const auto& f) {
                    return f.first == name;
                });
                if (it == subject_fields.end()) {
                    return request_error{
                        field(),
                        "unknown field " + quoted(field()) +
                            " (expected user, org, workspace, ip, api_key_id, run_id or request_id)"};
                }
                if (!sv.is_string()) {
                    return request_error{field(), field() + " must be a string, not " + std::string(kind_of(sv))};
                }
                if (sv.get_string().size() > limits.max_key_bytes) {
                    return request_error{
                        field(), field() + " is longer than " + std::to_string(limits.max_key_bytes) + " bytes"};
                }
                out.subject.*(it->second) = std::string(sv.get_string());
            }
        } else if (k == "extension") {
            if (!v.is_object()) {
                return request_error{"extension", "extension must be an object, not " + std::string(kind_of(v))};
            }
            if (v.get_object().size() > limits.max_extension_keys) {
                return request_error{
                    "extension", "extension has more than " + std::to_string(limits.max_extension_keys) + " members"};
            }
            out.extension = std::move(v.get_object());
        } else {
            return request_error{
                std::string(k), "unknown field " + quoted(k) + " (expected operation, subject or extension)"};
        }
    }
    if (!have_op) return request_error{"operation", "operation is required"};
    return out;
}

api::api(gates::pipeline pipeline, api_params params)
    : pipeline_(std::move(pipeline)),
      params_(std::move(params)),
      leases_(params_.max_leases, params_.lease_ttl, *params_.clock, params_.max_released_leases),
      config_body_(json::serialize(params_.effective_config)) {}

http_handler api::handler() {
    return [this](http_request req) { return handle(std::move(req)); };
}

boost::asio::awaitable<http_response> api::handle(http_request req) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const auto method = req.method();

    auto not_allowed = [&](std::string_view allow) {
        stats_.method_not_allowed.fetch_add(1, std::memory_order_relaxed);
        auto res = error_response(
            405,
            "method_not_allowed",
            std::string(req.method_string()) + " is not allowed on " + valid_text(target) +
                " (allowed: " + std::string(allow) + ")",
            version,
            keep_alive
        );
        res.set(http::field::allow, allow);
        return res;
    };

    if (target == "/v1/preflight") {
        if (method != http::verb::post) co_return not_allowed("POST");
        co_return co_await preflight(req);
    }
    if (target == "/v1/auth") {
        if (method != http::verb::get && method != http::verb::head && method != http::verb::post) {
            co_return not_allowed("GET, HEAD, POST");
        }
        co_return co_await auth(req);
    }
    if (target == "/healthz") {
        if (method != http::verb::get) co_return not_allowed("GET");
        co_return co_await healthz(version, keep_alive);
    }
    if (target == "/metrics") {
        if (method != http::verb::get) co_return not_allowed("GET");
        http_response res{http::status::ok, version};
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.set(http::field::server, "preflightd");
        res.keep_alive(keep_alive);
        res.body() = metrics_text();
        res.prepare_payload();
        co_return res;
    }
    if (target == "/v1/config") {
        if (method != http::verb::get) co_return not_allowed("GET");
        co_return json_response(200, config_body_, version, keep_alive);
    }
    constexpr std::string_view lease_prefix = "/v1/leases/";
    for (const std::string_view suffix : {std::string_view("/release"), std::string_view("/renew")}) {
        if (!target.starts_with(lease_prefix) || !target.ends_with(suffix) ||
            target.size() <= lease_prefix.size() + suffix.size()) {
            continue;
        }
        std::string_view id = target.substr(lease_prefix.size(), target.size() - lease_prefix.size() - suffix.size());
        if (id.find('/') != std::string_view::npos || id.size() > 256) continue;
        if (method != http::verb::post) co_return not_allowed("POST");
        if (suffix == "/renew") co_return co_await renew(std::string(id), version, keep_alive);
        co_return co_await release(std::string(id), req.body(), version, keep_alive);
    }
    stats_.not_found.fetch_add(1, std::memory_order_relaxed);
    co_return error_response(404, "not_found", "no endpoint " + quoted(target), version, keep_alive);
}

boost::asio::awaitable<http_response> api::preflight(const http_request& req) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    stats_.preflight_requests.fetch_add(1, std::memory_order_relaxed);
    auto parsed = parse_preflight_request(req.body(), params_.limits);
    if (auto* bad = std::get_if<request_error>(&parsed)) {
        stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
        co_return error_response(400, "bad_request", std::move(bad->message), version, keep_alive, bad->field, true);
    }
    gates::request r = std::move(std::get<gates::request>(parsed));
    gates::decision d = co_await pipeline_.run(std::move(r));

    // The body before the lease moves into the registry. Written directly (not through boost::json objects):
    // the same JSON as `serialize(d.to_json())`, without an allocation per member.
    std::string body = d.allowed ? decision_body(d) : denial_body(d);
    if (d.lease.held()) {
        std::string id = d.lease.id();
        if (!leases_.add(d.lease)) {
            // Nobody could release it later: give the slot back now and refuse.
            stats_.lease_registry_full.fetch_add(1, std::memory_order_relaxed);
            result<void> released = co_await d.lease.release();
            std::string msg = "lease registry is full (" + std::to_string(leases_.capacity()) + " leases); retry later";
            if (!released) msg += "; releasing lease " + quoted(id) + " failed: " + released.error().message();
            auto res = error_response(503, "lease_registry_full", std::move(msg), version, keep_alive);
            res.set(http::field::retry_after, "1");
            co_return res;
        }
    }
    http_response res{d.allowed ? http::status::ok : static_cast<http::status>(d.status), version};
    res.set(http::field::content_type, "application/json");
    // Retry-After, RateLimit-Policy and RateLimit as gates::to_http maps them (allowed answers too).
    for (auto& [name, value] : gates::http_fields(d)) res.set(name, std::move(value));
    res.set(http::field::server, "preflightd");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    co_return res;
}

boost::asio::awaitable<http_response> api::renew(std::string id, unsigned version, bool keep_alive) {
    boost::system::error_code ec;
    const renew_status st = co_await leases_.renew(id, &ec);
    switch (st) {
        case renew_status::renewed:
            stats_.renewals.fetch_add(1, std::memory_order_relaxed);
            co_return json_response(
                200,
                R"({"renewed":true,"lease_id":)" + quoted(id) + R"(,"ttl_ms":)" +
                    std::to_string(leases_.ttl().count()) + "}",
                version,
                keep_alive
            );
        case renew_status::expired:
        case renew_status::unknown:
            stats_.not_found.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                404, "lease_not_found", "no lease " + quoted(id) + " (unknown, or expired)", version, keep_alive
            );
        case renew_status::released:
            co_return error_response(
                409, "lease_released", "lease " + quoted(id) + " was released; take a new one", version, keep_alive
            );
        case renew_status::failed:
            stats_.renew_failures.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                503,
                "lease_renew_failed",
                "renewing lease " + quoted(id) + " failed: " + ec.message(),
                version,
                keep_alive
            );
    }
    co_return error_response(500, "internal", "unexpected renew status", version, keep_alive);
}

boost::asio::awaitable<http_response> api::release(
    std::string id, std::string_view body, unsigned version, bool keep_alive
) {
    // Optional body {"used": requests, "tokens": n}: what the execution used (default one request, no tokens).
    std::uint64_t requests = 1;
    std::uint64_t tokens = 0;
    if (!body.empty()) {
        boost::system::error_code pec;
        boost::json::value v = boost::json::parse(body, pec);
        const auto* o = pec ? nullptr : v.if_object();
        std::string bad;
        if (o == nullptr) bad = "the release body must be a JSON object";
        for (const auto& [k, val] : o != nullptr ? *o : boost::json::object{}) {
            // A count: a non-negative integer (JSON numbers that parse as int64 or, beyond it, uint64).
            const std::int64_t* n = val.if_int64();
            const std::uint64_t* u = val.if_uint64();
            const bool count = (n != nullptr && *n >= 0) || u != nullptr;
            const std::uint64_t x = !count ? 0 : n != nullptr ? static_cast<std::uint64_t>(*n) : *u;
            if (k == "used" && count && x <= 1'000'000'000) {
                requests = x;
            } else if (k == "tokens" && count && x <= 1'000'000'000'000'000ULL) {
                tokens = x;
            } else {
                bad = k == "used"     ? "'used' must be an integer from 0 to 1000000000"
                      : k == "tokens" ? "'tokens' must be a non-negative integer"
                                      : "unknown field in the release body (expected used or tokens)";
                break;
            }
        }
        if (!bad.empty()) {
            stats_.invalid_requests.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(400, "bad_request", std::move(bad), version, keep_alive);
        }
    }
    boost::system::error_code ec;
    const release_status st = co_await leases_.release(id, &ec, requests, tokens);
    switch (st) {
        case release_status::released:
            stats_.releases.fetch_add(1, std::memory_order_relaxed);
            co_return json_response(200, R"({"released":true,"lease_id":)" + quoted(id) + "}", version, keep_alive);
        case release_status::already_released:
            co_return json_response(
                200, R"({"released":true,"already_released":true,"lease_id":)" + quoted(id) + "}", version, keep_alive
            );
        case release_status::unknown:
            stats_.not_found.fetch_add(1, std::memory_order_relaxed);
            co_return error_response(
                404, "lease_not_found", "no lease " + quoted(id) + " (unknown, or expired)", version, keep_alive
            );
        case release_status::failed: break;
    }
    stats_.release_failures.fetch_add(1, std::memory_order_relaxed);
    co_return error_response(
        503,
        "release_failed",
        "releasing lease " + quoted(id) + " failed: " + ec.message() + " (it expires with its ttl)",
        version,
        keep_alive
    );
}

boost::asio::awaitable<http_response> api::healthz(unsigned version, bool keep_alive) {
    if (params_.health) {
        result<void> r = co_await params_.health();
        if (!r) {
            json::object body;
            body["status"] = "unavailable";
            body["error"] = r.error().message();
            co_return json_response(503, json::serialize(body), version, keep_alive);
        }
    }
    co_return json_response(200, R"({"status":"ok"})", version, keep_alive);
}

std::string api::metrics_text() const {
    std::string out;
    try {
        out = pipeline_.metrics().prometheus_text();
    } catch (const std::logic_error&) {
        // metrics disabled in this pipeline: nothing to show for it
    }
    if (server_ != nullptr) {
        const auto& s = server_->stats();
        const auto get = [](const auto& a) { return static_cast<std::uint64_t>(a.load(std::memory_order_relaxed)); };
        out +=
            counter("preflight_http_connections_accepted_total", "Connections accepted.", get(s.connections_accepted));
        out += counter(
            "preflight_http_connections_rejected_total",
            "Connections closed at once (over max_connections).",
            get(s.connections_rejected)
        );
        out += counter("preflight_http_open_connections", "Open connections.", get(s.open_connections), "gauge");
        out += counter("preflight_http_requests_total", "HTTP requests read.", get(s.requests));
        out += counter("preflight_http_bad_requests_total", "Unparsable HTTP requests (400).", get(s.bad_requests));
        out += counter("preflight_http_too_large_total", "Requests over the size limit (413).", get(s.too_large));
        out += counter("preflight_http_timeouts_total", "Slow or idle connections dropped.", get(s.timeouts));
        out += counter("preflight_http_handler_errors_total", "Internal errors (500).", get(s.handler_errors));
    }
    const auto get = [](const auto& a) { return a.load(std::memory_order_relaxed); };
    out += counter(
        "preflight_api_preflight_requests_total", "POST /v1/preflight requests.", get(stats_.preflight_requests)
    );
    out += counter(
        "preflight_api_auth_requests_total", "GET/HEAD/POST /v1/auth requests (gateways).", get(stats_.auth_requests)
    );
    out += counter(
        "preflight_api_invalid_requests_total",
        "Preflight bodies refused by validation (400).",
        get(stats_.invalid_requests)
    );
    out += counter("preflight_api_not_found_total", "404 answers.", get(stats_.not_found));
    out += counter("preflight_api_method_not_allowed_total", "405 answers.", get(stats_.method_not_allowed));
    out += counter("preflight_leases_held", "Leases granted and not yet released or expired.", leases_.held(), "gauge");
    out += counter(
        "preflight_lease_registry_entries",
        "Lease registry entries (held + released tombstones).",
        leases_.size(),
        "gauge"
    );
    out += counter("preflight_lease_registry_capacity", "Lease registry bound.", leases_.capacity(), "gauge");
    out += counter(
        "preflight_lease_registry_full_total",
        "Admissions refused because the registry was full.",
        get(stats_.lease_registry_full)
    );
    out += counter("preflight_lease_releases_total", "Leases released by the caller.", get(stats_.releases));
    out += counter("preflight_lease_renewals_total", "Leases renewed by the caller.", get(stats_.renewals));
    out += counter("preflight_lease_renew_failures_total", "Renewals the store failed.", get(stats_.renew_failures));
    out +=
        counter("preflight_lease_release_failures_total", "Releases the store failed.", get(stats_.release_failures));
    if (params_.extra_metrics) out += params_.extra_metrics();
    return out;
}

void register_server_config(preflight::config_registry& registry) {
    auto add = [&](std::string path,
                   config_type t,
                   json::value def,
                   std::string desc,
                   std::optional<double> min = {},
                   std::optional<double> max = {},
                   bool secret = false) {
        config_key k;
        k.path = std::move(path);
        k.type = t;
        k.default_value = std::move(def);
        k.description = std::move(desc);
        k.min = min;
        k.max = max;
        k.secret = secret;
        registry.add(std::move(k));
    };
    add("server.listen", config_type::string, "127.0.0.1", "address to listen on");
    add("server.port", config_type::integer, 8080, "TCP port (0 = any free port)", 0, 65535);
    add("server.threads", config_type::integer, 0, "io_context threads (0 = hardware threads)", 0, 256);
    add("server.data", config_type::string, "", "fact data JSON file loaded into the stores (\"\" = none)");
    add("server.postgres_url",
        config_type::string,
        "",
        "Postgres URL: migrate and use the Postgres stores (\"\" = in-memory stores)",
        {},
        {},
        true);
    add("server.pool_size", config_type::integer, 8, "Postgres connections", 1, 1000);
    add("server.purge_interval_ms",
        config_type::integer,
        60000,
        "with Postgres: how often idle windows and buckets, expired leases and forgotten run budgets are deleted "
        "(0 = never)",
        0,
        {});
    add("server.pg_batch_writes",
        config_type::boolean,
        true,
        "with pipeline.stateful_call separate: batch the limit stores' own writes of one turn into one Postgres call "
        "(clients::pg_limit_batch); the default ordered call does not use it");
    add("server.pg_gather_reads",
        config_type::boolean,
        true,
        "gather the combined reads of concurrent requests into shared Postgres calls under load "
        "(clients::pg_subject_facts_source)");
    add("server.pg_batch_in_flight",
        config_type::integer,
        static_cast<std::int64_t>(clients::pg_gather_options{}.max_in_flight),
        "calls in flight at once, for the batched writes and for the gathered reads each; while this many are, the "
        "next call gathers the statements of the requests that follow until one finishes",
        1,
        1024);
    add("server.pg_batch_max_per_call",
        config_type::integer,
        static_cast<std::int64_t>(clients::pg_gather_options{}.max_per_call),
        "writes of one kind, or reads, per gathered call, at most",
        1,
        4096);
    add("server.max_leases", config_type::integer, 100000, "bound of the lease registry", 1, {});
    add("server.drain_timeout_ms", config_type::integer, 10000, "how long SIGTERM waits for in-flight requests", 0, {});
    add("server.balance_url",
        config_type::string,
        "",
        "HTTP billing provider for the balance gate, http://HOST[:PORT][/PATH/] (\"\" = the stores' balance source)");
    add("server.balance_api_key",
        config_type::string,
        "",
        "API key sent to the billing provider as a Bearer token",
        {},
        {},
        true);
    add("server.balance_timeout_ms",
        config_type::integer,
        2000,
        "whole-call timeout of one billing provider request (connect included)",
        1,
        {});
    // The gateway's config files nest the rate-limit block under server: (the flags stay --rate-limit-…).
    registry.add_file_alias("server.rate_limit", "rate_limit");
}

command_line translate_command_line(int argc, const char* const* argv) {
    command_line out;
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> aliases{{
        {"--listen", "--server-listen"},
        {"--balance-url", "--server-balance-url"},
        {"--port", "--server-port"},
        {"--threads", "--server-threads"},
        {"--data", "--server-data"},
        {"--postgres", "--server-postgres-url"},
    }};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        const auto eq = arg.find('=');
        const std::string name = arg.substr(0, eq);
        if (name == "--config") {
            if (eq != std::string::npos) {
                out.config_file = arg.substr(eq + 1);
            } else if (i + 1 < argc) {
                out.config_file = argv[++i];
            } else {
                throw config_error("", config_source::flag, "--config", "\"\"", "needs a file name");
            }
            if (out.config_file.empty()) {
                throw config_error("", config_source::flag, "--config", "\"\"", "needs a file name");
            }
            continue;
        }
        for (const auto& [from, to] : aliases) {
            if (name == from) {
                arg = std::string(to) + (eq == std::string::npos ? std::string() : arg.substr(eq));
                break;
            }
        }
        out.args.push_back(std::move(arg));
    }
    return out;
}

}  // namespace preflight::server
