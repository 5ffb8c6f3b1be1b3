#include <preflight/gates/operation.hpp>

#include <gtest/gtest.h>

using preflight::gates::operation;

TEST(operation, round_trips_wire_names) {
    for (auto op :
         {operation::execute, operation::execute_with_pause, operation::resume, operation::cancel, operation::read}) {
        auto parsed = preflight::gates::parse_operation(preflight::gates::to_string(op));
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(*parsed, op);
    }
    EXPECT_EQ(preflight::gates::to_string(operation::execute_with_pause), "execute_with_pause");
}

TEST(operation, rejects_unknown) {
    EXPECT_FALSE(preflight::gates::parse_operation("delete").has_value());
    EXPECT_FALSE(preflight::gates::parse_operation("EXECUTE").has_value());
}
