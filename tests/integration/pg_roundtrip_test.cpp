#include "pg_env.hpp"

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <string>

// Talks to the throwaway Postgres started by scripts/pg.sh (PREFLIGHT_TEST_PG_URL).
TEST(pg_roundtrip, parameterized_upsert_returning) {
    PREFLIGHT_REQUIRE_PG(url);
    pqxx::connection conn{url};
    {
        pqxx::nontransaction tx{conn};
        tx.exec("CREATE TEMP TABLE roundtrip (id text PRIMARY KEY, hits bigint NOT NULL)");
    }
    conn.prepare(
        "upsert",
        "INSERT INTO roundtrip (id, hits) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET hits = roundtrip.hits + EXCLUDED.hits "
        "RETURNING hits, (xmax = 0) AS inserted"
    );
    // A key full of SQL metacharacters and unicode is stored and matched exactly.
    const std::string key = "org'; DROP TABLE roundtrip; -- ünï 🚀";
    pqxx::nontransaction tx{conn};
    auto first = tx.exec_prepared1("upsert", key, 5);
    EXPECT_EQ(first[0].as<long>(), 5);
    EXPECT_TRUE(first[1].as<bool>());
    auto second = tx.exec_prepared1("upsert", key, 7);
    EXPECT_EQ(second[0].as<long>(), 12);
    EXPECT_FALSE(second[1].as<bool>());
    auto row = tx.exec_params1("SELECT id, hits FROM roundtrip WHERE id = $1", key);
    EXPECT_EQ(row[0].as<std::string>(), key);
    EXPECT_EQ(row[1].as<long>(), 12);
}
