#pragma once

#include <preflight/gates/decision.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::gates {

/// A transport-neutral HTTP answer for a decision.
struct http_response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  ///< JSON

    /// The value of header `name` (case-sensitive as produced here), or nullptr.
    [[nodiscard]] const std::string* header(std::string_view name) const noexcept;
};

/// The header fields of a decision's answer (Content-Type aside), in this order:
/// - `Retry-After` in whole seconds (rounded up, at least 1) on every 429, and on a 503 that carries a retry-after;
///   never on another status (RFC 9110 defines it for 503 and 3xx, RFC 6585 for 429): a 403 has none.
/// - `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers: `"<gate>";q=<limit>;w=<window>` and
///   `"<gate>";r=<remaining>;t=<reset>`): on a denial, the deciding limiter's; on an allowed answer, one list item
///   per limiter that passed (backstop, rate limit), so clients can pace themselves before they are denied. Only
///   for time-window policies (`limiter_info::window` > 0): the concurrency 429 and the monthly usage quota send
///   none, so no field says `w=0` or `t=0` beside a Retry-After.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> http_fields(const decision& d);

/// The same fields, in the same order, handed to `emit(name, value)` one by one (the value lives until `emit`
/// returns): no allocation per answer once the calling thread's buffers have grown (what preflightd uses).
void for_each_http_field(
    const decision& d, const std::function<void(std::string_view name, std::string_view value)>& emit
);

/// Maps a decision to HTTP: allowed: 200 with the decision's JSON; denied: the denial's status and
/// `{"error":{"code","message","gate"[, "retry_after_ms"][, details…]},"decision":{...}}` (`append_answer_json`, the
/// body preflightd sends); headers `Content-Type` and `http_fields(d)`. A server that writes its own answer calls
/// `http_fields` and `append_answer_json` into buffers it reuses instead.
[[nodiscard]] http_response to_http(const decision& d);

}  // namespace preflight::gates
