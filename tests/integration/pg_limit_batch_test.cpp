#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

// What the write batch (pg_limit_batch, sql/004_limit_batch.sql) adds to the stores' conformance (which runs with
// and without it): the writes of one turn share one statement and keep their own outcomes; a second write of a kind
// takes another call; a write cancelled or orphaned before its call is sent never reaches the server.
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace clients = preflight::clients;
namespace limits = preflight::limits;
using preflight::conformance::run;
using preflight::conformance::unique_key;

class pg_limit_batch_test : public ::testing::Test {
protected:
    void SetUp() override {
        PREFLIGHT_REQUIRE_PG(url);
        if (!preflight::test::ensure_migrated(url)) return;
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        p.on_statement = [this](const clients::pg_statement_event& e) {
            if (e.what == clients::pg_statement_event::kind::sent && !e.internal) ++sent[std::string(e.statement)];
        };
        pool = std::make_unique<clients::pg_pool>(io.get_executor(), p);
        batch = std::make_unique<clients::pg_limit_batch>(*pool);
        windows = std::make_unique<clients::pg_fixed_window_store>(*pool, batch.get());
        buckets = std::make_unique<clients::pg_rate_limit_store>(*pool, batch.get());
        admissions = std::make_unique<clients::pg_admission_store>(*pool, batch.get());
        ready = true;
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
    std::map<std::string, int> sent;
    std::unique_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::pg_limit_batch> batch;
    std::unique_ptr<clients::pg_fixed_window_store> windows;
    std::unique_ptr<clients::pg_rate_limit_store> buckets;
    std::unique_ptr<clients::pg_admission_store> admissions;
    bool ready = false;
};

TEST_F(pg_limit_batch_test, WritesOfOneTurnShareOneStatementAndKeepTheirOwnOutcomes) {
    if (!ready) return;
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

TEST_F(pg_limit_batch_test, ASecondWriteOfAKindInOneTurnTakesAnotherCall) {
    if (!ready) return;
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

TEST_F(pg_limit_batch_test, AWriteCancelledBeforeItsCallIsSentIsDropped) {
    if (!ready) return;
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
    if (!ready) return;
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
    if (!ready) return;
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
