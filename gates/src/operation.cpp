#include <preflight/gates/operation.hpp>

#include <array>
#include <utility>

namespace preflight::gates {
namespace {

constexpr std::array<std::pair<operation, std::string_view>, 5> names{{
    {operation::execute, "execute"},
    {operation::execute_with_pause, "execute_with_pause"},
    {operation::resume, "resume"},
    {operation::cancel, "cancel"},
    {operation::read, "read"},
}};

}  // namespace

std::string_view to_string(operation op) noexcept {
    for (const auto& [value, name] : names) {
        if (value == op) return name;
    }
    return "unknown";
}

std::optional<operation> parse_operation(std::string_view s) noexcept {
    for (const auto& [value, name] : names) {
        if (name == s) return value;
    }
    return std::nullopt;
}

}  // namespace preflight::gates
