#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_limit_chain.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// What the write batch (pg_limit_batch, sql/004_limit_batch.sql and 005_limit_many.sql) adds to the stores'
// conformance (which runs with and without it): the writes of one turn share one statement and keep their own
// outcomes; a second write of a key takes another call; while calls are in flight the next one gathers later writes;
// a bad write in a shared call fails by itself; a write cancelled or orphaned before its call is sent never reaches
// the server.
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace clients = preflight::clients;
namespace limits = preflight::limits;
using preflight::conformance::run;
using preflight::conformance::unique_key;

constexpr auto threads_wait = std::chrono::seconds(30);  // bound of one answer when other threads run the io_context

class pg_limit_batch_test : public ::testing::Test {
protected:
    void SetUp() override {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(preflight::test::ensure_migrated(url)) << "the migrations failed (above)";
        pg_url = url;
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        p.on_statement = [this](const clients::pg_statement_event& e) {
            if (e.what == clients::pg_statement_event::kind::sent && !e.internal) ++sent[std::string(e.statement)];
        };
        pool = std::make_unique<clients::pg_pool>(io.get_executor(), p);
        rebuild({});
    }

    // A new batch (and stores on it) with these options.
    void rebuild(clients::pg_gather_options o) {
        windows.reset();
        buckets.reset();
        admissions.reset();
        batch = std::make_unique<clients::pg_limit_batch>(*pool, o);
        windows = std::make_unique<clients::pg_fixed_window_store>(*pool, batch.get());
        buckets = std::make_unique<clients::pg_rate_limit_store>(*pool, batch.get());
        admissions = std::make_unique<clients::pg_admission_store>(*pool, batch.get());
    }

    // Runs the io_context until `f` is ready.
    template <class T>
    T wait(std::future<T>& f) {
        while (f.wait_for(0s) != std::future_status::ready) {
            if (io.run_one_for(5s) == 0) ADD_FAILURE() << "nothing left to run";
        }
        return f.get();
    }

    asio::io_context io;
    std::string pg_url;
    std::map<std::string, int> sent;
    std::unique_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::pg_limit_batch> batch;
    std::unique_ptr<clients::pg_fixed_window_store> windows;
    std::unique_ptr<clients::pg_rate_limit_store> buckets;
    std::unique_ptr<clients::pg_admission_store> admissions;
};

TEST_F(pg_limit_batch_test, WritesOfOneTurnShareOneStatementAndKeepTheirOwnOutcomes) {
    const auto wk = unique_key("window");
    const auto bk = unique_key("bucket");
    const auto ak = unique_key("admission");
    // Queued together: the three start in consecutive handlers, before the first one's flush.
    auto w = asio::co_spawn(io, windows->consume(wk, limits::window_limit{1, 60s}, 1), asio::use_future);
    auto b = asio::co_spawn(io, buckets->acquire(bk, limits::bucket_limit{1.0, 1.0}, 2), asio::use_future);
    auto a = asio::co_spawn(io, admissions->reserve(ak, 1, 60s), asio::use_future);
    const auto wr = wait(w);
    const auto br = wait(b);
    const auto ar = wait(a);
    EXPECT_EQ(sent, (std::map<std::string, int>{{"preflight_limit_batch", 1}}));
    ASSERT_TRUE(wr.has_value()) << wr.error().message();
    EXPECT_TRUE(wr->allowed);
    EXPECT_EQ(wr->count, 1U);
    ASSERT_TRUE(br.has_value()) << br.error().message();
    EXPECT_FALSE(br->allowed) << "2 tokens from a bucket of 1: denied, and the other parts still go through";
    EXPECT_GT(br->retry_after, 0ns);
    ASSERT_TRUE(ar.has_value()) << ar.error().message();
    EXPECT_TRUE(ar->admitted);
    EXPECT_EQ(ar->in_use, 1U);
    EXPECT_EQ(ar->lease_id.size(), 36U);

    // Each part wrote its own row: the window is full, the bucket untouched, the slot taken.
    const auto again_w = run(io, windows->consume(wk, limits::window_limit{1, 60s}, 1));
    ASSERT_TRUE(again_w.has_value());
    EXPECT_FALSE(again_w->allowed);
    EXPECT_EQ(again_w->count, 1U);
    const auto again_b = run(io, buckets->acquire(bk, limits::bucket_limit{1.0, 1.0}, 1));
    ASSERT_TRUE(again_b.has_value());
    EXPECT_TRUE(again_b->allowed);
    const auto again_a = run(io, admissions->reserve(ak, 1, 60s));
    ASSERT_TRUE(again_a.has_value());
    EXPECT_FALSE(again_a->admitted);
    EXPECT_EQ(again_a->in_use, 1U);
    EXPECT_EQ(sent["preflight_limit_batch"], 4) << "a lone write still uses the batch function";
}

TEST_F(pg_limit_batch_test, ASecondWriteOfAKeyInOneTurnTakesAnotherCall) {
    const auto k = unique_key("window");
    auto first = asio::co_spawn(io, windows->consume(k, limits::window_limit{1, 60s}, 1), asio::use_future);
    auto second = asio::co_spawn(io, windows->consume(k, limits::window_limit{1, 60s}, 1), asio::use_future);
    const auto r1 = wait(first);
    const auto r2 = wait(second);
    EXPECT_EQ(sent["preflight_limit_batch"], 2);
    ASSERT_TRUE(r1.has_value());
    ASSERT_TRUE(r2.has_value());
    EXPECT_EQ(static_cast<int>(r1->allowed) + static_cast<int>(r2->allowed), 1) << "one unit in the window";
}

TEST_F(pg_limit_batch_test, WritesOfSeveralPreflightsInOneTurnShareOneCallAndKeepTheirOwnOutcomes) {
    const auto w1 = unique_key("window1");
    const auto w2 = unique_key("window2");
    const auto w3 = unique_key("window3");
    const auto b1 = unique_key("bucket1");
    const auto b2 = unique_key("bucket2");
    const auto a1 = unique_key("admission1");
    const auto a2 = unique_key("admission2");
    const auto full = unique_key("admission-full");
    const auto taken = run(io, admissions->reserve(full, 1, 60s));
    ASSERT_TRUE(taken.has_value() && taken->admitted);
    sent.clear();

    // Two rounds: the first creates every row (the one-by-one path of preflight_limit_many), the second finds them
    // (its set-based path). Window w2 never fits (2 units, max 1); bucket b2 never does (3 tokens of 2).
    for (std::uint64_t round = 1; round <= 2; ++round) {
        auto fw1 = asio::co_spawn(io, windows->consume(w1, limits::window_limit{5, 60s}, 1), asio::use_future);
        auto fw2 = asio::co_spawn(io, windows->consume(w2, limits::window_limit{1, 60s}, 2), asio::use_future);
        auto fw3 = asio::co_spawn(io, windows->consume(w3, limits::window_limit{5, 60s}, 2), asio::use_future);
        auto fb1 = asio::co_spawn(io, buckets->acquire(b1, limits::bucket_limit{1.0, 10.0}, 1), asio::use_future);
        auto fb2 = asio::co_spawn(io, buckets->acquire(b2, limits::bucket_limit{1.0, 2.0}, 3), asio::use_future);
        auto fa1 = asio::co_spawn(io, admissions->reserve(a1, 3, 60s), asio::use_future);
        auto fa2 = asio::co_spawn(io, admissions->reserve(a2, 3, 60s), asio::use_future);
        auto fa3 = asio::co_spawn(io, admissions->reserve(full, 1, 60s), asio::use_future);
        const auto rw1 = wait(fw1);
        const auto rw2 = wait(fw2);
        const auto rw3 = wait(fw3);
        const auto rb1 = wait(fb1);
        const auto rb2 = wait(fb2);
        const auto ra1 = wait(fa1);
        const auto ra2 = wait(fa2);
        const auto ra3 = wait(fa3);
        EXPECT_EQ(sent, (std::map<std::string, int>{{"preflight_limit_many", static_cast<int>(round)}}));
        ASSERT_TRUE(rw1 && rw2 && rw3 && rb1 && rb2 && ra1 && ra2 && ra3) << "round " << round;
        EXPECT_TRUE(rw1->allowed);
        EXPECT_EQ(rw1->count, round);
        EXPECT_FALSE(rw2->allowed);
        EXPECT_EQ(rw2->count, 0U);
        EXPECT_TRUE(rw3->allowed);
        EXPECT_EQ(rw3->count, 2 * round);
        EXPECT_GT(rw3->reset_after, 0ns);
        EXPECT_TRUE(rb1->allowed);
        EXPECT_FALSE(rb2->allowed);
        EXPECT_GT(rb2->retry_after, 0ns);
        EXPECT_TRUE(ra1->admitted);
        EXPECT_EQ(ra1->in_use, round);
        EXPECT_TRUE(ra2->admitted);
        EXPECT_EQ(ra2->in_use, round);
        EXPECT_NE(ra1->lease_id, ra2->lease_id);
        EXPECT_FALSE(ra3->admitted) << "its one slot is taken";
        EXPECT_EQ(ra3->in_use, 1U);
    }
    const auto st = batch->stats();
    EXPECT_EQ(st.calls, 3U);  // the first reservation, then one call per round
    EXPECT_EQ(st.many_calls, 2U);
    EXPECT_EQ(st.items, 17U);
    EXPECT_EQ(st.retried, 0U);
}

TEST_F(pg_limit_batch_test, WhileACallIsInFlightTheNextGathersLaterWritesInOrder) {
    rebuild(clients::pg_gather_options{.max_in_flight = 1, .max_per_call = 64});
    const auto k = unique_key("window");
    const auto later1 = unique_key("window-later1");
    const auto later2 = unique_key("window-later2");
    std::vector<preflight::result<limits::window_result>> out =
        run(io, [&]() -> asio::awaitable<std::vector<preflight::result<limits::window_result>>> {
            auto ex = co_await asio::this_coro::executor;
            // The first two share a key: the second starts the next call, which must wait for the first.
            auto f1 = asio::co_spawn(ex, windows->consume(k, limits::window_limit{1, 60s}, 1), asio::use_future);
            auto f2 = asio::co_spawn(ex, windows->consume(k, limits::window_limit{1, 60s}, 1), asio::use_future);
            while (sent["preflight_limit_batch"] == 0) co_await asio::post(ex, asio::use_awaitable);
            // The first call is in flight: writes started now join the waiting one.
            auto f3 = asio::co_spawn(ex, windows->consume(later1, limits::window_limit{1, 60s}, 1), asio::use_future);
            auto f4 = asio::co_spawn(ex, windows->consume(later2, limits::window_limit{1, 60s}, 1), asio::use_future);
            std::vector<std::future<preflight::result<limits::window_result>>> fs;
            fs.push_back(std::move(f1));
            fs.push_back(std::move(f2));
            fs.push_back(std::move(f3));
            fs.push_back(std::move(f4));
            std::vector<preflight::result<limits::window_result>> rs;
            for (auto& f : fs) {
                while (f.wait_for(0s) != std::future_status::ready) co_await asio::post(ex, asio::use_awaitable);
                rs.push_back(f.get());
            }
            co_return rs;
        }());
    EXPECT_EQ(sent, (std::map<std::string, int>{{"preflight_limit_batch", 1}, {"preflight_limit_many", 1}}));
    ASSERT_EQ(out.size(), 4U);
    for (const auto& r : out) ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(out[0]->allowed) << "one key's writes apply in the order they were submitted";
    EXPECT_FALSE(out[1]->allowed);
    EXPECT_TRUE(out[2]->allowed);
    EXPECT_TRUE(out[3]->allowed);
    EXPECT_EQ(batch->stats().calls, 2U);
}

// Four calls in flight at once on four connections, each carrying writes of the same few keys: they take the keys'
// row locks and admission locks concurrently (in the function's fixed order). `threads` run `ctx` (0: this thread).
void overlapping_keys(const std::string& url, asio::io_context& ctx, int threads) {
    clients::pool_params p;
    p.url = url;
    p.size = 4;
    auto wide = std::make_unique<clients::pg_pool>(ctx.get_executor(), p);
    auto shared = std::make_unique<clients::pg_limit_batch>(
        *wide, clients::pg_gather_options{.max_in_flight = 4, .max_per_call = 3}
    );
    auto win = std::make_unique<clients::pg_fixed_window_store>(*wide, shared.get());
    auto adm = std::make_unique<clients::pg_admission_store>(*wide, shared.get());
    constexpr int n_keys = 5;
    constexpr int per_key = 40;
    std::vector<std::string> wkeys;
    std::vector<std::string> akeys;
    for (int k = 0; k < n_keys; ++k) {
        wkeys.push_back(unique_key("window" + std::to_string(k)));
        akeys.push_back(unique_key("admission" + std::to_string(k)));
    }
    std::vector<std::future<preflight::result<limits::window_result>>> wf;
    std::vector<std::future<preflight::result<limits::lease_grant>>> af;
    for (int i = 0; i < per_key; ++i) {
        for (int k = 0; k < n_keys; ++k) {
            // A day's window: the run cannot straddle two windows (short of midnight UTC).
            wf.push_back(
                asio::co_spawn(ctx, win->consume(wkeys[k], limits::window_limit{25, 86400s}, 1), asio::use_future)
            );
            af.push_back(asio::co_spawn(ctx, adm->reserve(akeys[k], 3, 60s), asio::use_future));
        }
    }
    auto guard = asio::make_work_guard(ctx);
    std::vector<std::thread> runners;
    for (int t = 0; t < threads; ++t) runners.emplace_back([&ctx] { ctx.run(); });
    const auto ready = [](auto& f) { return f.wait_for(threads_wait) == std::future_status::ready; };
    const auto get = [&](auto& f) {
        if (threads == 0) {
            while (f.wait_for(0s) != std::future_status::ready) {
                if (ctx.run_one_for(5s) == 0) ADD_FAILURE() << "nothing left to run";
            }
        } else {
            EXPECT_TRUE(ready(f)) << "no answer within the bound";
        }
        return f.get();
    };
    std::vector<int> allowed(n_keys, 0);
    std::vector<int> admitted(n_keys, 0);
    bool all_ok = true;
    for (std::size_t i = 0; i < wf.size(); ++i) {
        const auto w = get(wf[i]);
        const auto a = get(af[i]);
        all_ok = all_ok && w.has_value() && a.has_value();
        EXPECT_TRUE(w.has_value()) << w.error().message();
        EXPECT_TRUE(a.has_value()) << a.error().message();
        allowed[i % n_keys] += w && w->allowed ? 1 : 0;
        admitted[i % n_keys] += a && a->admitted ? 1 : 0;
    }
    guard.reset();
    ctx.stop();
    for (auto& r : runners) r.join();
    for (int k = 0; k < n_keys; ++k) {
        EXPECT_EQ(allowed[k], 25) << "window " << k << ": exactly its max of 40 attempts";
        EXPECT_EQ(admitted[k], 3) << "admission " << k << ": exactly its 3 slots of 40 attempts";
    }
    const auto st = shared->stats();
    EXPECT_GT(st.many_calls, 0U);
    EXPECT_EQ(st.items, static_cast<std::uint64_t>(2 * n_keys * per_key));
    EXPECT_EQ(st.retried, 0U) << "no call failed (a deadlock would have been retried)";
    EXPECT_TRUE(all_ok);
}

TEST_F(pg_limit_batch_test, ConcurrentSharedCallsOnOverlappingKeysNeverOverAdmitNorDeadlock) {
    overlapping_keys(pg_url, io, 0);
}

TEST_F(pg_limit_batch_test, TheSameFromTwoThreadsRunningTheIoContext) {
    asio::io_context two(2);
    overlapping_keys(pg_url, two, 2);
}

TEST_F(pg_limit_batch_test, ABadWriteInASharedCallFailsByItself) {
    const auto good1 = unique_key("window-good");
    const auto good2 = unique_key("admission-good");
    const std::string bad = unique_key("window-bad") + "\xff";  // not valid UTF-8: the server rejects the whole call
    auto f1 = asio::co_spawn(io, windows->consume(good1, limits::window_limit{5, 60s}, 1), asio::use_future);
    auto f2 = asio::co_spawn(io, windows->consume(bad, limits::window_limit{5, 60s}, 1), asio::use_future);
    auto f3 = asio::co_spawn(io, admissions->reserve(good2, 2, 60s), asio::use_future);
    const auto r1 = wait(f1);
    const auto r2 = wait(f2);
    const auto r3 = wait(f3);
    ASSERT_TRUE(r1.has_value()) << r1.error().message();
    EXPECT_TRUE(r1->allowed);
    EXPECT_EQ(r1->count, 1U) << "applied once: the failed call rolled back, the retry counted";
    ASSERT_FALSE(r2.has_value());
    EXPECT_EQ(r2.error(), preflight::errc::bad_input);
    ASSERT_TRUE(r3.has_value()) << r3.error().message();
    EXPECT_TRUE(r3->admitted);
    EXPECT_EQ(r3->in_use, 1U);
    EXPECT_EQ(sent["preflight_limit_many"], 1);
    EXPECT_EQ(sent["preflight_limit_batch"], 3) << "each write retried alone";
    EXPECT_EQ(batch->stats().retried, 3U);
}

TEST_F(pg_limit_batch_test, OptionsBelowOneAreRejected) {
    EXPECT_THROW(clients::pg_limit_batch(*pool, {.max_in_flight = 0, .max_per_call = 1}), std::invalid_argument);
    EXPECT_THROW(clients::pg_limit_batch(*pool, {.max_in_flight = 1, .max_per_call = 0}), std::invalid_argument);
}

TEST_F(pg_limit_batch_test, AWriteCancelledBeforeItsCallIsSentIsDropped) {
    const auto k = unique_key("window");
    asio::cancellation_signal sig;
    auto cancelled = run(io, [&]() -> asio::awaitable<preflight::result<limits::window_result>> {
        auto ex = co_await asio::this_coro::executor;
        // Spawned from the io_context's own thread: runs inline until the write waits for its call's flush.
        auto f = asio::co_spawn(
            ex,
            windows->consume(k, limits::window_limit{5, 60s}, 1),
            asio::bind_cancellation_slot(sig.slot(), asio::use_future)
        );
        sig.emit(asio::cancellation_type::terminal);
        while (f.wait_for(0s) != std::future_status::ready) co_await asio::post(ex, asio::use_awaitable);
        co_return f.get();
    }());
    ASSERT_FALSE(cancelled.has_value());
    EXPECT_EQ(cancelled.error(), preflight::errc::cancelled);
    EXPECT_EQ(sent["preflight_limit_batch"], 0) << "the call lost its only write: nothing is sent";
    const auto next = run(io, windows->consume(k, limits::window_limit{5, 60s}, 1));
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->count, 1U) << "the cancelled consume never counted";
}

TEST_F(pg_limit_batch_test, DestroyingTheBatchFailsWritesNotSentYet) {
    const auto k = unique_key("admission");
    auto orphan = run(io, [&]() -> asio::awaitable<preflight::result<limits::lease_grant>> {
        auto ex = co_await asio::this_coro::executor;
        auto f = asio::co_spawn(ex, admissions->reserve(k, 1, 60s), asio::use_future);
        batch.reset();
        while (f.wait_for(0s) != std::future_status::ready) co_await asio::post(ex, asio::use_awaitable);
        co_return f.get();
    }());
    ASSERT_FALSE(orphan.has_value());
    EXPECT_EQ(orphan.error(), preflight::errc::cancelled);
    EXPECT_EQ(sent["preflight_limit_batch"], 0);
}

TEST_F(pg_limit_batch_test, SubmitRejectsAWrongNumberOfParameters) {
    EXPECT_THROW(
        (void)run(io, batch->submit(clients::pg_limit_batch::part::window, std::vector<std::string>{"key"})),
        std::invalid_argument
    );
    EXPECT_THROW(
        (void)run(io, batch->submit(static_cast<clients::pg_limit_batch::part>(7), std::vector<std::string>{})),
        std::invalid_argument
    );
}

}  // namespace

// pg_limit_chain (sql/007_limit_chain.sql) over the same gathering: a lone chain is one call of the one-chain
// function; chains of one turn with distinct keys share one call of the many-chains function and keep their own
// outcomes (limit_chain_conformance checks the outcomes on every implementation); a chain that shares a key with one
// already in the call takes the next call.
TEST_F(pg_limit_batch_test, ChainsOfOneTurnShareOneCallAndAChainSharingAKeyTakesAnother) {
    clients::pg_limit_chain chain(*pool);
    const auto req = [](const std::string& k, std::uint32_t quantity) {
        limits::chain_request q;
        q.window = limits::chain_request::window_part{k + ":w", limits::window_limit{5, 60s}, 1};
        q.bucket = limits::chain_request::bucket_part{k + ":b", limits::bucket_limit{0.001, 2.0}, quantity};
        q.admission = limits::chain_request::admission_part{k + ":a", 1, 60s};
        return q;
    };
    const auto lone = run(io, chain.apply(req(unique_key("lone"), 1)));
    ASSERT_TRUE(lone.has_value()) << lone.error().message();
    EXPECT_TRUE(lone->allowed());
    EXPECT_EQ(sent, (std::map<std::string, int>{{"preflight_limit_chain", 1}}));

    sent.clear();
    const auto k = unique_key("shared");
    auto a = asio::co_spawn(io, chain.apply(req(k + "a", 1)), asio::use_future);
    auto b = asio::co_spawn(io, chain.apply(req(k + "b", 3)), asio::use_future);  // 3 tokens of 2: bucket denies
    auto c = asio::co_spawn(io, chain.apply(req(k + "a", 1)), asio::use_future);  // a's keys: the next call
    const auto ra = wait(a);
    const auto rb = wait(b);
    const auto rc = wait(c);
    EXPECT_EQ(sent, (std::map<std::string, int>{{"preflight_limit_chains", 1}, {"preflight_limit_chain", 1}}));
    ASSERT_TRUE(ra.has_value() && rb.has_value() && rc.has_value());
    EXPECT_TRUE(ra->allowed());
    EXPECT_EQ(rb->denied_by, limits::chain_part::bucket);
    EXPECT_FALSE(rb->admission);
    EXPECT_EQ(rc->denied_by, limits::chain_part::admission) << "a's only slot is held by the first chain";
    EXPECT_EQ(rc->window->count, 1U) << "given back";
    EXPECT_EQ(chain.stats().many_calls, 1U);
    // No lease was ever written for the chain the bucket denied.
    pqxx::connection conn{pg_url};
    pqxx::nontransaction tx{conn};
    EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM preflight_leases WHERE key = $1", k + "b:a")[0].as<int>(), 0);
    EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM preflight_leases WHERE key = $1", k + "a:a")[0].as<int>(), 1);
}
