// The issue 7 seed scenarios on the Postgres store set (the same typed suite as the in-memory run in
// tests/unit/builtin/memory_scenarios_test.cpp). Runs serially: it truncates the preflight tables.
#include "pg_fixture.hpp"
#include "unit/builtin/scenario_suite.hpp"
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_store_set.hpp>

#include <pqxx/pqxx>

namespace preflight::builtin_test {
namespace {

/// Scenario factory for `clients::make_pg_store_set` over a small pool on the suite's io_context. Time of the
/// limit stores is the server's clock.
struct pg_scenario_factory {
    void set_up(asio::io_context& io, const preflight::clock&) {
        PREFLIGHT_REQUIRE_PG(url);
        if (!test::ensure_migrated(url)) return;
        {
            pqxx::connection c{url};
            pqxx::nontransaction tx{c};
            tx.exec(
                "TRUNCATE preflight_bans, preflight_subscriptions, preflight_usage, preflight_org_members, "
                "preflight_balances, preflight_rate_limits, preflight_windows, preflight_leases"
            );
        }
        io_ = &io;
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        pool_ = std::make_shared<clients::pg_pool>(io.get_executor(), p);
        stores_ = clients::make_pg_store_set(pool_);
    }
    clients::store_set stores() { return stores_; }
    void seed(const boost::json::value& facts) {
        auto loaded = run(*io_, clients::pg_load_fact_data(*pool_, facts));
        ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
    }

    asio::io_context* io_ = nullptr;
    std::shared_ptr<clients::pg_pool> pool_;
    clients::store_set stores_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(postgres, builtin_scenarios, pg_scenario_factory);

/// The same with the sequential stateful phase (speculative is the default on Postgres).
struct pg_sequential_factory : pg_scenario_factory {
    static constexpr const char* speculative = "off";
};
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_sequential, builtin_scenarios, pg_sequential_factory);

}  // namespace
}  // namespace preflight::builtin_test
