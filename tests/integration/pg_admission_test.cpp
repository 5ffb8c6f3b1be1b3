#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_pool.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>

// What the Postgres admission reservation (preflight_admit, sql/003_admission.sql) guarantees beyond the
// conformance suite: where expired rows go, and that a reservation waits for the per-key lock of a reservation
// still in flight (old preflight_reserve included) and then counts its lease.
namespace {

using namespace std::chrono_literals;
using preflight::conformance::run;

preflight::clients::pool_params params(const std::string& url) {
    preflight::clients::pool_params p;
    p.url = url;
    p.size = 2;
    return p;
}

long long rows_of(const std::string& url, const std::string& key) {
    pqxx::connection c{url};
    pqxx::nontransaction tx{c};
    return tx.exec_params1("SELECT count(*) FROM preflight_leases WHERE key = $1", key)[0].as<long long>();
}

// Waits (up to 10 s) until a backend waits on an advisory lock while running a statement that mentions `key`.
bool someone_waits_on_lock_of(const std::string& url, const std::string& key) {
    pqxx::connection c{url};
    for (int i = 0; i < 1000; ++i) {
        pqxx::nontransaction tx{c};
        const auto n = tx.exec_params1(
                             "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                             " AND wait_event = 'advisory' AND strpos(query, $1) > 0",
                             key
        )[0]
                           .as<long long>();
        if (n > 0) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

struct admit_result {
    std::optional<std::string> lease_id;
    int in_use = -1;
};

// preflight_admit(key, max, 1 h) on its own connection, autocommitted (the key is inlined so that
// pg_stat_activity shows it; keys of these tests are plain ASCII without quotes).
admit_result admit_autocommit(const std::string& url, const std::string& key, int max) {
    pqxx::connection c{url};
    pqxx::nontransaction tx{c};
    const auto row = tx.exec1(
        "SELECT o_lease_id, o_in_use FROM preflight_admit(" + tx.quote(key) + ", " + std::to_string(max) + ", 3600000)"
    );
    admit_result r;
    if (!row[0].is_null()) r.lease_id = row[0].as<std::string>();
    r.in_use = row[1].as<int>();
    return r;
}

// A holder reserves `key` (max 1) with `holder_function` in an open transaction, so its lease is not committed yet
// and it holds the key's lock; an autocommitted preflight_admit of the same key must wait for the lock and then see
// the committed lease: not admitted, 1 in use. (Counting with a snapshot taken before the lock would admit.)
void waiter_counts_the_lease_committed_while_it_waited(const std::string& url, const std::string& holder_function) {
    const auto key = preflight::conformance::unique_key("held");
    pqxx::connection holder{url};
    pqxx::work tx{holder};
    const auto held =
        tx.exec1("SELECT o_lease_id, o_in_use FROM " + holder_function + "(" + tx.quote(key) + ", 1, 3600000)");
    ASSERT_FALSE(held[0].is_null());
    admit_result waited;
    std::string waiter_error;
    std::thread waiter([&] {
        try {
            waited = admit_autocommit(url, key, 1);
        } catch (const std::exception& e) {
            waiter_error = e.what();
        }
    });
    const bool waiting = someone_waits_on_lock_of(url, key);
    tx.commit();
    waiter.join();
    ASSERT_TRUE(waiter_error.empty()) << waiter_error;
    EXPECT_TRUE(waiting) << "preflight_admit did not wait on the key's advisory lock";
    EXPECT_FALSE(waited.lease_id.has_value());
    EXPECT_EQ(waited.in_use, 1);
    EXPECT_EQ(rows_of(url, key), 1);
}

}  // namespace

TEST(pg_admission, waits_for_the_key_lock_and_counts_the_lease_committed_meanwhile) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    waiter_counts_the_lease_committed_while_it_waited(url, "preflight_admit");
}

// Binaries of earlier versions call preflight_reserve (001) during a rolling upgrade: it takes the same lock.
TEST(pg_admission, shares_the_key_lock_with_the_older_preflight_reserve) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    waiter_counts_the_lease_committed_while_it_waited(url, "preflight_reserve");
}

// Expired leases are not counted, and the reservation that meets them deletes them (no purge needed for a key in
// use); live leases stay.
TEST(pg_admission, reserve_deletes_the_expired_leases_of_its_key) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    boost::asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), params(url)};
    preflight::clients::pg_admission_store store{pool};
    const auto key = preflight::conformance::unique_key("exp");
    const auto other = preflight::conformance::unique_key("other");
    for (int i = 0; i < 3; ++i) {
        auto g = run(io, store.reserve(key, 4, 100ms));
        ASSERT_TRUE(g && g->admitted);
    }
    auto live = run(io, store.reserve(key, 4, 1h));
    ASSERT_TRUE(live && live->admitted);
    EXPECT_EQ(live->in_use, 4u);
    auto other_lease = run(io, store.reserve(other, 1, 100ms));
    ASSERT_TRUE(other_lease && other_lease->admitted);
    EXPECT_EQ(rows_of(url, key), 4);
    std::this_thread::sleep_for(150ms);  // the three short leases expire (server clock)

    auto next = run(io, store.reserve(key, 4, 1h));
    ASSERT_TRUE(next && next->admitted);
    EXPECT_EQ(next->in_use, 2u);        // the live lease and this one
    EXPECT_EQ(rows_of(url, key), 2);    // the expired rows are gone
    EXPECT_EQ(rows_of(url, other), 1);  // another key's expired row waits for its own reserve or a purge
    auto purged = run(io, store.purge_expired());
    ASSERT_TRUE(purged);
    EXPECT_GE(*purged, 1u);
    EXPECT_EQ(rows_of(url, other), 0);
    EXPECT_TRUE(*run(io, store.release(live->lease_id)));
    EXPECT_TRUE(*run(io, store.release(next->lease_id)));
    EXPECT_EQ(rows_of(url, key), 0);
}
