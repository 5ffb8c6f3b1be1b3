#pragma once

#include <preflight/gates/decision.hpp>

#include <string>

namespace preflight::gates {

/// The one JSON writer of a decision. Each appends to `out` (which the caller may reuse across requests) and
/// allocates nothing beyond its growth. `decision::to_json()` and `to_http()` are built on these.
/// Thread safety: pure functions.

/// `{"allowed", "status", ["code", "message", "gate", "retry_after_ms", details...,] ["lease_id",] "trace": [...]}`;
/// a trace entry is `{"gate", "phase", "outcome", "started_us", "duration_us", "fail_open", "shadow",
/// "would_deny", "compensated"[, "reason"][, "key"][, "limiter": {"limit", "remaining", "window_s", "reset_s"}]}`.
/// Strings with invalid UTF-8 have each bad byte replaced by U+FFFD.
void append_decision_json(std::string& out, const decision& d);

/// The error object of a denial: `{"code", "message", "gate"[, "retry_after_ms"][, details...]}`.
void append_denial_error_json(std::string& out, const decision& d);

/// The body of a denied answer: `{"error": <append_denial_error_json>, "decision": <append_decision_json>}`.
void append_denial_json(std::string& out, const decision& d);

/// The body of `d`'s answer: the decision when allowed, `append_denial_json` when denied.
void append_answer_json(std::string& out, const decision& d);

}  // namespace preflight::gates
