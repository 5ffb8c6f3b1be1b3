#pragma once

#include <string>
#include <string_view>

namespace preflight::cache {

/// Lower-case hex SHA-256 of `secret` (OpenSSL). Used to key memoized clients by credential without
/// storing or printing the secret itself. Thread-safe.
[[nodiscard]] std::string sha256_hex(std::string_view secret);

}  // namespace preflight::cache
