#pragma once

#include <cstddef>
#include <string_view>

namespace preflight::gates {

/// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
/// U+10FFFF) that starts at `s[i]`: 1 for ASCII, 2 to 4 otherwise, 0 when the bytes there are not one.
/// Precondition: `i < s.size()`. Thread safety: pure function.
[[nodiscard]] inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return 1;
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
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
    if (len == 0 || i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
    }
    return len;
}

/// Appends `s` to `out` (any string type with `append(std::string_view)`) as valid UTF-8: every byte that does not
/// start a well-formed sequence becomes U+FFFD; valid text is appended unchanged. Boost.JSON serialises strings
/// byte for byte, so text from outside (a provider's reason, a request target) goes through this before it is
/// placed in a JSON body. Thread safety: pure function.
template <class String>
void append_valid_utf8(String& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t len = utf8_sequence_length(s, i);
        if (len != 0) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out.append(std::string_view("\xef\xbf\xbd"));
            ++i;
        }
    }
}

}  // namespace preflight::gates
