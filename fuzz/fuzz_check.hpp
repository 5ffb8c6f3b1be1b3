#pragma once

// Shared by the fuzz targets: a finding is reported by printing what broke and aborting, so libFuzzer
// saves the input and the replay test (tests/unit/fuzz_replay) fails.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::fuzz {

/// examples/data.json of this checkout (the in-memory tenants of fuzz_http): defined in a unit the build generates
/// from fuzz/fuzz_data_path.cpp.in.
extern const char* const data_json_path;

[[noreturn]] inline void finding(std::string_view what) {
    std::fprintf(stderr, "FUZZ FINDING: %.*s\n", static_cast<int>(what.size()), what.data());
    std::abort();
}

inline void require(bool ok, std::string_view what) {
    if (!ok) finding(what);
}

/// Splits `data` at every `sep` byte (the last part may be empty).
inline std::vector<std::string> split(std::string_view data, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto pos = data.find(sep, start);
        if (pos == std::string_view::npos) {
            parts.emplace_back(data.substr(start));
            return parts;
        }
        parts.emplace_back(data.substr(start, pos - start));
        start = pos + 1;
    }
}

/// A byte reader that yields zeros once the input is used up.
class byte_reader {
public:
    byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
        return v;
    }
    /// A string of up to `max` bytes, its length taken from the next byte.
    std::string str(std::size_t max = 255) {
        std::size_t n = u8();
        if (n > max) n = max;
        std::string s;
        while (n-- > 0 && pos_ < size_) s.push_back(static_cast<char>(data_[pos_++]));
        return s;
    }
    [[nodiscard]] bool empty() const noexcept { return pos_ >= size_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

}  // namespace preflight::fuzz
