#include <preflight/limits/operation_class.hpp>

namespace preflight::limits {

std::string_view to_string(operation_class c) noexcept {
    switch (c) {
        case operation_class::read: return "read";
        case operation_class::write: return "write";
        case operation_class::cancel: return "cancel";
    }
    return "unknown";
}

std::optional<operation_class> parse_operation_class(std::string_view s) noexcept {
    if (s == "read") return operation_class::read;
    if (s == "write") return operation_class::write;
    if (s == "cancel") return operation_class::cancel;
    return std::nullopt;
}

}  // namespace preflight::limits
