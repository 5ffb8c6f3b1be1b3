#include <preflight/gates/decision.hpp>
#include <preflight/gates/decision_json.hpp>

#include <boost/json/parse.hpp>

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
    // One writer for every rendering of a decision: the text of append_decision_json, read back.
    std::string text;
    text.reserve(256 + trace.size() * 160);
    append_decision_json(text, *this);
    return boost::json::parse(text).as_object();
}

}  // namespace preflight::gates
