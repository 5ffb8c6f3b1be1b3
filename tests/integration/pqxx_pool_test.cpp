#include "pg_env.hpp"
#include "run_coro.hpp"
#include <preflight/clients/pqxx_pool.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::clients::pqxx_pool;
using preflight::clients::pqxx_pool_params;

namespace {

pqxx_pool_params params(const std::string& url, std::size_t size = 2) {
    pqxx_pool_params p;
    p.url = url;
    p.size = size;
    return p;
}

std::int64_t select_int(pqxx::connection& c, const std::string& sql) {
    pqxx::nontransaction tx{c};
    return tx.exec1(sql)[0].as<std::int64_t>();
}

TEST(pqxx_pool, runs_libpqxx_work_off_the_io_thread_and_resumes_on_the_callers_executor) {
    PREFLIGHT_REQUIRE_PG(url);
    pqxx_pool pool{params(url)};
    asio::io_context io;
    const auto io_thread = std::this_thread::get_id();
    std::thread::id work_thread;
    std::thread::id resumed_on;
    auto r = preflight::test::run_coro(io, [&]() -> asio::awaitable<preflight::result<std::int64_t>> {
        auto v = co_await pool.run([&](pqxx::connection& c) {
            work_thread = std::this_thread::get_id();
            return select_int(c, "SELECT 40 + 2");
        });
        resumed_on = std::this_thread::get_id();
        co_return v;
    }());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 42);
    EXPECT_NE(work_thread, io_thread) << "libpqxx blocks: the work must not run on the io_context thread";
    EXPECT_EQ(resumed_on, io_thread);
    auto v = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) { (void)select_int(c, "SELECT 1"); }));
    EXPECT_TRUE(v);
    EXPECT_EQ(pool.connects(), 1u) << "the connection is reused";
}

TEST(pqxx_pool, statement_timeout_is_a_typed_timeout_and_the_connection_stays_usable) {
    PREFLIGHT_REQUIRE_PG(url);
    auto p = params(url, 1);
    p.statement_timeout = 100ms;
    pqxx_pool pool{p};
    asio::io_context io;
    auto slow = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) {
        return select_int(c, "SELECT count(*) FROM pg_sleep(2)");
    }));
    ASSERT_FALSE(slow);
    EXPECT_EQ(slow.error(), errc::timeout);
    auto next = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 7"); }));
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, 7);
    EXPECT_EQ(pool.connects(), 1u);
}

TEST(pqxx_pool, a_broken_connection_is_a_typed_error_and_is_replaced_on_next_use) {
    PREFLIGHT_REQUIRE_PG(url);
    pqxx_pool pool{params(url, 1)};
    asio::io_context io;
    auto killed = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) {
        return select_int(c, "SELECT count(*) FROM pg_terminate_backend(pg_backend_pid())");
    }));
    ASSERT_FALSE(killed);
    EXPECT_EQ(killed.error(), errc::connection_broken);
    auto next = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 8"); }));
    ASSERT_TRUE(next) << next.error().message();
    EXPECT_EQ(*next, 8);
    EXPECT_EQ(pool.connects(), 2u);
}

TEST(pqxx_pool, waits_for_a_connection_at_most_wait_timeout) {
    PREFLIGHT_REQUIRE_PG(url);
    auto p = params(url, 1);
    p.wait_timeout = 50ms;
    pqxx_pool pool{p};
    asio::io_context io;
    auto first = asio::co_spawn(
        io,
        pool.run([](pqxx::connection& c) { return select_int(c, "SELECT count(*) FROM pg_sleep(0.5)"); }),
        asio::use_future
    );
    auto second =
        asio::co_spawn(io, pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 1"); }), asio::use_future);
    io.run();
    EXPECT_TRUE(first.get());
    auto r = second.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::pool_exhausted);
}

TEST(pqxx_pool, server_errors_and_unreachable_servers_are_typed_and_other_exceptions_reach_the_caller) {
    PREFLIGHT_REQUIRE_PG(url);
    asio::io_context io;
    pqxx_pool pool{params(url, 1)};
    auto bad = preflight::test::run_coro(io, pool.run([](pqxx::connection& c) { return select_int(c, "SELECT 1/0"); }));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::store_unavailable);
    EXPECT_THROW(
        (void)preflight::test::run_coro(io, pool.run([](pqxx::connection&) -> int { throw std::logic_error("bug"); })),
        std::logic_error
    );

    auto p = params("postgresql://nobody@127.0.0.1:1/none", 1);
    p.connect_timeout = 1000ms;
    pqxx_pool down{p};
    auto r = preflight::test::run_coro(io, down.run([](pqxx::connection& c) { return select_int(c, "SELECT 1"); }));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::store_unavailable);
    EXPECT_THROW(pqxx_pool{params(url, 0)}, std::invalid_argument);
}

}  // namespace
