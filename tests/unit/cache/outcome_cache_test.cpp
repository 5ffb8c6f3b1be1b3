#include <preflight/cache/outcome_cache.hpp>
#include <preflight/core/clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <run_coro.hpp>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::manual_clock;
using preflight::result;
using preflight::cache::outcome_cache;
using preflight::cache::outcome_cache_params;

struct balance_outcome {
    bool allowed = false;
    long balance_cents = 0;
};

struct provider {
    int calls = 0;
    bool fail = false;
    balance_outcome next{true, 100};
    auto check() {
        return [this]() -> asio::awaitable<result<balance_outcome>> {
            ++calls;
            if (fail) co_return errc::timeout;
            co_return next;
        };
    }
};

TEST(outcome_cache, allowed_outcome_is_cached_for_60_seconds) {
    manual_clock clk;
    outcome_cache<balance_outcome> cache({}, clk);
    provider p;
    asio::io_context ctx;
    auto r1 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r1.has_value());
    EXPECT_TRUE(r1->outcome->allowed);
    EXPECT_FALSE(r1->stale);
    clk.advance(59s);
    auto r2 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r2.has_value());
    EXPECT_EQ(p.calls, 1);
    EXPECT_EQ(r2->age, 59s);
    clk.advance(1s);
    (void)preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    EXPECT_EQ(p.calls, 2);
}

TEST(outcome_cache, blocked_outcome_is_cached_too_and_keys_are_independent) {
    manual_clock clk;
    outcome_cache<balance_outcome> cache({}, clk);
    provider p;
    p.next = {false, -5};
    asio::io_context ctx;
    auto r1 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    auto r2 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r1 && r2);
    EXPECT_FALSE(r2->outcome->allowed);
    EXPECT_EQ(p.calls, 1);
    (void)preflight::test::run_coro(ctx, cache.get_or_check("org_2", p.check()));
    EXPECT_EQ(p.calls, 2);
    ASSERT_NE(cache.peek("org_1"), nullptr);
    EXPECT_EQ(cache.peek("org_1")->balance_cents, -5);
}

TEST(outcome_cache, errors_are_never_cached) {
    manual_clock clk;
    outcome_cache<balance_outcome> cache({}, clk);
    provider p;
    p.fail = true;
    asio::io_context ctx;
    auto r1 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r1.has_error());
    EXPECT_EQ(r1.error(), make_error_code(errc::timeout));
    auto r2 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r2.has_error());
    EXPECT_EQ(p.calls, 2);
    p.fail = false;
    auto r3 = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r3.has_value());
    EXPECT_FALSE(r3->stale);
    EXPECT_EQ(p.calls, 3);
}

TEST(outcome_cache, without_stale_window_an_expired_outcome_is_not_served_on_error) {
    manual_clock clk;
    outcome_cache<balance_outcome> cache({}, clk);
    provider p;
    asio::io_context ctx;
    ASSERT_TRUE(preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check())));
    clk.advance(61s);
    p.fail = true;
    auto r = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), make_error_code(errc::timeout));
}

TEST(outcome_cache, stale_if_error_serves_the_last_real_outcome_for_a_bounded_time) {
    manual_clock clk;
    outcome_cache_params params;
    params.stale_if_error = 5min;
    outcome_cache<balance_outcome> cache(params, clk);
    provider p;
    p.next = {false, -1};
    asio::io_context ctx;
    ASSERT_TRUE(preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check())));
    p.fail = true;
    clk.advance(60s);  // no longer fresh
    auto stale = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(stale.has_value());
    EXPECT_TRUE(stale->stale);
    EXPECT_FALSE(stale->outcome->allowed);  // blocked outcomes are served stale as well
    EXPECT_EQ(stale->error, make_error_code(errc::timeout));
    EXPECT_EQ(stale->age, 60s);
    EXPECT_EQ(p.calls, 2);                    // the provider is asked again each time
    EXPECT_EQ(cache.peek("org_1"), nullptr);  // stale is not fresh

    clk.advance(4min + 59s);  // 5 min 59 s old: still within ttl + stale_if_error
    auto still = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(still.has_value());
    EXPECT_TRUE(still->stale);

    clk.advance(1s);  // 6 min old: the window is over
    auto gone = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(gone.has_error());
    EXPECT_EQ(gone.error(), make_error_code(errc::timeout));

    p.fail = false;  // provider is back: a fresh real outcome
    p.next = {true, 50};
    auto back = preflight::test::run_coro(ctx, cache.get_or_check("org_1", p.check()));
    ASSERT_TRUE(back.has_value());
    EXPECT_FALSE(back->stale);
    EXPECT_TRUE(back->outcome->allowed);
}

TEST(outcome_cache, concurrent_checks_of_one_org_are_coalesced) {
    outcome_cache<balance_outcome> cache;
    asio::io_context ctx;
    int calls = 0;
    auto check = [&]() -> asio::awaitable<result<balance_outcome>> {
        ++calls;
        asio::steady_timer t(co_await asio::this_coro::executor, 2ms);
        co_await t.async_wait(asio::use_awaitable);
        co_return balance_outcome{true, 1};
    };
    std::vector<std::future<result<preflight::cache::served_outcome<balance_outcome>>>> fs;
    for (int i = 0; i < 10; ++i)
        fs.push_back(asio::co_spawn(ctx, cache.get_or_check("org_1", check), asio::use_future));
    ctx.run();
    EXPECT_EQ(calls, 1);
    for (auto& f : fs) {
        auto r = f.get();
        ASSERT_TRUE(r.has_value());
        EXPECT_TRUE(r->outcome->allowed);
    }
}

}  // namespace
