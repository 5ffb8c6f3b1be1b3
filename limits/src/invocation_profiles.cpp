#include "invocation_check.hpp"
#include <preflight/limits/invocation_profiles.hpp>

#include <cctype>

namespace preflight::limits {

namespace {

std::string profile_error_text(
    const std::string& profile, const std::string& field, const std::string& value, const std::string& reason
) {
    std::string s = "invocation profile '" + profile + "'";
    if (field.empty()) return s + " " + reason;
    return s + ": " + field + " = " + value + ": " + reason;
}

bool valid_profile_name(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n) {
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
            return false;
    }
    return true;
}

void check_profile(const std::string& name, const invocation_limits_config& limits) {
    if (auto p = detail::find_problem(limits)) throw limits_profile_error(name, p->field, p->value, p->reason);
}

}  // namespace

limits_profile_error::limits_profile_error(
    std::string profile, std::string field, std::string value, std::string reason
)
    : std::invalid_argument(profile_error_text(profile, field, value, reason)),
      profile_{std::move(profile)},
      field_{std::move(field)},
      value_{std::move(value)},
      reason_{std::move(reason)} {}

invocation_profiles::invocation_profiles() : invocation_profiles(invocation_limits_config{}) {}

invocation_profiles::invocation_profiles(invocation_limits_config default_profile) {
    check_profile("default", default_profile);
    profiles_.emplace("default", std::move(default_profile));
}

void invocation_profiles::add(std::string name, invocation_limits_config limits) {
    if (!valid_profile_name(name))
        throw limits_profile_error(name, "", "", "has a malformed name (lower-case letters, digits and '_' only)");
    if (profiles_.contains(name)) throw limits_profile_error(name, "", "", "is defined twice");
    check_profile(name, limits);
    profiles_.emplace(std::move(name), std::move(limits));
}

const invocation_limits_config* invocation_profiles::find(std::string_view name) const noexcept {
    auto it = profiles_.find(name);
    return it == profiles_.end() ? nullptr : &it->second;
}

const invocation_limits_config& invocation_profiles::at(std::string_view name) const {
    if (const auto* p = find(name)) return *p;
    std::string defined;
    for (const auto& [n, l] : profiles_) defined += (defined.empty() ? "" : ", ") + n;
    throw limits_profile_error(std::string(name), "", "", "is not defined (defined: " + defined + ")");
}

const invocation_limits_config& invocation_profiles::for_manifest(const plugin_manifest& manifest) const {
    return at(manifest.limits_profile);
}

std::vector<std::string> invocation_profiles::names() const {
    std::vector<std::string> out;
    out.reserve(profiles_.size());
    for (const auto& [n, l] : profiles_) out.push_back(n);
    return out;
}

invocation_context context_for(
    const plugin_manifest& manifest, std::string hook, std::string request_id, hook_policy policy
) {
    return invocation_context{manifest.name, std::move(hook), std::move(request_id), policy, manifest.limits_profile};
}

}  // namespace preflight::limits
