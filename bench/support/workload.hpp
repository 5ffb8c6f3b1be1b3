#pragma once
// Helpers shared by the benchmark harnesses: the key scheme and the percentile rule of
// ../shared/BENCHMARKS.md, and the one-JSON-object-per-case output.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace preflight::bench {

/// Key index of operation i for "10k distinct keys" (modulus 10000) or caches (modulus 1000).
inline std::uint64_t key_index(std::uint64_t i, std::uint64_t modulus) {
    return (i * 7919) % modulus;
}

/// Nearest-rank percentile: sorted[ceil(p/100 * n) - 1]. Sorts `v` in place.
inline double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
}

/// A comma-separated list of integers ("1,16,64"), as the benchmarks' --concurrency flags take it. Throws
/// std::invalid_argument / std::out_of_range (from std::stoi) for anything else.
inline std::vector<int> parse_int_list(const std::string& s) {
    std::vector<int> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
        const auto comma = s.find(',', pos);
        out.push_back(std::stoi(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

}  // namespace preflight::bench
