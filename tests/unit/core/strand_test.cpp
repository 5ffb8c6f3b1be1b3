#include <preflight/core/strand.hpp>

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

using io_strand = asio::strand<asio::io_context::executor_type>;

TEST(make_io_strand, over_an_io_context_executor_is_a_strand_of_the_concrete_type) {
    asio::io_context io;
    const auto s = preflight::make_io_strand(io.get_executor());
    EXPECT_NE(s.target<io_strand>(), nullptr);
    EXPECT_TRUE(preflight::is_io_strand(s));
    EXPECT_FALSE(preflight::is_io_strand(io.get_executor()));
    // Small enough for any_io_executor's inline storage (Asio 1.81: a shared_ptr and a pointer), the point of the
    // helper; a strand of any_io_executor is not.
    EXPECT_LE(sizeof(io_strand), sizeof(std::shared_ptr<void>) + sizeof(void*));
    EXPECT_GT(sizeof(asio::strand<asio::any_io_executor>), sizeof(std::shared_ptr<void>) + sizeof(void*));
}

TEST(make_io_strand, keeps_a_tracked_executor_tracked) {
    asio::io_context io;
    const asio::any_io_executor tracked = asio::prefer(io.get_executor(), asio::execution::outstanding_work.tracked);
    const auto s = preflight::make_io_strand(tracked);
    EXPECT_TRUE(preflight::is_io_strand(s));
    EXPECT_EQ(asio::query(s, asio::execution::outstanding_work), asio::execution::outstanding_work.tracked);
}

TEST(make_io_strand, over_another_executor_is_a_strand_of_any_io_executor) {
    asio::thread_pool tp{2};
    const auto s = preflight::make_io_strand(tp.get_executor());
    EXPECT_NE(s.target<asio::strand<asio::any_io_executor>>(), nullptr);
    EXPECT_FALSE(preflight::is_io_strand(s));
    // Still a strand: handlers posted to it never overlap, on two threads.
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
    std::atomic<int> ran{0};
    for (int i = 0; i < 200; ++i) {
        asio::post(s, [&] {
            if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
            std::this_thread::yield();
            inside.fetch_sub(1);
            ran.fetch_add(1);
        });
    }
    tp.join();
    EXPECT_EQ(ran.load(), 200);
    EXPECT_EQ(overlaps.load(), 0);
}

TEST(make_io_strand, runs_handlers_in_order_on_an_io_context) {
    asio::io_context io;
    const auto s = preflight::make_io_strand(io.get_executor());
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) asio::post(s, [&order, i] { order.push_back(i); });
    io.run();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(runs_serially, a_strand_or_a_context_marked_single_threaded) {
    asio::io_context io;
    const asio::any_io_executor plain = io.get_executor();
    const asio::any_io_executor tracked = asio::prefer(io.get_executor(), asio::execution::outstanding_work.tracked);
    EXPECT_TRUE(preflight::runs_serially(preflight::make_io_strand(io.get_executor())));
    EXPECT_FALSE(preflight::runs_serially(plain));
    EXPECT_FALSE(preflight::runs_serially(tracked));
    preflight::mark_single_threaded(io);
    preflight::mark_single_threaded(io);  // idempotent
    EXPECT_TRUE(preflight::runs_serially(plain));
    EXPECT_TRUE(preflight::runs_serially(tracked));
    // The mark belongs to that context only; other executors are never assumed serial.
    asio::io_context other;
    EXPECT_FALSE(preflight::runs_serially(other.get_executor()));
    asio::thread_pool tp{1};
    EXPECT_FALSE(preflight::runs_serially(tp.get_executor()));
    EXPECT_FALSE(preflight::runs_serially(asio::any_io_executor{}));
    tp.join();
}

}  // namespace
