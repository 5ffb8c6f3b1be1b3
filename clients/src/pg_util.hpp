#pragma once

#include <preflight/clients/pg_rate_limit_store.hpp>
#include <preflight/core/errc.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::clients::detail {

/// bad_input for keys Postgres cannot store exactly (too long, NUL bytes); success otherwise.
inline result<void> check_key(std::string_view key) {
    if (key.size() > max_key_bytes || key.find('\0') != std::string_view::npos) return errc::bad_input;
    return {};
}

/// Statement parameters. (A plain function on purpose: g++ 12 miscompiles braced initializer lists of
/// std::string inside coroutines, destroying the temporaries twice.)
template <class... A>
std::vector<std::string> params(A&&... a) {
    std::vector<std::string> v;
    v.reserve(sizeof...(A));
    (v.emplace_back(std::forward<A>(a)), ...);
    return v;
}

/// Shortest text that parses back to exactly `v` (Postgres float8 input accepts it).
inline std::string to_text(double v) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, ec == std::errc{} ? end : buf);
}

/// Microseconds (as a double) to nanoseconds, rounded to the nearest.
inline std::chrono::nanoseconds us_to_ns(double us) {
    return std::chrono::nanoseconds{static_cast<std::chrono::nanoseconds::rep>(std::llround(us * 1000.0))};
}

}  // namespace preflight::clients::detail
