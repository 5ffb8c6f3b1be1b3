#include "conformance/admission_store_conformance.hpp"
#include "conformance/fixed_window_store_conformance.hpp"
#include "conformance/limit_chain_conformance.hpp"
#include "conformance/rate_limit_store_conformance.hpp"
#include "conformance/run_budget_store_conformance.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_store_set.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

// The store conformance suites, instantiated for the Postgres stores (the in-memory twins instantiate the same
// suites with a manual_clock factory).
using pg_rate_factory = preflight::test::pg_store_factory<preflight::clients::pg_rate_limit_store>;
using pg_window_factory = preflight::test::pg_store_factory<preflight::clients::pg_fixed_window_store>;
using pg_admission_factory = preflight::test::pg_store_factory<preflight::clients::pg_admission_store>;
// The same stores with their writes batched (pg_limit_batch, the default of make_pg_store_set).
using pg_batched_rate_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_rate_limit_store>;
using pg_batched_window_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_fixed_window_store>;
using pg_batched_admission_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_admission_store>;

namespace preflight::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, rate_limit_store_conformance, pg_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, fixed_window_store_conformance, pg_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, admission_store_conformance, pg_admission_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, rate_limit_store_conformance, pg_batched_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, fixed_window_store_conformance, pg_batched_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, admission_store_conformance, pg_batched_admission_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, limit_chain_conformance, preflight::test::pg_chain_factory);
using pg_run_budget_factory = preflight::test::pg_store_factory<preflight::clients::pg_run_budget_store>;
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, run_budget_store_conformance, pg_run_budget_factory);
}  // namespace preflight::conformance

// The set-up of every Postgres test asserts its migrations: one that cannot migrate records a failure (and the test
// fails) instead of returning early as if it passed.
TEST(pg_test_setup, AMigrationThatFailsIsAFailureNotAnEarlyReturn) {
    EXPECT_NONFATAL_FAILURE(
        EXPECT_FALSE(preflight::test::ensure_migrated("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2")),
        "migrate: "
    );
}

// `make_pg_store_set`'s purge: one call removes an idle window, a full (idle) bucket and an expired lease, and keeps
// live state. In this executable for the resource lock above (a purge removes every idle row of a table).
TEST(pg_store_set_purge, RemovesIdleWindowsBucketsAndExpiredLeasesAndKeepsLiveOnes) {
    namespace clients = preflight::clients;
    namespace limits = preflight::limits;
    using namespace std::chrono_literals;
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url)) << "the migrations failed (above)";
    boost::asio::io_context io;
    clients::pool_params p;
    p.url = url;
    p.size = 2;
    auto set = clients::make_pg_store_set(std::make_shared<clients::pg_pool>(io.get_executor(), p));
    ASSERT_TRUE(set.purge);
    const auto idle_window = preflight::conformance::unique_key("idle_window");
    const auto live_window = preflight::conformance::unique_key("live_window");
    const auto idle_bucket = preflight::conformance::unique_key("idle_bucket");
    const auto live_lease = preflight::conformance::unique_key("live_lease");
    const auto dead_lease = preflight::conformance::unique_key("dead_lease");
    using preflight::conformance::run;
    ASSERT_TRUE(run(io, set.windows->consume(idle_window, limits::window_limit{5, 1s}, 1)).has_value());
    ASSERT_TRUE(run(io, set.windows->consume(live_window, limits::window_limit{5, 3600s}, 1)).has_value());
    // 1000 tokens per second: one token is back after 1 ms, and the bucket is full (as good as no row).
    ASSERT_TRUE(run(io, set.rate_limits->acquire(idle_bucket, limits::bucket_limit{1000.0, 1.0}, 1)).has_value());
    ASSERT_TRUE(run(io, set.admissions->reserve(live_lease, 1, 3600s)).has_value());
    ASSERT_TRUE(run(io, set.admissions->reserve(dead_lease, 1, 1ms)).has_value());
    std::this_thread::sleep_for(2100ms);  // the 1 s window ended more than a period ago

    const auto removed = run(io, set.purge());
    ASSERT_TRUE(removed.has_value()) << removed.error().message();
    EXPECT_GE(*removed, 3U);
    pqxx::connection c{url};
    pqxx::nontransaction tx{c};
    const auto rows = [&](const char* table, const std::string& key) {
        return tx.exec_params1(std::string("SELECT count(*) FROM ") + table + " WHERE key = $1", key)[0].as<int>();
    };
    EXPECT_EQ(rows("preflight_windows", idle_window), 0);
    EXPECT_EQ(rows("preflight_windows", live_window), 1);
    EXPECT_EQ(rows("preflight_rate_limits", idle_bucket), 0);
    EXPECT_EQ(rows("preflight_leases", dead_lease), 0);
    EXPECT_EQ(rows("preflight_leases", live_lease), 1);
}
