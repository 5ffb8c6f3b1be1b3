#pragma once

#include <optional>
#include <string_view>

namespace preflight::limits {

/// Which token bucket an operation draws from. `cancel` is exempt from the write bucket.
enum class operation_class { read, write, cancel };

[[nodiscard]] std::string_view to_string(operation_class c) noexcept;

/// Parses "read", "write" or "cancel"; nullopt for anything else.
[[nodiscard]] std::optional<operation_class> parse_operation_class(std::string_view s) noexcept;

}  // namespace preflight::limits
