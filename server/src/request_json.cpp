#include <preflight/gates/json_writer.hpp>
#include <preflight/gates/operation.hpp>
#include <preflight/server/request_json.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <utility>

namespace preflight::server {

namespace json = boost::json;
namespace jw = gates::json_writer;

namespace {

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

// One preflight item (the body of POST /v1/preflight, or one element of a batch): `prefix` goes before every field
// name in an error ("" or "requests[3].").
std::variant<gates::request, request_error> request_from_object(
    json::object& doc, const request_limits& limits, const std::string& prefix
) {
    gates::request out;
    bool have_op = false;
    for (auto& [k, v] : doc) {
        if (k == "operation") {
            if (!v.is_string()) {
                return request_error{
                    prefix + "operation", "operation must be a string, not " + std::string(kind_of(v))};
            }
            auto op = gates::parse_operation(v.get_string());
            if (!op) {
                return request_error{
                    prefix + "operation",
                    "unknown operation " + shown(v) +
                        " (expected execute, execute_with_pause, resume, cancel or read)"};
            }
            out.op = *op;
            have_op = true;
        } else if (k == "subject") {
            if (!v.is_object()) {
                return request_error{prefix + "subject", "subject must be an object, not " + std::string(kind_of(v))};
            }
            for (auto& [sk, sv] : v.get_object()) {
                const auto field = [&sk = sk, &prefix] {
                    return prefix + "subject." + std::string(sk);
                };                                // only for errors
                const std::string_view name(sk);  // clang 14 (fuzz builds) cannot capture a structured binding
                auto it = std::find_if(subject_fields.begin(), subject_fields.end(), [&](const auto& f) {
                    return f.first == name;
                });
                if (it == subject_fields.end()) {
                    return request_error{
                        field(),
                        "unknown field " + jw::quoted(field()) +
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
                return request_error{
                    prefix + "extension", "extension must be an object, not " + std::string(kind_of(v))};
            }
            if (v.get_object().size() > limits.max_extension_keys) {
                return request_error{
                    prefix + "extension",
                    "extension has more than " + std::to_string(limits.max_extension_keys) + " members"};
            }
            out.extension = std::move(v.get_object());
        } else {
            return request_error{
                prefix + std::string(k),
                "unknown field " + jw::quoted(k) + " (expected operation, subject or extension)"};
        }
    }
    if (!have_op) return request_error{prefix + "operation", "operation is required"};
    return out;
}

// The document of a body: parsed into `mr` with the depth limit, or the error for the document itself.
std::variant<json::value, request_error> parse_document(
    std::string_view body, const request_limits& limits, json::monotonic_resource& mr
) {
    json::parse_options opt;
    opt.max_depth = limits.max_depth;
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec, &mr, opt);
    if (ec) {
        if (ec == json::error::too_deep) {
            return request_error{"", "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels"};
        }
        return request_error{"", "malformed JSON: " + ec.message()};
    }
    return doc;
}

}  // namespace

std::variant<gates::request, request_error> parse_preflight_request(
    std::string_view body, const request_limits& limits
) {
    // The document lives only in this call: a monotonic arena on the stack (spilling to the heap for big bodies)
    // instead of one allocation per member; what is kept (the extension object) is copied out to the default
    // storage when it is moved into the request.
    unsigned char arena[4096];
    json::monotonic_resource mr(arena, sizeof arena);
    auto doc = parse_document(body, limits, mr);
    if (auto* bad = std::get_if<request_error>(&doc)) return std::move(*bad);
    auto& v = std::get<json::value>(doc);
    if (!v.is_object()) return request_error{"", "the body must be a JSON object, not " + std::string(kind_of(v))};
    return request_from_object(v.get_object(), limits, std::string());
}

std::variant<std::vector<gates::request>, batch_error> parse_batch_request(
    std::string_view body, const request_limits& limits
) {
    json::monotonic_resource mr;
    auto doc = parse_document(body, limits, mr);
    if (auto* bad = std::get_if<request_error>(&doc)) return batch_error{std::move(*bad), false};
    auto& v = std::get<json::value>(doc);
    if (!v.is_object()) {
        return batch_error{{"", "the body must be a JSON object, not " + std::string(kind_of(v))}, false};
    }
    json::array* items = nullptr;
    for (auto& [k, member] : v.get_object()) {
        if (k != "requests") {
            return batch_error{{std::string(k), "unknown field " + jw::quoted(k) + " (expected requests)"}, false};
        }
        items = member.if_array();
        if (items == nullptr) {
            return batch_error{{"requests", "requests must be an array, not " + std::string(kind_of(member))}, false};
        }
    }
    if (items == nullptr) return batch_error{{"requests", "requests is required"}, false};
    if (items->empty()) return batch_error{{"requests", "requests is empty"}, false};
    if (items->size() > limits.max_batch_items) {
        return batch_error{
            {"requests",
             "requests has " + std::to_string(items->size()) + " items; at most " +
                 std::to_string(limits.max_batch_items) + " are allowed"},
            true};
    }
    std::vector<gates::request> out;
    out.reserve(items->size());
    for (std::size_t i = 0; i < items->size(); ++i) {
        const std::string prefix = "requests[" + std::to_string(i) + "].";
        auto& item = (*items)[i];
        if (!item.is_object()) {
            return batch_error{
                {prefix.substr(0, prefix.size() - 1),
                 "each request must be an object, not " + std::string(kind_of(item))},
                false};
        }
        auto r = request_from_object(item.get_object(), limits, prefix);
        if (auto* bad = std::get_if<request_error>(&r)) return batch_error{std::move(*bad), false};
        out.push_back(std::move(std::get<gates::request>(r)));
    }
    return out;
}

std::variant<release_usage, request_error> parse_release_body(std::string_view body) {
    release_usage out;
    if (body.empty()) return out;
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (o == nullptr) return request_error{"", "the release body must be a JSON object"};
    for (const auto& [k, val] : *o) {
        // A count: a non-negative integer (JSON numbers that parse as int64 or, beyond it, uint64).
        const std::int64_t* n = val.if_int64();
        const std::uint64_t* u = val.if_uint64();
        const bool count = (n != nullptr && *n >= 0) || u != nullptr;
        const std::uint64_t x = !count ? 0 : n != nullptr ? static_cast<std::uint64_t>(*n) : *u;
        if (k == "used" && count && x <= 1'000'000'000) {
            out.requests = x;
        } else if (k == "tokens" && count && x <= 1'000'000'000'000'000ULL) {
            out.tokens = x;
        } else {
            return request_error{
                std::string(k),
                k == "used"     ? "'used' must be an integer from 0 to 1000000000"
                : k == "tokens" ? "'tokens' must be a non-negative integer"
                                : "unknown field in the release body (expected used or tokens)"};
        }
    }
    return out;
}

}  // namespace preflight::server
