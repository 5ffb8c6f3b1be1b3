#include "pg_env.hpp"

#include <cstdlib>

namespace preflight::test {

std::optional<std::string> pg_url() {
    const char* v = std::getenv("PREFLIGHT_TEST_PG_URL");
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
}

bool in_ci() {
    const char* v = std::getenv("CI");
    return v != nullptr && std::string_view(v) == "true";
}

}  // namespace preflight::test
