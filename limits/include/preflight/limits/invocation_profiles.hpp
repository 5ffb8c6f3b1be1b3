#pragma once

#include <preflight/limits/invocation_limits.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::limits {

/// A bad limits profile (misuse tier: thrown while the host is being set up). `what()` names the profile and,
/// where there is one, the field and its value:
/// `invocation profile 'batch': wall_clock_ms = 0: must be >= 1`,
/// `invocation profile 'bacth' is not defined (defined: batch, default)`.
/// Derives from `std::invalid_argument`.
class limits_profile_error : public std::invalid_argument {
public:
    limits_profile_error(std::string profile, std::string field, std::string value, std::string reason);
    [[nodiscard]] const std::string& profile() const noexcept { return profile_; }
    /// The field of the profile ("wall_clock_ms", "fuel", "counters"); empty when the profile itself is at fault.
    [[nodiscard]] const std::string& field() const noexcept { return field_; }
    /// The offending value as text; empty when the profile itself is at fault.
    [[nodiscard]] const std::string& value() const noexcept { return value_; }
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
    std::string profile_;
    std::string field_;
    std::string value_;
    std::string reason_;
};

/// What a plugin's manifest says about its limits: the plugin (the key of its circuit breaker and the trip
/// record's subject) and the name of its limits profile.
struct plugin_manifest {
    std::string name;
    std::string limits_profile = "default";
};

/// Named sets of invocation limits; "default" is always present. A plugin's manifest names its profile
/// (`plugin_manifest::limits_profile`); `settings_from` (limits_config.hpp) fills one from the `invocation.*` and
/// `invocation.profiles.<name>.*` keys. Profile names are lower_snake_case (`[a-z0-9_]+`), as config keys need.
/// Not thread-safe while being filled; read-only afterwards.
class invocation_profiles {
public:
    /// Only "default", with the defaults of `invocation_limits_config`.
    invocation_profiles();
    /// Throws `limits_profile_error` (profile "default") when `default_profile` is invalid.
    explicit invocation_profiles(invocation_limits_config default_profile);

    /// Adds profile `name`. Throws `limits_profile_error` for a malformed name, a name already present ("default"
    /// included) or invalid limits (naming the field and value).
    void add(std::string name, invocation_limits_config limits);

    /// The profile `name`, or nullptr.
    [[nodiscard]] const invocation_limits_config* find(std::string_view name) const noexcept;
    /// The profile `name`; throws `limits_profile_error` naming it (and the defined ones) when it is not defined.
    [[nodiscard]] const invocation_limits_config& at(std::string_view name) const;
    /// The profile the manifest names (`at(manifest.limits_profile)`).
    [[nodiscard]] const invocation_limits_config& for_manifest(const plugin_manifest& manifest) const;

    /// Every profile name, sorted ("default" included).
    [[nodiscard]] std::vector<std::string> names() const;

private:
    std::map<std::string, invocation_limits_config, std::less<>> profiles_;
};

/// The context of one invocation of the plugin: subject = plugin name, profile = the manifest's profile.
[[nodiscard]] invocation_context context_for(
    const plugin_manifest& manifest, std::string hook, std::string request_id, hook_policy policy
);

}  // namespace preflight::limits
