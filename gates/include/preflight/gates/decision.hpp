#pragma once

#include <preflight/gates/gate.hpp>
#include <preflight/gates/lease.hpp>
#include <preflight/gates/verdict.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::gates {

/// What happened to one gate in one run.
enum class gate_outcome { pass, deny, error, timeout, skipped, cancelled };
inline constexpr std::size_t gate_outcome_count = 6;

[[nodiscard]] std::string_view to_string(gate_outcome o) noexcept;

/// One line of a decision's trace.
struct gate_trace {
    std::string gate;
    gates::phase phase = phase::read_only;
    gate_outcome outcome = gate_outcome::skipped;
    std::chrono::nanoseconds started{0};   ///< offset from the start of the run (pipeline clock)
    std::chrono::nanoseconds duration{0};  ///< until it finished, timed out or was cancelled
    bool fail_open = false;                ///< an error/timeout counted as a pass by policy
    bool shadow = false;                   ///< the gate is in shadow mode
    bool would_deny = false;               ///< shadow mode: the gate denied (or failed closed) but was not enforced
    std::string reason;                    ///< deny code, error text, or why it was skipped/cancelled
    bool compensated = false;  ///< its pass was undone: consume refunded (stateful) or lease released (commit)
    std::string key{};         ///< the store key a limiter gate counted under (`verdict::set_key`); else empty
    std::optional<limiter_info> limiter{};  ///< a limiter's figures after this request, passed or denied
};

/// The answer of a run: allowed (with the commit gate's lease, if any) or denied by one gate.
struct decision {
    bool allowed = true;
    int status = 200;     ///< HTTP status of a denial (403/402/429/503); 200 when allowed
    std::string code;     ///< machine code of the denial
    std::string message;  ///< client-safe text
    std::string gate;     ///< the deciding gate (empty when allowed)
    std::optional<std::chrono::milliseconds> retry_after;
    std::optional<limiter_info> limiter;                       ///< set when the deciding gate is a limiter
    std::vector<std::pair<std::string, std::string>> details;  ///< the denial's extra error members (`denial::details`)
    gates::lease lease;                                        ///< held when a commit gate reserved something
    std::vector<gate_trace> trace;  ///< one entry per gate of the pipeline, in declaration order

    /// The trace entry of `gate`, or nullptr.
    [[nodiscard]] const gate_trace* find(std::string_view gate_name) const noexcept;
    /// {"allowed", "status", ["code", "message", "gate", "retry_after_ms", details...], "trace": [...]}; a trace entry
    /// has "key" and "limiter" {"limit", "remaining", "window_s", "reset_s"} when set.
    [[nodiscard]] boost::json::object to_json() const;
};

}  // namespace preflight::gates
