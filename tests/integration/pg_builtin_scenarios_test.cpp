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
        ASSERT_TRUE(test::ensure_migrated(url)) << "the migrations failed (above)";
        {
            pqxx::connection c{url};
            pqxx::nontransaction tx{c};
            tx.exec(
                "TRUNCATE preflight_bans, preflight_subscriptions, preflight_usage, preflight_org_members, "
                "preflight_balances, preflight_rate_limits, preflight_windows, preflight_leases, preflight_run_budgets"
            );
        }
        {
            // Every lease ever written, by key (dropped again by the destructor).
            pqxx::connection c{url};
            pqxx::nontransaction tx{c};
            tx.exec(
                "CREATE TABLE IF NOT EXISTS preflight_test_lease_audit (key text NOT NULL);"
                "TRUNCATE preflight_test_lease_audit;"
                "CREATE OR REPLACE FUNCTION preflight_test_lease_audit_fn() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN INSERT INTO preflight_test_lease_audit VALUES (NEW.key); RETURN NEW; END$$;"
                "CREATE OR REPLACE TRIGGER preflight_test_lease_audit AFTER INSERT ON preflight_leases "
                "FOR EACH ROW EXECUTE FUNCTION preflight_test_lease_audit_fn();"
            );
            url_ = url;
        }
        io_ = &io;
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        pool_ = std::make_shared<clients::pg_pool>(io.get_executor(), p);
        stores_ = clients::make_pg_store_set(pool_);
    }
    ~pg_scenario_factory() {
        if (url_.empty()) return;
        try {
            pqxx::connection c{url_};
            pqxx::nontransaction tx{c};
            tx.exec("DROP TRIGGER IF EXISTS preflight_test_lease_audit ON preflight_leases");
        } catch (const std::exception& e) {
            ADD_FAILURE() << "dropping the lease audit trigger: " << e.what();
        }
    }
    pg_scenario_factory() = default;
    pg_scenario_factory(const pg_scenario_factory&) = delete;
    pg_scenario_factory& operator=(const pg_scenario_factory&) = delete;

    /// Leases written for `key` since the test began (expired, released and live ones alike).
    std::int64_t leases_written(const std::string& key) {
        pqxx::connection c{url_};
        pqxx::nontransaction tx{c};
        return tx.exec_params1("SELECT count(*) FROM preflight_test_lease_audit WHERE key = $1", key)[0]
            .as<std::int64_t>();
    }
    clients::store_set stores() { return stores_; }
    void seed(const boost::json::value& facts) {
        auto loaded = run(*io_, clients::pg_load_fact_data(*pool_, facts));
        ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
    }

    std::string url_;
    asio::io_context* io_ = nullptr;
    std::shared_ptr<clients::pg_pool> pool_;
    clients::store_set stores_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(postgres, builtin_scenarios, pg_scenario_factory);

/// The same with one call per stateful gate (the default on Postgres is one ordered call for the three).
struct pg_sequential_factory : pg_scenario_factory {
    static constexpr const char* stateful_call = "separate";
};
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_sequential, builtin_scenarios, pg_sequential_factory);

}  // namespace
}  // namespace preflight::builtin_test
