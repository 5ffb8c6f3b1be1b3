#pragma once

#include <preflight/gates/utf8.hpp>

#include <boost/json/string.hpp>

#include <cstddef>
#include <string_view>

namespace preflight::gates::detail {

/// `s` as valid UTF-8 for a JSON string (see `append_valid_utf8`).
/// Boost.JSON serialises strings byte for byte, so without this a denial text with a stray byte (e.g. from a
/// billing provider's reason) would make the body invalid JSON. Found by fuzz/fuzz_decision.cpp.
inline boost::json::string json_text(std::string_view s) {
    boost::json::string out;
    out.reserve(s.size());
    append_valid_utf8(out, s);
    return out;
}

}  // namespace preflight::gates::detail
