#include <preflight/gates/builtin/limiter_keys.hpp>

namespace preflight::gates {

std::string backstop_key(const request& r) {
    return r.subject.org.empty() ? std::string{} : "backstop:" + r.subject.org;
}

std::string rate_limit_key(const request& r) {
    const auto& s = r.subject;
    std::string subject;
    if (!s.org.empty()) {
        subject = "org:" + s.org;
    } else if (!s.user.empty()) {
        subject = "user:" + s.user;
    } else if (!s.api_key_id.empty()) {
        subject = "key:" + s.api_key_id;
    } else if (!s.ip.empty()) {
        subject = "ip:" + s.ip;
    } else {
        return {};
    }
    return (r.op == operation::read ? "rl:read:" : "rl:write:") + subject;
}

std::string admission_key(const request& r) {
    if (!r.subject.org.empty()) return "org:" + r.subject.org;
    if (!r.subject.user.empty()) return "user:" + r.subject.user;
    return {};
}

std::string run_budget_key(const request& r) {
    return r.subject.run_id;
}

std::string limiter_key(std::string_view gate, const request& r) {
    if (gate == "backstop") return backstop_key(r);
    if (gate == "rate_limit") return rate_limit_key(r);
    if (gate == "admission") return admission_key(r);
    if (gate == "run_budget") return run_budget_key(r);
    return {};
}

}  // namespace preflight::gates
