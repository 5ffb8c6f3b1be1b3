#pragma once

#include <preflight/gates/decision.hpp>

#include <string>
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

/// Maps a decision to HTTP. Allowed: 200 with the decision's JSON. Denied: the denial's status and
/// `{"error":{"code","message","gate"}}`; `Retry-After` in whole seconds (rounded up, at least 1) on every
/// 429 and on other denials that carry a retry-after; when the deciding gate reported limiter info, the
/// `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers
/// (`"<gate>";q=<limit>;w=<window>` and `"<gate>";r=<remaining>;t=<reset>`).
[[nodiscard]] http_response to_http(const decision& d);

}  // namespace preflight::gates
