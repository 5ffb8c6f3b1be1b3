#pragma once
// Private: the validity rules of an invocation_limits_config, shared by invocation_guard (which throws
// std::invalid_argument) and invocation_profiles (which throws limits_profile_error naming the profile).

#include <preflight/limits/invocation_limits.hpp>

#include <optional>
#include <string>

namespace preflight::limits::detail {

/// The first rule `limits` breaks: the field (as in the config keys: "wall_clock_ms", "host_concurrency",
/// "counters"), its offending value as text, and the reason ("must be >= 1").
struct limits_problem {
    std::string field;
    std::string value;
    std::string reason;
};

[[nodiscard]] std::optional<limits_problem> find_problem(const invocation_limits_config& limits);

}  // namespace preflight::limits::detail
