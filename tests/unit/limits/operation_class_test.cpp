#include <preflight/limits/operation_class.hpp>

#include <gtest/gtest.h>

using preflight::limits::operation_class;

TEST(operation_class, round_trips_names) {
    for (auto c : {operation_class::read, operation_class::write, operation_class::cancel}) {
        auto parsed = preflight::limits::parse_operation_class(preflight::limits::to_string(c));
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(*parsed, c);
    }
}

TEST(operation_class, rejects_unknown_names) {
    EXPECT_FALSE(preflight::limits::parse_operation_class("Write").has_value());
    EXPECT_FALSE(preflight::limits::parse_operation_class("").has_value());
}
