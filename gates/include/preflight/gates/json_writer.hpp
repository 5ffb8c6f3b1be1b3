#pragma once

#include <preflight/gates/utf8.hpp>

#include <charconv>
#include <chrono>
#include <string>
#include <string_view>

namespace preflight::gates::json_writer {

/// Small appenders that write JSON text straight into a string (no `boost::json` objects, no allocation beyond the
/// string's own growth). The one writer of every decision body (decision_json.hpp) and of preflightd's other answers.
/// Thread safety: pure functions.

/// `s` as a JSON string literal: `"`, `\` and control characters escaped; a well-formed UTF-8 sequence is copied and
/// any other byte becomes U+FFFD (so text from outside never makes the document invalid).
inline void string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        // A run of bytes that need no escaping goes in one append (gate names, codes, ids: the whole string).
        std::size_t plain = i;
        while (plain < s.size()) {
            const auto c = static_cast<unsigned char>(s[plain]);
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
            ++plain;
        }
        if (plain > i) {
            out.append(s.data() + i, plain - i);
            i = plain;
            if (i == s.size()) break;
        }
        const auto b0 = static_cast<unsigned char>(s[i]);
        if (b0 < 0x80) {
            switch (b0) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    out.append("\\u00");
                    out.push_back(hex[b0 >> 4]);
                    out.push_back(hex[b0 & 0xf]);
            }
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_length(s, i);
        if (len != 0) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out.append("\xef\xbf\xbd");
            ++i;
        }
    }
    out.push_back('"');
}

/// An integer.
template <class T>
void number(std::string& out, T v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// `"key":`, preceded by a comma unless `first`. Keys are literals that need no escaping.
inline void key(std::string& out, std::string_view k, bool first = false) {
    if (!first) out.push_back(',');
    out.push_back('"');
    out.append(k);
    out.append("\":");
}

inline void boolean(std::string& out, bool b) {
    out.append(b ? "true" : "false");
}

/// A duration in µs as a JSON number that reads back as a double (`0.0`, not `0`).
inline void micros(std::string& out, std::chrono::nanoseconds ns) {
    char buf[48];
    const auto r = std::to_chars(buf, buf + sizeof buf, std::chrono::duration<double, std::micro>(ns).count());
    const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    out.append(text);
    if (text.find_first_of(".e") == std::string_view::npos) out.append(".0");
}

/// `s` as a JSON string literal, in a new string.
[[nodiscard]] inline std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    string(out, s);
    return out;
}

}  // namespace preflight::gates::json_writer
