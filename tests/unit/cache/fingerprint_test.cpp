#include <preflight/cache/fingerprint.hpp>

#include <gtest/gtest.h>

TEST(fingerprint, sha256_known_vectors) {
    EXPECT_EQ(preflight::cache::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(preflight::cache::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(fingerprint, differs_per_secret_and_never_contains_it) {
    const auto a = preflight::cache::sha256_hex("sk_live_rotated_1");
    const auto b = preflight::cache::sha256_hex("sk_live_rotated_2");
    EXPECT_NE(a, b);
    EXPECT_EQ(a.find("sk_live"), std::string::npos);
    EXPECT_EQ(a.size(), 64u);
}
