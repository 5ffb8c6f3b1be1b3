#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::clients::pg_pool;
using preflight::clients::pg_rows;
using preflight::clients::pg_statement;
using preflight::clients::pool_params;
using preflight::conformance::run;

namespace {

std::string unique_app(const char* what) {
    static std::mt19937_64 rng{std::random_device{}()};
    return std::string("pf_") + what + "_" + std::to_string(rng() % 1000000000);
}

const pg_statement select_one{"t_select_one", "SELECT 1"};
const pg_statement sleep_stmt{"t_sleep", "SELECT pg_sleep($1::float8)"};

pool_params make_params(
    const std::string& url,
    std::size_t size,
    std::chrono::milliseconds statement_timeout = 5s,
    const std::string& app = "preflight"
) {
    pool_params p;
    p.url = url;
    p.size = size;
    p.statement_timeout = statement_timeout;
    p.application_name = app;
    return p;
}

int active_sleeps(pqxx::connection& admin, const std::string& app) {
    pqxx::nontransaction tx{admin};
    return tx
        .exec_params1(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'"
            " AND query LIKE 'SELECT pg_sleep%'",
            app
        )[0]
        .as<int>();
}

}  // namespace

TEST(pg_pool, runs_prepared_statements_with_parameters) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 2)};
    const pg_statement echo{"t_echo", "SELECT $1::text, length($1::text), $2::bigint + 1"};
    const std::string key = "x'); DROP TABLE t; -- ünï 🚀";
    auto r = run(io, pool.exec(echo, {key, "41"}));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ(r->text(0, 0), key);
    EXPECT_EQ(r->as_int64(0, 2), 42);
    EXPECT_GE(pool.stats().statements, 2u);  // PREPARE + execute
}

TEST(pg_pool, connect_all_opens_every_connection) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 3)};
    auto r = run(io, pool.connect_all());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(pool.stats().connects, 3u);
}

TEST(pg_pool, many_concurrent_statements_pipeline_over_few_connections) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    auto pp = make_params(url, 2);
    pp.max_in_flight = 16;
    pg_pool pool{io.get_executor(), pp};
    int ok = 0;
    for (int i = 0; i < 100; ++i) {
        asio::co_spawn(
            io,
            [&pool, &ok, i]() -> asio::awaitable<void> {
                const pg_statement sq{"t_square", "SELECT $1::bigint * $1::bigint"};
                auto r = co_await pool.exec(sq, std::to_string(i));
                if (r && r->as_int64(0, 0) == static_cast<std::int64_t>(i) * i) ++ok;
            },
            asio::detached
        );
    }
    while (ok < 100 && io.run_one() > 0) {
    }
    EXPECT_EQ(ok, 100);
    EXPECT_LE(pool.stats().connects, 2u);
}

// Statements submitted together (one turn) share a connection (affinity; coalesce_max of them per connection), each
// with its own sync: an error in one never aborts the others. The statement hook sees each statement sent once and
// completed once.
TEST(pg_pool, statements_submitted_together_share_a_connection_and_fail_independently) {
    PREFLIGHT_REQUIRE_PG(url);
    struct variant {
        bool coalesce;
        std::size_t coalesce_max;
        const char* name;
    };
    for (const variant v :
         {variant{true, 8, "coalesce"}, variant{true, 2, "coalesce by two"}, variant{false, 8, "spread"}}) {
        SCOPED_TRACE(v.name);
        const bool coalesce = v.coalesce;
        asio::io_context io;
        auto pp = make_params(url, 4);
        pp.coalesce = coalesce;
        pp.coalesce_max = v.coalesce_max;
        std::vector<preflight::clients::pg_statement_event> events;
        pp.on_statement = [&events](const preflight::clients::pg_statement_event& e) {
            if (e.internal) return;  // PREPAREs of first use on a connection
            auto copy = e;
            copy.statement = {};  // the name's storage belongs to the pool
            events.push_back(copy);
        };
        pg_pool pool{io.get_executor(), pp};
        ASSERT_TRUE(run(io, pool.connect_all()));
        const pg_statement div{"t_div", "SELECT 10 / $1::int"};
        events.clear();
        std::vector<std::optional<preflight::result<pg_rows>>> results(4);
        for (int i = 0; i < 4; ++i) {
            asio::co_spawn(
                io,
                [&pool, &results, &div, i]() -> asio::awaitable<void> {
                    std::string arg = i == 1 ? "0" : std::to_string(i + 1);  // statement 1 divides by zero
                    results[static_cast<std::size_t>(i)] = co_await pool.exec(div, std::move(arg));
                },
                asio::detached
            );
        }
        while (std::any_of(results.begin(), results.end(), [](const auto& r) { return !r.has_value(); }) &&
               io.run_one() > 0) {
        }
        ASSERT_TRUE(results[0] && *results[0]);
        EXPECT_EQ((*results[0])->as_int64(0, 0), 10);
        ASSERT_TRUE(results[1]);
        EXPECT_FALSE(*results[1]) << "division by zero is an error of that statement only";
        for (std::size_t i : {2u, 3u}) {
            ASSERT_TRUE(results[i] && *results[i]) << i;
            EXPECT_EQ((*results[i])->as_int64(0, 0), 10 / static_cast<std::int64_t>(i + 1));
        }
        ASSERT_EQ(events.size(), 8u);
        std::set<std::size_t> conns;
        std::size_t sent = 0, failed = 0;
        for (const auto& e : events) {
            if (e.what == preflight::clients::pg_statement_event::kind::sent) {
                ++sent;
                conns.insert(e.connection);
            } else if (e.error) {
                ++failed;
            }
        }
        EXPECT_EQ(sent, 4u);
        EXPECT_EQ(failed, 1u);
        // Every statement was sent before the first one completed (one round trip for all four).
        EXPECT_EQ(events[3].what, preflight::clients::pg_statement_event::kind::sent);
        if (coalesce) {
            EXPECT_EQ(conns.size(), (4 + v.coalesce_max - 1) / v.coalesce_max)
                << "one connection per coalesce_max statements of one turn";
        } else {
            EXPECT_GT(conns.size(), 1u) << "spread over idle connections";
        }
    }
}

TEST(pg_pool, statement_timeout_is_honoured_and_the_pool_keeps_working) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1, 100ms)};
    auto r = run(io, pool.exec(sleep_stmt, {"5"}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::timeout);
    auto again = run(io, pool.exec(select_one, {}));
    EXPECT_TRUE(again) << again.error().message();
}

TEST(pg_pool, server_error_is_typed_and_reported_with_the_statement_name) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    std::string reported;
    auto p = make_params(url, 1);
    p.on_error = [&](std::string_view stmt, boost::system::error_code, std::string_view msg) {
        reported = std::string(stmt) + "|" + std::string(msg);
    };
    pg_pool pool{io.get_executor(), p};
    const pg_statement bad_cast{"t_bad_cast", "SELECT $1::integer"};
    auto r = run(io, pool.exec(bad_cast, {"not a number"}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::bad_input);
    EXPECT_NE(reported.find("t_bad_cast"), std::string::npos) << reported;
    EXPECT_TRUE(run(io, pool.exec(bad_cast, {"7"})));
}

TEST(pg_pool, exhaustion_waits_bounded_then_fails_typed) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    auto pp = make_params(url, 1);
    pp.wait_timeout = 50ms;
    pp.max_in_flight = 1;
    pg_pool pool{io.get_executor(), pp};
    ASSERT_TRUE(run(io, pool.connect_all()));
    preflight::result<pg_rows> slow = errc::cancelled;
    bool slow_done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            slow = co_await pool.exec(sleep_stmt, "0.3");
            slow_done = true;
        },
        asio::detached
    );
    auto r = run(io, pool.exec(select_one, {}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::pool_exhausted);
    while (!slow_done && io.run_one() > 0) {
    }
    EXPECT_TRUE(slow) << slow.error().message();
}

TEST(pg_pool, cancelled_waiter_returns_at_once_and_the_statement_is_cancelled_server_side) {
    PREFLIGHT_REQUIRE_PG(url);
    const auto app = unique_app("cancel");
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1, 20s, app)};
    using namespace asio::experimental::awaitable_operators;
    auto raced = run(io, [&]() -> asio::awaitable<bool> {
        asio::steady_timer t{co_await asio::this_coro::executor, 200ms};
        auto v = co_await (pool.exec(sleep_stmt, "10") || t.async_wait(asio::use_awaitable));
        co_return v.index() == 1;  // the timer won; the statement's waiter was cancelled
    }());
    EXPECT_TRUE(raced);
    // The one connection serves the next statement: the sleep was cancelled on the server.
    auto next = run(io, pool.exec(select_one, {}));
    EXPECT_TRUE(next) << next.error().message();
    pqxx::connection admin{url};
    EXPECT_EQ(active_sleeps(admin, app), 0);
}

TEST(pg_pool, broken_connection_fails_typed_and_is_replaced_on_next_use) {
    PREFLIGHT_REQUIRE_PG(url);
    const auto app = unique_app("broken");
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1, 5s, app)};
    ASSERT_TRUE(run(io, pool.connect_all()));
    pqxx::connection admin{url};
    preflight::result<pg_rows> in_flight = errc::cancelled;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            in_flight = co_await pool.exec(sleep_stmt, "10");
            done = true;
        },
        asio::detached
    );
    // Wait (on the server's view) until the statement runs, then kill its backend.
    for (int i = 0; i < 200 && active_sleeps(admin, app) == 0; ++i) {
        io.poll();
        std::this_thread::sleep_for(5ms);
    }
    {
        pqxx::nontransaction tx{admin};
        tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app);
    }
    while (!done && io.run_one() > 0) {
    }
    ASSERT_FALSE(in_flight);
    EXPECT_EQ(in_flight.error(), errc::connection_broken);
    auto next = run(io, pool.exec(select_one, {}));
    EXPECT_TRUE(next) << next.error().message();
    EXPECT_EQ(pool.stats().connects, 2u);
}

TEST(pg_pool, unreachable_server_is_store_unavailable) {
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params("postgresql://postgres@127.0.0.1:1/postgres", 1)};
    auto r = run(io, pool.exec(select_one, {}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::store_unavailable);
}

// ---- teardown -------------------------------------------------------------------------------------------------

// Awaits `st` while owning the pool, as a coroutine that owns a store set does.
asio::awaitable<void> exec_owning_the_pool(
    std::shared_ptr<pg_pool> pool, pg_statement st, std::vector<std::string> params
) {
    (void)co_await pool->exec(std::move(st), std::move(params));
}

// A statement still queued in the pool when its io_context goes (here: waiting for its connection to open) is dropped
// with the context, its handler destroyed uncalled: the pool holding the handler of a coroutine that owns the pool
// must not keep the pair alive.
TEST(pg_pool, statement_waiting_for_its_connection_is_dropped_with_the_io_context) {
    PREFLIGHT_REQUIRE_PG(url);
    std::weak_ptr<pg_pool> weak;
    {
        asio::io_context io;
        auto pool = std::make_shared<pg_pool>(io.get_executor(), make_params(url, 1));
        weak = pool;
        asio::co_spawn(io, exec_owning_the_pool(std::move(pool), select_one, {}), asio::detached);
        io.poll();  // submitted; the connection opens on the pool's own threads, its completion never runs
        ASSERT_FALSE(weak.expired());
    }
    EXPECT_TRUE(weak.expired()) << "a statement queued at shutdown keeps its pool alive";
}

// The same for a statement waiting for capacity (the one connection's one place is taken by a statement in flight).
TEST(pg_pool, statement_waiting_for_capacity_is_dropped_with_the_io_context) {
    PREFLIGHT_REQUIRE_PG(url);
    std::weak_ptr<pg_pool> weak;
    {
        asio::io_context io;
        auto pp = make_params(url, 1);
        pp.max_in_flight = 1;
        auto pool = std::make_shared<pg_pool>(io.get_executor(), pp);
        weak = pool;
        ASSERT_TRUE(run(io, pool->connect_all()));
        asio::co_spawn(io, exec_owning_the_pool(pool, sleep_stmt, {"1"}), asio::detached);
        asio::co_spawn(io, exec_owning_the_pool(std::move(pool), select_one, {}), asio::detached);
        io.poll();  // the sleep is in flight, the other statement waits for its place
        ASSERT_FALSE(weak.expired());
    }
    EXPECT_TRUE(weak.expired()) << "a statement queued at shutdown keeps its pool alive";
}

// ---- bad input through a store --------------------------------------------------------------------------------

TEST(pg_stores_input, long_unicode_and_metacharacter_keys_are_stored_exactly_and_over_long_keys_rejected) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1)};
    preflight::clients::pg_rate_limit_store store{pool};
    const preflight::limits::bucket_limit l{1, 1};
    std::string key = preflight::conformance::unique_key("ключ'\"; DROP TABLE preflight_rate_limits; --\\%_🚀");
    while (key.size() < preflight::clients::max_key_bytes - 4) key += "ü";
    auto a = run(io, store.acquire(key, l, 1));
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_TRUE(a->allowed);
    auto b = run(io, store.acquire(key, l, 1));
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->allowed);
    pqxx::connection admin{url};
    pqxx::nontransaction tx{admin};
    auto row = tx.exec_params("SELECT key FROM preflight_rate_limits WHERE key = $1", key);
    ASSERT_EQ(row.size(), 1u);
    EXPECT_EQ(row[0][0].as<std::string>(), key);

    auto too_long = run(io, store.acquire(std::string(preflight::clients::max_key_bytes + 1, 'k'), l, 1));
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error(), errc::bad_input);
    auto nul = run(io, store.acquire(std::string("a\0b", 3), l, 1));
    ASSERT_FALSE(nul);
    EXPECT_EQ(nul.error(), errc::bad_input);
    auto bad_utf8 = run(io, store.acquire(std::string("bad\xff\xfe"), l, 1));
    ASSERT_FALSE(bad_utf8);
    EXPECT_EQ(bad_utf8.error(), errc::bad_input);
}

// ---- migrations -----------------------------------------------------------------------------------------------

TEST(pg_migrations, apply_once_idempotent_and_safe_when_concurrent) {
    PREFLIGHT_REQUIRE_PG(url);
    const auto slash = url.rfind('/');
    ASSERT_NE(slash, std::string::npos);
    const std::string db = unique_app("migdb");
    {
        pqxx::connection admin{url};
        pqxx::nontransaction tx{admin};
        tx.exec("CREATE DATABASE " + tx.quote_name(db));
    }
    const std::string db_url = url.substr(0, slash + 1) + db;
    std::vector<preflight::result<preflight::clients::migrate_report>> results(4, errc::cancelled);
    std::vector<std::string> diags(4);
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([&, i] { results[i] = preflight::clients::migrate(db_url, &diags[i]); });
        }
    }
    int applied = 0;
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(results[i]) << diags[i];
        EXPECT_EQ(results[i]->version, preflight::clients::embedded_migrations().back().version);
        applied += static_cast<int>(results[i]->applied.size());
    }
    EXPECT_EQ(applied, static_cast<int>(preflight::clients::embedded_migrations().size()));
    auto again = preflight::clients::migrate(db_url);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->applied.empty());
    {
        pqxx::connection c{db_url};
        pqxx::nontransaction tx{c};
        EXPECT_EQ(
            tx.exec1("SELECT count(*) FROM preflight_schema_migrations")[0].as<std::size_t>(),
            preflight::clients::embedded_migrations().size()
        );
    }
    pqxx::connection admin{url};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE " + tx.quote_name(db));
}

// ---- one statement per decision (regression guard for round trips) --------------------------------------------

TEST(pg_stores_round_trips, every_store_decision_is_one_statement_and_one_round_trip) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1)};
    preflight::clients::pg_rate_limit_store rl{pool};
    preflight::clients::pg_fixed_window_store fw{pool};
    preflight::clients::pg_admission_store adm{pool};
    const auto key = preflight::conformance::unique_key("rt");
    const preflight::limits::bucket_limit l{100, 100};
    // Warm up: each statement is prepared once per connection (one extra statement the first time).
    ASSERT_TRUE(run(io, rl.acquire(key, l, 1)));
    ASSERT_TRUE(run(io, rl.acquire(key, l, 0)));
    ASSERT_TRUE(run(io, rl.refund(key, l, 1)));
    ASSERT_TRUE(run(io, fw.consume(key, {}, 1)));
    auto warm_lease = run(io, adm.reserve(key, 5, 10s));
    ASSERT_TRUE(warm_lease && warm_lease->admitted);
    ASSERT_TRUE(run(io, adm.renew(warm_lease->lease_id, 10s)));
    ASSERT_TRUE(run(io, adm.release(warm_lease->lease_id)));

    auto one = [&](const char* what, auto&& op) {
        const auto before = pool.stats();
        op();
        const auto after = pool.stats();
        EXPECT_EQ(after.statements - before.statements, 1u) << what;
        EXPECT_EQ(after.syncs - before.syncs, 1u) << what;
    };
    one("acquire", [&] { EXPECT_TRUE(run(io, rl.acquire(key, l, 1))); });
    one("peek", [&] { EXPECT_TRUE(run(io, rl.acquire(key, l, 0))); });
    one("refund", [&] { EXPECT_TRUE(run(io, rl.refund(key, l, 1))); });
    one("consume", [&] { EXPECT_TRUE(run(io, fw.consume(key, {}, 1))); });
    ASSERT_TRUE(run(io, fw.refund(key, {}, 1)));  // prepare
    one("window refund", [&] { EXPECT_TRUE(run(io, fw.refund(key, {}, 1))); });
    std::string lease;
    one("reserve", [&] {
        auto g = run(io, adm.reserve(key, 5, 10s));
        ASSERT_TRUE(g && g->admitted);
        lease = g->lease_id;
    });
    one("renew", [&] { EXPECT_TRUE(run(io, adm.renew(lease, 10s))); });
    one("release", [&] { EXPECT_TRUE(run(io, adm.release(lease))); });
}

TEST(pg_stores_window_refund, gives_units_back_to_the_current_window_only_and_never_below_zero) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1)};
    preflight::clients::pg_fixed_window_store fw{pool};
    const auto key = preflight::conformance::unique_key("refund");
    const preflight::limits::window_limit l{3, 3600s};
    auto count = [&] {
        auto r = run(io, fw.consume(key, l, 0));
        EXPECT_TRUE(r);
        return r ? r->count : 99;
    };
    ASSERT_TRUE(run(io, fw.refund(key, l, 1)));  // unknown key: no-op
    EXPECT_EQ(count(), 0u);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(io, fw.consume(key, l, 1))->allowed);
    EXPECT_FALSE(run(io, fw.consume(key, l, 1))->allowed);
    ASSERT_TRUE(run(io, fw.refund(key, l, 1)));
    EXPECT_EQ(count(), 2u);
    EXPECT_TRUE(run(io, fw.consume(key, l, 1))->allowed) << "the refunded unit can be used again";
    // Another period is another window: left alone.
    ASSERT_TRUE(run(io, fw.refund(key, {3, 7200s}, 3)));
    EXPECT_EQ(count(), 3u);
    ASSERT_TRUE(run(io, fw.refund(key, l, 10)));
    EXPECT_EQ(count(), 0u) << "never below zero";
    auto bad = run(io, fw.refund(std::string(preflight::clients::max_key_bytes + 1, 'k'), l, 1));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::bad_input);
}

TEST(pg_pool, is_safe_with_an_io_context_run_by_several_threads) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    auto pp = make_params(url, 2);
    pp.max_in_flight = 8;
    pg_pool pool{io.get_executor(), pp};
    const pg_statement twice{"t_twice", "SELECT 2 * $1::bigint"};
    constexpr int total = 400;
    std::atomic<int> ok{0};
    std::atomic<int> finished{0};
    for (int c = 0; c < 16; ++c) {
        asio::co_spawn(
            io,
            [&, c]() -> asio::awaitable<void> {
                for (int i = c; i < total; i += 16) {
                    auto r = co_await pool.exec(twice, std::to_string(i));
                    if (r && r->as_int64(0, 0) == 2 * i) ok++;
                }
                if (++finished == 16) io.stop();
            },
            asio::detached
        );
    }
    {
        std::jthread a{[&] { io.run(); }};
        std::jthread b{[&] { io.run(); }};
    }
    EXPECT_EQ(ok.load(), total);
}

TEST(pg_stores_maintenance, idle_buckets_and_expired_leases_are_purged) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    asio::io_context io;
    pg_pool pool{io.get_executor(), make_params(url, 1)};
    preflight::clients::pg_rate_limit_store rl{pool};
    preflight::clients::pg_admission_store adm{pool};
    const auto idle = preflight::conformance::unique_key("idle");
    const auto busy = preflight::conformance::unique_key("busy");
    ASSERT_TRUE(run(io, rl.acquire(idle, {1000, 10}, 1)));   // full again after 1 ms
    ASSERT_TRUE(run(io, rl.acquire(busy, {0.001, 10}, 1)));  // refills in 1000 s
    auto lease = run(io, adm.reserve(idle, 1, 50ms));
    ASSERT_TRUE(lease && lease->admitted);
    std::this_thread::sleep_for(80ms);
    auto purged = run(io, rl.purge_idle());
    ASSERT_TRUE(purged);
    EXPECT_GE(*purged, 1u);
    auto expired = run(io, adm.purge_expired());
    ASSERT_TRUE(expired);
    EXPECT_GE(*expired, 1u);
    pqxx::connection admin{url};
    pqxx::nontransaction tx{admin};
    EXPECT_EQ(tx.exec_params("SELECT 1 FROM preflight_rate_limits WHERE key = $1", idle).size(), 0u);
    EXPECT_EQ(tx.exec_params("SELECT 1 FROM preflight_rate_limits WHERE key = $1", busy).size(), 1u);
    EXPECT_EQ(tx.exec_params("SELECT 1 FROM preflight_leases WHERE key = $1", idle).size(), 0u);
    // The busy bucket still holds its state: 9 tokens left of 10.
    auto peek = run(io, rl.acquire(busy, {0.001, 10}, 0));
    ASSERT_TRUE(peek);
    EXPECT_EQ(peek->remaining, 9);
}
