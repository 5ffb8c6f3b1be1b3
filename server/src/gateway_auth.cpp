#include <preflight/gates/http.hpp>
#include <preflight/gates/operation.hpp>
#include <preflight/gates/utf8.hpp>
#include <preflight/server/gateway_auth.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <string>
#include <utility>

namespace preflight::server {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

// Names here differ from api.cpp's helpers: the unity build compiles both files in one unit.
constexpr std::array<std::pair<std::string_view, std::string gates::subject_keys::*>, 7> gateway_subject_headers{{
    {auth_header_user, &gates::subject_keys::user},
    {auth_header_org, &gates::subject_keys::org},
    {auth_header_workspace, &gates::subject_keys::workspace},
    {auth_header_ip, &gates::subject_keys::ip},
    {auth_header_api_key_id, &gates::subject_keys::api_key_id},
    {auth_header_run_id, &gates::subject_keys::run_id},
    {auth_header_request_id, &gates::subject_keys::request_id},
}};

constexpr std::string_view gateway_header_prefix = "X-Preflight-";

// `s` as valid UTF-8 (Boost.JSON writes strings byte for byte: a header value with invalid UTF-8 quoted in a
// message would make the body invalid JSON).
std::string gateway_json_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    gates::append_valid_utf8(out, s);
    return out;
}

// A bad value quoted for a message, never the whole of a long one.
std::string gateway_shown(std::string_view v) {
    if (v.size() > 64) return "\"" + std::string(v.substr(0, 61)) + "...\"";
    return "\"" + std::string(v) + "\"";
}

}  // namespace

std::string auth_header_text(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e) c = '?';
    }
    return out;
}

std::variant<gates::request, request_error> request_from_headers(
    const http_request& req, const request_limits& limits
) {
    gates::request out;
    out.op = gates::operation::execute;
    std::array<bool, gateway_subject_headers.size() + 1> seen{};  // the subject headers, then the operation
    for (const auto& f : req) {
        const auto raw_name = f.name_string();
        const std::string_view name(raw_name.data(), raw_name.size());
        if (name.size() < gateway_header_prefix.size() ||
            !boost::beast::iequals(name.substr(0, gateway_header_prefix.size()), gateway_header_prefix)) {
            continue;
        }
        const std::string_view value(f.value().data(), f.value().size());
        std::size_t index = gateway_subject_headers.size();
        if (!boost::beast::iequals(name, auth_header_operation)) {
            index = 0;
            while (index < gateway_subject_headers.size() &&
                   !boost::beast::iequals(name, gateway_subject_headers[index].first)) {
                ++index;
            }
            if (index == gateway_subject_headers.size()) {
                // A request header of ours that we do not know: a misspelt name would silently mean "not known".
                return request_error{
                    std::string(name),
                    "unknown header " + std::string(name) +
                        " (expected X-Preflight-User, -Org, -Workspace, -Ip, -Api-Key-Id, -Run-Id, -Request-Id or "
                        "-Operation)"};
            }
        }
        const std::string_view canonical =
            index < gateway_subject_headers.size() ? gateway_subject_headers[index].first : auth_header_operation;
        if (seen[index]) {
            return request_error{std::string(canonical), std::string(canonical) + " is given more than once"};
        }
        seen[index] = true;
        if (index == gateway_subject_headers.size()) {
            auto op = gates::parse_operation(value);
            if (!op) {
                return request_error{
                    std::string(canonical),
                    "unknown operation " + gateway_shown(value) + " in " + std::string(canonical) +
                        " (expected execute, execute_with_pause, resume, cancel or read)"};
            }
            out.op = *op;
            continue;
        }
        if (value.size() > limits.max_key_bytes) {
            return request_error{
                std::string(canonical),
                std::string(canonical) + " is longer than " + std::to_string(limits.max_key_bytes) + " bytes"};
        }
        out.subject.*(gateway_subject_headers[index].second) = std::string(value);
    }
    return out;
}

http_response auth_response(const gates::decision& d, unsigned version, bool keep_alive) {
    http_response res{d.allowed ? http::status::ok : static_cast<http::status>(d.status), version};
    res.set(http::field::server, "preflightd");
    // Retry-After, RateLimit-Policy and RateLimit exactly as POST /v1/preflight sends them.
    gates::for_each_http_field(d, [&res](std::string_view name, std::string_view value) { res.set(name, value); });
    if (!d.allowed) {
        res.set(auth_header_code, auth_header_text(d.code));
        res.set(auth_header_gate, auth_header_text(d.gate));
        json::object err;
        err["code"] = gateway_json_text(d.code);
        err["message"] = gateway_json_text(d.message);
        err["gate"] = gateway_json_text(d.gate);
        json::object body;
        body["error"] = std::move(err);
        res.set(http::field::content_type, "application/json");
        res.body() = json::serialize(body);
    }
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

http_response auth_bad_request(const request_error& err, unsigned version, bool keep_alive) {
    json::object e;
    e["code"] = "bad_request";
    e["message"] = gateway_json_text(err.message);
    e["field"] = gateway_json_text(err.field);
    json::object body;
    body["error"] = std::move(e);
    http_response res = json_response(400, json::serialize(body), version, keep_alive);
    res.set(auth_header_code, "bad_request");
    res.set(auth_header_field, auth_header_text(err.field));
    return res;
}

}  // namespace preflight::server
