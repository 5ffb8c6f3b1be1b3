#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace preflight::test {

/// The throwaway Postgres URL from PREFLIGHT_TEST_PG_URL (set by scripts/test.sh), or nullopt.
std::optional<std::string> pg_url();

/// True when running in CI (CI=true): integration tests must then fail instead of skipping.
bool in_ci();

}  // namespace preflight::test

/// Use at the top of an integration test (or SetUp): binds `url_var` to the Postgres URL. Without one,
/// the test is skipped with a one-line reason, or fails when CI=true.
#define PREFLIGHT_REQUIRE_PG(url_var)                                                                           \
    std::string url_var;                                                                                        \
    if (auto preflight_pg_url_ = ::preflight::test::pg_url()) {                                                 \
        url_var = *preflight_pg_url_;                                                                           \
    } else if (::preflight::test::in_ci()) {                                                                    \
        FAIL() << "PREFLIGHT_TEST_PG_URL is unset but CI=true: integration tests need Postgres";                \
    } else {                                                                                                    \
        GTEST_SKIP(                                                                                             \
        ) << "PREFLIGHT_TEST_PG_URL is unset (start one: export PREFLIGHT_TEST_PG_URL=$(scripts/pg.sh start))"; \
    }
