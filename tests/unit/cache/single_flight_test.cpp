#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <run_coro.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::result;
using preflight::cache::ttl_lru_cache;
using preflight::cache::ttl_lru_params;
using cache_t = ttl_lru_cache<std::string, std::string>;

/// Waits (on Asio timers, bounded) until `cond` holds; false when it never did.
template <class Cond>
asio::awaitable<bool> wait_until(Cond cond) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < 10000; ++i) {
        if (cond()) co_return true;
        timer.expires_after(1ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    co_return cond();
}

/// Two io_contexts, each run by its own thread.
struct two_threads {
    asio::io_context a, b;
    asio::executor_work_guard<asio::io_context::executor_type> ga = asio::make_work_guard(a);
    asio::executor_work_guard<asio::io_context::executor_type> gb = asio::make_work_guard(b);
    std::thread ta{[this] { a.run(); }};
    std::thread tb{[this] { b.run(); }};
    ~two_threads() {
        ga.reset();
        gb.reset();
        ta.join();
        tb.join();
    }
};

struct waiter_report {
    result<std::shared_ptr<const std::string>> value{errc::store_unavailable};
    bool resumed_on_own_thread = false;
};

asio::awaitable<waiter_report> one_waiter(
    cache_t& cache, std::atomic<int>& loader_calls, bool fail, std::thread::id own_thread
) {
    waiter_report rep;
    rep.value =
        co_await cache.get_or_load("org_1", [&cache, &loader_calls, fail]() -> asio::awaitable<result<std::string>> {
            ++loader_calls;
            // Hold the load open until all 64 callers have joined it.
            const bool all_joined = co_await wait_until([&cache] { return cache.stats().coalesced == 63; });
            if (!all_joined) throw std::runtime_error("not every waiter joined the load");
            if (fail) co_return errc::store_unavailable;
            co_return std::string("loaded");
        });
    rep.resumed_on_own_thread = std::this_thread::get_id() == own_thread;
    co_return rep;
}

std::vector<waiter_report> run_64(cache_t& cache, std::atomic<int>& loader_calls, bool fail) {
    two_threads t;
    std::promise<std::thread::id> ida, idb;
    asio::post(t.a, [&] { ida.set_value(std::this_thread::get_id()); });
    asio::post(t.b, [&] { idb.set_value(std::this_thread::get_id()); });
    const auto id_a = ida.get_future().get();
    const auto id_b = idb.get_future().get();
    std::vector<std::future<waiter_report>> futures;
    for (int i = 0; i < 64; ++i) {
        auto& ctx = i % 2 == 0 ? t.a : t.b;
        futures.push_back(
            asio::co_spawn(ctx, one_waiter(cache, loader_calls, fail, i % 2 == 0 ? id_a : id_b), asio::use_future)
        );
    }
    std::vector<waiter_report> out;
    for (auto& f : futures) out.push_back(f.get());
    return out;
}

TEST(single_flight, sixty_four_concurrent_misses_on_two_threads_load_once) {
    cache_t cache;
    std::atomic<int> loader_calls{0};
    const auto reports = run_64(cache, loader_calls, false);
    EXPECT_EQ(loader_calls.load(), 1);
    ASSERT_EQ(reports.size(), 64u);
    const std::string* first = nullptr;
    for (const auto& r : reports) {
        ASSERT_TRUE(r.value.has_value());
        EXPECT_EQ(**r.value, "loaded");
        if (first == nullptr) first = r.value->get();
        EXPECT_EQ(r.value->get(), first);  // one shared value, not 64 copies
        EXPECT_TRUE(r.resumed_on_own_thread);
    }
    const auto st = cache.stats();
    EXPECT_EQ(st.loads, 1u);
    EXPECT_EQ(st.coalesced, 63u);
    EXPECT_EQ(st.load_errors, 0u);
    ASSERT_NE(cache.get("org_1"), nullptr);
    EXPECT_EQ(*cache.get("org_1"), "loaded");
}

TEST(single_flight, an_error_reaches_all_64_is_not_cached_and_the_next_call_loads_again) {
    cache_t cache;
    std::atomic<int> loader_calls{0};
    const auto reports = run_64(cache, loader_calls, true);
    EXPECT_EQ(loader_calls.load(), 1);
    for (const auto& r : reports) {
        ASSERT_TRUE(r.value.has_error());
        EXPECT_EQ(r.value.error(), make_error_code(errc::store_unavailable));
        EXPECT_TRUE(r.resumed_on_own_thread);
    }
    EXPECT_EQ(cache.get("org_1"), nullptr);
    EXPECT_EQ(cache.stats().load_errors, 1u);

    asio::io_context ctx;
    auto again =
        preflight::test::run_coro(ctx, cache.get_or_load("org_1", [&]() -> asio::awaitable<result<std::string>> {
            ++loader_calls;
            co_return std::string("recovered");
        }));
    EXPECT_EQ(loader_calls.load(), 2);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(**again, "recovered");
}

TEST(single_flight, loader_exception_reaches_every_waiter_and_is_not_cached) {
    cache_t cache;
    asio::io_context ctx;
    int calls = 0;
    auto loader = [&]() -> asio::awaitable<result<std::string>> {
        ++calls;
        asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
        co_await t.async_wait(asio::use_awaitable);
        throw std::runtime_error("provider exploded");
    };
    auto f1 = asio::co_spawn(ctx, cache.get_or_load("k", loader), asio::use_future);
    auto f2 = asio::co_spawn(ctx, cache.get_or_load("k", loader), asio::use_future);
    ctx.run();
    EXPECT_EQ(calls, 1);
    EXPECT_THROW(f1.get(), std::runtime_error);
    EXPECT_THROW(f2.get(), std::runtime_error);
    EXPECT_EQ(cache.get("k"), nullptr);
}

TEST(single_flight, a_hit_does_not_call_the_loader) {
    cache_t cache;
    cache.put("k", std::string("cached"));
    asio::io_context ctx;
    bool called = false;
    auto r = preflight::test::run_coro(ctx, cache.get_or_load("k", [&]() -> asio::awaitable<result<std::string>> {
        called = true;
        co_return std::string("loaded");
    }));
    EXPECT_FALSE(called);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(**r, "cached");
}

TEST(single_flight, cancelling_one_waiter_does_not_cancel_the_load_for_others) {
    cache_t cache;
    asio::io_context ctx;
    asio::steady_timer release(ctx, asio::steady_timer::time_point::max());
    int calls = 0;
    bool load_finished = false;
    auto loader = [&]() -> asio::awaitable<result<std::string>> {
        ++calls;
        co_await release.async_wait(asio::as_tuple(asio::use_awaitable));  // ends when the test cancels it
        load_finished = true;
        co_return std::string("value");
    };
    asio::cancellation_signal cancel_a;
    std::optional<result<std::shared_ptr<const std::string>>> a, b;
    asio::co_spawn(
        ctx,
        cache.get_or_load("k", loader),
        asio::bind_cancellation_slot(
            cancel_a.slot(),
            [&](std::exception_ptr e, auto r) {
                if (e) std::rethrow_exception(e);
                a = std::move(r);
            }
        )
    );
    asio::co_spawn(ctx, cache.get_or_load("k", loader), [&](std::exception_ptr e, auto r) {
        if (e) std::rethrow_exception(e);
        b = std::move(r);
    });
    auto driver = [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await wait_until([&] { return cache.stats().coalesced == 1; }));
        cancel_a.emit(asio::cancellation_type::terminal);
        EXPECT_TRUE(co_await wait_until([&] { return a.has_value(); }));
        EXPECT_FALSE(load_finished);
        EXPECT_FALSE(b.has_value());
        release.cancel();
    };
    asio::co_spawn(ctx, driver(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ctx.run();
    EXPECT_EQ(calls, 1);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(a->has_error());
    EXPECT_EQ(a->error(), make_error_code(errc::cancelled));
    ASSERT_TRUE(b.has_value());
    ASSERT_TRUE(b->has_value());
    EXPECT_EQ(***b, "value");
    EXPECT_TRUE(load_finished);
    ASSERT_NE(cache.get("k"), nullptr);  // the load was stored although its starter left
}

TEST(single_flight, a_put_during_the_load_wins_over_the_loaded_value) {
    cache_t cache;
    asio::io_context ctx;
    asio::steady_timer release(ctx, asio::steady_timer::time_point::max());
    auto loader = [&]() -> asio::awaitable<result<std::string>> {
        co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return std::string("old");
    };
    std::optional<result<std::shared_ptr<const std::string>>> got;
    asio::co_spawn(ctx, cache.get_or_load("k", loader), [&](std::exception_ptr e, auto r) {
        if (e) std::rethrow_exception(e);
        got = std::move(r);
    });
    asio::post(ctx, [&] {
        cache.put("k", std::string("new"));
        release.cancel();
    });
    ctx.run();
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ(***got, "old");           // the waiter gets what its load produced
    EXPECT_EQ(*cache.get("k"), "new");  // but the newer put is what the cache keeps
}

TEST(single_flight, loads_outlive_the_cache_object) {
    asio::io_context ctx;
    std::optional<result<std::shared_ptr<const std::string>>> got;
    {
        auto cache = std::make_unique<cache_t>();
        asio::co_spawn(
            ctx,
            cache->get_or_load(
                "k",
                []() -> asio::awaitable<result<std::string>> {
                    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
                    co_await t.async_wait(asio::use_awaitable);
                    co_return std::string("v");
                }
            ),
            [&](std::exception_ptr e, auto r) {
                if (e) std::rethrow_exception(e);
                got = std::move(r);
            }
        );
        while (cache->stats().loads == 0) ctx.run_one();  // the load has started
        cache.reset();
    }
    ctx.run();
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ(***got, "v");
}

}  // namespace
