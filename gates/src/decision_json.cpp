#include <preflight/gates/decision_json.hpp>
#include <preflight/gates/json_writer.hpp>

namespace preflight::gates {

namespace jw = json_writer;

namespace {

// code, message, gate, retry_after_ms and the details: shared by the decision and its error object.
void append_denial_members(std::string& out, const decision& d, bool first) {
    jw::key(out, "code", first);
    jw::string(out, d.code);
    jw::key(out, "message");
    jw::string(out, d.message);
    jw::key(out, "gate");
    jw::string(out, d.gate);
    if (d.retry_after) {
        jw::key(out, "retry_after_ms");
        jw::number(out, static_cast<std::int64_t>(d.retry_after->count()));
    }
    for (const auto& [k, v] : d.details) {
        out.push_back(',');
        jw::string(out, k);  // set by a gate, escaped all the same
        out.push_back(':');
        jw::string(out, v);
    }
}

void append_trace_entry(std::string& out, const gate_trace& t) {
    out.push_back('{');
    jw::key(out, "gate", true);
    jw::string(out, t.gate);
    jw::key(out, "phase");
    jw::string(out, to_string(t.phase));
    jw::key(out, "outcome");
    jw::string(out, to_string(t.outcome));
    jw::key(out, "started_us");
    jw::micros(out, t.started);
    jw::key(out, "duration_us");
    jw::micros(out, t.duration);
    jw::key(out, "fail_open");
    jw::boolean(out, t.fail_open);
    jw::key(out, "shadow");
    jw::boolean(out, t.shadow);
    jw::key(out, "would_deny");
    jw::boolean(out, t.would_deny);
    jw::key(out, "compensated");
    jw::boolean(out, t.compensated);
    if (!t.reason.empty()) {
        jw::key(out, "reason");
        jw::string(out, t.reason);
    }
    if (!t.key.empty()) {
        jw::key(out, "key");
        jw::string(out, t.key);
    }
    if (t.limiter) {
        jw::key(out, "limiter");
        out.push_back('{');
        jw::key(out, "limit", true);
        jw::number(out, t.limiter->limit);
        jw::key(out, "remaining");
        jw::number(out, t.limiter->remaining);
        jw::key(out, "window_s");
        jw::number(out, static_cast<std::int64_t>(t.limiter->window.count()));
        jw::key(out, "reset_s");
        jw::number(out, static_cast<std::int64_t>(t.limiter->reset.count()));
        out.push_back('}');
    }
    out.push_back('}');
}

}  // namespace

void append_decision_json(std::string& out, const decision& d) {
    out.push_back('{');
    jw::key(out, "allowed", true);
    jw::boolean(out, d.allowed);
    jw::key(out, "status");
    jw::number(out, d.status);
    if (!d.allowed) append_denial_members(out, d, false);
    if (d.lease.held()) {
        jw::key(out, "lease_id");
        jw::string(out, d.lease.id());
    }
    jw::key(out, "trace");
    out.push_back('[');
    for (std::size_t i = 0; i < d.trace.size(); ++i) {
        if (i != 0) out.push_back(',');
        append_trace_entry(out, d.trace[i]);
    }
    out.append("]}");
}

void append_denial_error_json(std::string& out, const decision& d) {
    out.push_back('{');
    append_denial_members(out, d, true);
    out.push_back('}');
}

void append_denial_json(std::string& out, const decision& d) {
    out.append(R"({"error":)");
    append_denial_error_json(out, d);
    out.append(R"(,"decision":)");
    append_decision_json(out, d);
    out.push_back('}');
}

void append_answer_json(std::string& out, const decision& d) {
    if (d.allowed) {
        append_decision_json(out, d);
    } else {
        append_denial_json(out, d);
    }
}

}  // namespace preflight::gates
