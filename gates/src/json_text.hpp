#pragma once

#include <boost/json/string.hpp>

#include <cstddef>
#include <string_view>

namespace preflight::gates::detail {

/// `s` as valid UTF-8 for a JSON string: every byte that does not start a well-formed sequence (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF) becomes U+FFFD. Valid text is returned unchanged.
/// Boost.JSON serialises strings byte for byte, so without this a denial text with a stray byte (e.g. from a
/// billing provider's reason) would make the body invalid JSON. Found by fuzz/fuzz_decision.cpp.
inline boost::json::string json_text(std::string_view s) {
    boost::json::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
        if (b0 < 0x80) {
            len = 1;
        } else if (b0 >= 0xc2 && b0 <= 0xdf) {
            len = 2;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            len = 3;
            if (b0 == 0xe0) lo = 0xa0;  // no overlong forms
            if (b0 == 0xed) hi = 0x9f;  // no surrogates
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            len = 4;
            if (b0 == 0xf0) lo = 0x90;  // no overlong forms
            if (b0 == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
        }
        bool ok = len != 0 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xbf);
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out.append("\xef\xbf\xbd");
            ++i;
        }
    }
    return out;
}

}  // namespace preflight::gates::detail
