// Runs every file of fuzz/corpus/<target>/ through its fuzz target. A target reports a finding by aborting
// (or a sanitizer does), which fails this test; each test also fails when its corpus is missing or empty.

#include "source_paths.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int preflight_fuzz_config(const std::uint8_t* data, std::size_t size);
extern "C" int preflight_fuzz_fact_data(const std::uint8_t* data, std::size_t size);
extern "C" int preflight_fuzz_decision(const std::uint8_t* data, std::size_t size);
#ifdef PREFLIGHT_FUZZ_HAVE_SERVER
extern "C" int preflight_fuzz_http(const std::uint8_t* data, std::size_t size);
#endif

namespace {

using fuzz_fn = int (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& target, fuzz_fn fn) {
    const std::filesystem::path dir = std::filesystem::path(preflight::test::source_dir) / "fuzz" / "corpus" / target;
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(dir)) {
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            if (e.is_regular_file()) files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        SCOPED_TRACE(f.string());
        EXPECT_EQ(fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    }
    return files.size();
}

TEST(fuzz_replay, config_corpus) {
    EXPECT_GT(replay("config", preflight_fuzz_config), 0u);
}

TEST(fuzz_replay, fact_data_corpus) {
    EXPECT_GT(replay("fact_data", preflight_fuzz_fact_data), 0u);
}

TEST(fuzz_replay, decision_corpus) {
    EXPECT_GT(replay("decision", preflight_fuzz_decision), 0u);
}

#ifdef PREFLIGHT_FUZZ_HAVE_SERVER
TEST(fuzz_replay, http_corpus) {
    EXPECT_GT(replay("http", preflight_fuzz_http), 0u);
}
#endif

}  // namespace
