#pragma once

#include <preflight/gates/request.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace preflight::server {

/// Limits on a POST /v1/preflight body (the HTTP layer already caps its size, 64 KiB by default).
struct request_limits {
    std::size_t max_depth = 8;            ///< JSON nesting (objects/arrays), the top-level object counts 1
    std::size_t max_key_bytes = 256;      ///< each subject key
    std::size_t max_extension_keys = 64;  ///< members of `extension`
    std::size_t max_batch_items = 64;     ///< requests in one POST /v1/preflight/batch (more: 413)
};

/// Why a request body was refused (400). `field` is the JSON path at fault (`"operation"`, `"subject.org"`,
/// `""` for the document itself); `message` is client-safe and names the field and, where useful, the value.
struct request_error {
    std::string field;
    std::string message;
};

/// Parses and strictly validates a POST /v1/preflight body:
/// `{"operation": "execute", "subject": {"user", "org", "workspace", "ip", "api_key_id", "run_id",
/// "request_id"}, "extension": {...}}`. `operation` is required (one of execute, execute_with_pause, resume,
/// cancel, read); `subject` members are optional strings; `extension` an optional object. Unknown members,
/// wrong types, malformed JSON, too deep nesting or oversized keys are errors naming the field.
/// Thread safety: pure function.
[[nodiscard]] std::variant<gates::request, request_error> parse_preflight_request(
    std::string_view body, const request_limits& limits = {}
);

/// Why a batch body was refused: 413 when `too_many` (over `request_limits::max_batch_items`), else 400.
struct batch_error {
    request_error error;
    bool too_many = false;
};

/// Parses a POST /v1/preflight/batch body: `{"requests": [<preflight body>, ...]}`, 1 to `max_batch_items` items,
/// each validated exactly like `parse_preflight_request`; an error names the item (`requests[2].subject.org`).
/// Thread safety: pure function.
[[nodiscard]] std::variant<std::vector<gates::request>, batch_error> parse_batch_request(
    std::string_view body, const request_limits& limits = {}
);

/// What an execution used, from the optional body of POST /v1/leases/{id}/release: `{"used": requests, "tokens": n}`
/// (both optional; an empty body is one request and no tokens).
struct release_usage {
    std::uint64_t requests = 1;
    std::uint64_t tokens = 0;
};

/// Parses a release body: a JSON object with at most `used` (0 to 1e9) and `tokens` (0 to 1e18), integers.
/// Anything else is an error whose message names the member. Thread safety: pure function.
[[nodiscard]] std::variant<release_usage, request_error> parse_release_body(std::string_view body);

}  // namespace preflight::server
