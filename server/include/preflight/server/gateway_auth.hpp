#pragma once
// preflightd as a gateway's authorisation backend (nginx `auth_request`): the subject of a preflight read from
// request headers instead of a JSON body, and a decision answered by status and headers alone (a gateway's
// subrequest ignores the body). The endpoint is `api`'s GET/HEAD/POST /v1/auth; these are its pure parts.

#include <preflight/gates/decision.hpp>
#include <preflight/gates/request.hpp>
#include <preflight/server/api.hpp>
#include <preflight/server/http_server.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace preflight::server {

/// The request headers of /v1/auth, one per subject key (in `gates::subject_keys` order), and the operation.
/// Header names are matched case-insensitively (HTTP); these are the spellings used in error messages.
inline constexpr std::string_view auth_header_user = "X-Preflight-User";
inline constexpr std::string_view auth_header_org = "X-Preflight-Org";
inline constexpr std::string_view auth_header_workspace = "X-Preflight-Workspace";
inline constexpr std::string_view auth_header_ip = "X-Preflight-Ip";
inline constexpr std::string_view auth_header_api_key_id = "X-Preflight-Api-Key-Id";
inline constexpr std::string_view auth_header_run_id = "X-Preflight-Run-Id";
inline constexpr std::string_view auth_header_request_id = "X-Preflight-Request-Id";
inline constexpr std::string_view auth_header_operation = "X-Preflight-Operation";

/// The response headers of /v1/auth: the denial's code and deciding gate (on every denial), the header at fault
/// (on a 400), and, on an allowed answer whose lease could not be given back, that release's error.
inline constexpr std::string_view auth_header_code = "X-Preflight-Code";
inline constexpr std::string_view auth_header_gate = "X-Preflight-Gate";
inline constexpr std::string_view auth_header_field = "X-Preflight-Field";
inline constexpr std::string_view auth_header_release_error = "X-Preflight-Release-Error";

/// Reads the preflight question of a /v1/auth request from its headers: `X-Preflight-User`, `-Org`, `-Workspace`,
/// `-Ip`, `-Api-Key-Id`, `-Run-Id`, `-Request-Id` (each optional; absent or empty = not known) and
/// `X-Preflight-Operation` (optional, default `execute`; one of execute, execute_with_pause, resume, cancel, read).
/// The body is ignored; `extension` stays empty. Validated like `parse_preflight_request`: a subject value longer
/// than `limits.max_key_bytes`, an unknown operation (an empty one too), a header given more than once, or another
/// `X-Preflight-…` request header (a misspelt name) is an error whose `field` is the header's name.
/// Thread safety: pure function.
[[nodiscard]] std::variant<gates::request, request_error> request_from_headers(
    const http_request& req, const request_limits& limits = {}
);

/// The /v1/auth answer for `d`, status and headers carrying all a gateway needs:
/// - allowed: 200, empty body, the RateLimit fields of `gates::http_fields(d)`; never a lease id (the caller
///   releases a granted lease before answering).
/// - denied: the denial's status (403/402/429/503), `gates::http_fields(d)` (Retry-After on 429 and on a 503 that
///   has one, RateLimit fields of a windowed limiter), `X-Preflight-Code` and `X-Preflight-Gate` (printable ASCII:
///   other bytes become '?'), and the body `{"error":{"code","message","gate"}}` (`Content-Type: application/json`).
/// Thread safety: pure function.
[[nodiscard]] http_response auth_response(const gates::decision& d, unsigned version, bool keep_alive);

/// `s` as a header value: printable ASCII kept, every other byte (CR, LF, other controls, non-ASCII) as '?', so
/// that no text from a gate or a store can split or inject a header line. Thread safety: pure function.
[[nodiscard]] std::string auth_header_text(std::string_view s);

/// The 400 answer to a refused /v1/auth request: `{"error":{"code":"bad_request","message","field"}}` with
/// `X-Preflight-Code: bad_request` and `X-Preflight-Field: <header>`. Thread safety: pure function.
[[nodiscard]] http_response auth_bad_request(const request_error& err, unsigned version, bool keep_alive);

}  // namespace preflight::server
