#include "json_text.hpp"
#include <preflight/gates/decision.hpp>

#include <boost/json/array.hpp>

namespace preflight::gates {

std::string_view to_string(gate_outcome o) noexcept {
    switch (o) {
        case gate_outcome::pass: return "pass";
        case gate_outcome::deny: return "deny";
        case gate_outcome::error: return "error";
        case gate_outcome::timeout: return "timeout";
        case gate_outcome::skipped: return "skipped";
        case gate_outcome::cancelled: return "cancelled";
    }
    return "unknown";
}

std::string_view to_string(phase p) noexcept {
    switch (p) {
        case phase::read_only: return "read_only";
        case phase::stateful: return "stateful";
        case phase::commit: return "commit";
    }
    return "unknown";
}

std::string_view to_string(failure_policy p) noexcept {
    return p == failure_policy::fail_open ? "fail_open" : "fail_closed";
}

const gate_trace* decision::find(std::string_view gate_name) const noexcept {
    for (const auto& t : trace) {
        if (t.gate == gate_name) return &t;
    }
    return nullptr;
}

boost::json::object decision::to_json() const {
    boost::json::object o;
    o["allowed"] = allowed;
    o["status"] = status;
    if (!allowed) {
        o["code"] = detail::json_text(code);
        o["message"] = detail::json_text(message);
        o["gate"] = detail::json_text(gate);
        if (retry_after) o["retry_after_ms"] = retry_after->count();
        for (const auto& [k, v] : details) o[k] = detail::json_text(v);
    }
    if (lease.held()) o["lease_id"] = detail::json_text(lease.id());
    boost::json::array tr;
    tr.reserve(trace.size());
    for (const auto& t : trace) {
        boost::json::object e;
        e["gate"] = detail::json_text(t.gate);
        e["phase"] = to_string(t.phase);
        e["outcome"] = to_string(t.outcome);
        e["started_us"] = std::chrono::duration<double, std::micro>(t.started).count();
        e["duration_us"] = std::chrono::duration<double, std::micro>(t.duration).count();
        e["fail_open"] = t.fail_open;
        e["shadow"] = t.shadow;
        e["would_deny"] = t.would_deny;
        e["compensated"] = t.compensated;
        if (!t.reason.empty()) e["reason"] = detail::json_text(t.reason);
        if (!t.key.empty()) e["key"] = detail::json_text(t.key);
        if (t.limiter) {
            e["limiter"] = boost::json::object{
                {"limit", t.limiter->limit},
                {"remaining", t.limiter->remaining},
                {"window_s", t.limiter->window.count()},
                {"reset_s", t.limiter->reset.count()}};
        }
        tr.emplace_back(std::move(e));
    }
    o["trace"] = std::move(tr);
    return o;
}

}  // namespace preflight::gates
