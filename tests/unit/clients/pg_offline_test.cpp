#include "offline_pool.hpp"
#include "run_coro.hpp"
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

// What the Postgres layer decides before any I/O: no server is needed (the pool connects lazily and these
// calls never reach it).
namespace {

using preflight::errc;
using preflight::test::run_coro;
using preflight::test::unreachable_pool;

}  // namespace

TEST(embedded_migrations, are_ordered_named_and_non_empty) {
    const auto all = preflight::clients::embedded_migrations();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.front().version, 1);
    EXPECT_EQ(all.front().name, "001_limits.sql");
    for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].version, all[i].version);
    EXPECT_NE(all.front().sql.find("CREATE TABLE IF NOT EXISTS preflight_rate_limits"), std::string_view::npos);
    EXPECT_NE(all.front().sql.find("preflight_reserve"), std::string_view::npos);
}

TEST(pg_pool_params, zero_size_or_depth_is_misuse) {
    boost::asio::io_context io;
    auto p = unreachable_pool();
    p.size = 0;
    EXPECT_THROW(preflight::clients::pg_pool(io.get_executor(), p), std::invalid_argument);
    p.size = 1;
    p.max_in_flight = 0;
    EXPECT_THROW(preflight::clients::pg_pool(io.get_executor(), p), std::invalid_argument);
}

TEST(pg_rate_limit_store_offline, bad_limits_throw_and_bad_keys_are_bad_input) {
    boost::asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), unreachable_pool()};
    preflight::clients::pg_rate_limit_store store{pool};
    EXPECT_THROW(run_coro(io, store.acquire("k", {0, 10}, 1)), std::invalid_argument);
    EXPECT_THROW(run_coro(io, store.acquire("k", {1, 0.5}, 1)), std::invalid_argument);
    EXPECT_THROW(run_coro(io, store.refund("k", {-1, 10}, 1)), std::invalid_argument);
    auto long_key = run_coro(io, store.acquire(std::string(preflight::clients::max_key_bytes + 1, 'x'), {1, 1}, 1));
    ASSERT_FALSE(long_key);
    EXPECT_EQ(long_key.error(), errc::bad_input);
    auto nul = run_coro(io, store.acquire(std::string("a\0b", 3), {1, 1}, 1));
    ASSERT_FALSE(nul);
    EXPECT_EQ(nul.error(), errc::bad_input);
    EXPECT_EQ(pool.stats().statements, 0u);
}

TEST(pg_fixed_window_store_offline, sub_second_period_throws_and_bad_keys_are_bad_input) {
    boost::asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), unreachable_pool()};
    preflight::clients::pg_fixed_window_store store{pool};
    EXPECT_THROW(run_coro(io, store.consume("k", {10, std::chrono::seconds{0}}, 1)), std::invalid_argument);
    auto r = run_coro(io, store.consume(std::string(preflight::clients::max_key_bytes + 1, 'x'), {}, 1));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::bad_input);
}

TEST(pg_admission_store_offline, malformed_lease_ids_are_unknown_without_a_round_trip) {
    boost::asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), unreachable_pool()};
    preflight::clients::pg_admission_store store{pool};
    for (const char* id :
         {"", "lease-1", "00000000-0000-4000-8000-00000000000", "zzzzzzzz-0000-4000-8000-000000000000"}) {
        auto rel = run_coro(io, store.release(id));
        ASSERT_TRUE(rel) << id;
        EXPECT_FALSE(*rel) << id;
        auto ren = run_coro(io, store.renew(id, std::chrono::seconds{1}));
        ASSERT_TRUE(ren) << id;
        EXPECT_FALSE(*ren) << id;
    }
    EXPECT_EQ(pool.stats().statements, 0u);
}

TEST(pg_pool_offline, unreachable_server_fails_typed_and_leaves_no_work) {
    boost::asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), unreachable_pool()};
    const preflight::clients::pg_statement st{"t", "SELECT 1"};
    auto r = run_coro(io, pool.exec(st, {}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::store_unavailable);
    EXPECT_GE(pool.stats().failures, 1u);
}
