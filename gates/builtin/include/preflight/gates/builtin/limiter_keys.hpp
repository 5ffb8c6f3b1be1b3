#pragma once

#include <preflight/gates/request.hpp>

#include <string>
#include <string_view>

namespace preflight::gates {

/// The store keys the default pipeline's limiters use for a request: operators (a row in `preflight_windows`, a
/// bucket to inspect or reset) and tests call these instead of rebuilding key strings. Empty: that limiter does not
/// apply to the request (no subject it could count). Stable across releases: they name rows in shared stores.

/// The backstop's window: `backstop:<org>` (no org: empty).
[[nodiscard]] std::string backstop_key(const request& r);

/// The rate limit's bucket: one per subject and operation class, `rl:<read|write>:<subject>` with the subject
/// `org:<org>`, else `user:<user>`, else `key:<api key id>`, else `ip:<ip>`. `read` draws from the read class, every
/// other operation (cancel, when it is not exempt) from the write class.
[[nodiscard]] std::string rate_limit_key(const request& r);

/// The admission's slots: `org:<org>`, else `user:<user>`.
[[nodiscard]] std::string admission_key(const request& r);

/// The run budget's run: the request's `subject.run_id` (empty: no run, nothing charged).
[[nodiscard]] std::string run_budget_key(const request& r);

/// The key of the built-in limiter gate named `gate` (`backstop`, `rate_limit`, `admission`, `run_budget`) for `r`;
/// empty for another gate or when it does not apply.
[[nodiscard]] std::string limiter_key(std::string_view gate, const request& r);

}  // namespace preflight::gates
