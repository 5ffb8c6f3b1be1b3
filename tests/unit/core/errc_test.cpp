#include <preflight/core/errc.hpp>

#include <gtest/gtest.h>

namespace {

preflight::result<int> half(int v) {
    if (v % 2 != 0) return preflight::errc::bad_input;
    return v / 2;
}

TEST(errc, carries_category_and_message) {
    boost::system::error_code ec = preflight::errc::store_unavailable;
    EXPECT_STREQ(ec.category().name(), "preflight");
    EXPECT_EQ(ec.message(), "store unavailable");
    EXPECT_EQ(ec, preflight::errc::store_unavailable);
    EXPECT_NE(ec, preflight::errc::timeout);
}

TEST(errc, result_holds_value_or_error) {
    auto ok = half(4);
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(*ok, 2);
    auto bad = half(3);
    ASSERT_TRUE(bad.has_error());
    EXPECT_EQ(bad.error(), preflight::errc::bad_input);
}

}  // namespace
