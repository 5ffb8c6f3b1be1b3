#pragma once

#include <optional>
#include <string_view>

namespace preflight::gates {

/// What the caller is about to do. Gates declare which operations they apply to; `resume` is never gated
/// and `cancel` is exempt from write buckets.
enum class operation { execute, execute_with_pause, resume, cancel, read };

[[nodiscard]] std::string_view to_string(operation op) noexcept;

/// Parses the wire names ("execute", "execute_with_pause", "resume", "cancel", "read"); nullopt otherwise.
[[nodiscard]] std::optional<operation> parse_operation(std::string_view s) noexcept;

}  // namespace preflight::gates
