#include <preflight/clients/periodic_purge.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

// The periodic purge loop with a counting purge function: it runs again and again, one run at a time, sums what
// was removed, reports and counts failures without stopping, and stops for good when destroyed. Counts only: no
// timing is asserted (the interval is 1 ms of real time so that runs come quickly).
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace clients = preflight::clients;
using preflight::errc;
using preflight::result;

// Runs `io` until `done()` holds (at most 10 s).
void run_until(asio::io_context& io, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    ASSERT_TRUE(done()) << "the condition never held";
}

TEST(periodic_purge, RunsRepeatedlyAndSumsWhatWasRemoved) {
    asio::io_context io;
    int calls = 0;
    clients::periodic_purge p(
        io.get_executor(),
        [&calls]() -> asio::awaitable<result<std::uint64_t>> {
            ++calls;
            co_return std::uint64_t{2};
        },
        1ms
    );
    run_until(io, [&] { return p.stats().runs >= 3; });
    const auto s = p.stats();
    EXPECT_EQ(s.runs, static_cast<std::uint64_t>(calls));
    EXPECT_EQ(s.removed, 2 * s.runs);
    EXPECT_EQ(s.failures, 0U);
}

TEST(periodic_purge, AFailedRunIsReportedCountedAndTheNextOneStillComes) {
    asio::io_context io;
    int calls = 0;
    std::vector<boost::system::error_code> reported;
    clients::periodic_purge p(
        io.get_executor(),
        [&calls]() -> asio::awaitable<result<std::uint64_t>> {
            if (++calls % 2 == 1) co_return errc::store_unavailable;
            if (calls == 4) throw std::runtime_error("purge blew up");
            co_return std::uint64_t{5};
        },
        1ms,
        [&reported](boost::system::error_code ec) { reported.push_back(ec); }
    );
    run_until(io, [&] { return p.stats().runs >= 6; });
    const auto s = p.stats();
    EXPECT_EQ(s.runs, static_cast<std::uint64_t>(calls));
    // Calls 1, 3, 5 return an error, call 4 throws, calls 2 and 6 remove 5 rows each.
    EXPECT_EQ(s.failures, 4U);
    EXPECT_EQ(s.removed, 10U);
    ASSERT_EQ(reported.size(), 4U);
    EXPECT_EQ(reported[0], errc::store_unavailable);
    EXPECT_EQ(reported[2], errc::store_unavailable) << "a purge that throws is reported as a failed run";
}

TEST(periodic_purge, DestroyingItStopsTheRuns) {
    asio::io_context io;
    auto calls = std::make_shared<int>(0);
    auto p = std::make_unique<clients::periodic_purge>(
        io.get_executor(),
        [calls]() -> asio::awaitable<result<std::uint64_t>> {
            ++*calls;
            co_return std::uint64_t{0};
        },
        1ms
    );
    run_until(io, [&] { return *calls >= 2; });
    p.reset();
    const int at_stop = *calls;
    io.run_for(50ms);  // the cancelled wait completes; nothing else is left
    EXPECT_EQ(*calls, at_stop);
    EXPECT_TRUE(io.stopped()) << "no timer or run left behind";
}

TEST(periodic_purge, DestroyingItReleasesWhatThePurgeOwnsAtOnce) {
    // A store set (and its pool) captured by the purge must go when the purge object goes, even though the loop's
    // wait is only cancelled when the io_context runs again (or is destroyed): the pool must go before its io_context.
    asio::io_context io;
    auto owned = std::make_shared<int>(0);
    std::weak_ptr<int> watch = owned;
    auto p = std::make_unique<clients::periodic_purge>(
        io.get_executor(), [owned]() -> asio::awaitable<result<std::uint64_t>> { co_return std::uint64_t{0}; }, 1h
    );
    owned.reset();
    EXPECT_FALSE(watch.expired()) << "held by the purge while it runs";
    p.reset();
    EXPECT_TRUE(watch.expired()) << "released by the destructor, before the io_context ran";
}

TEST(periodic_purge, RejectsAnEmptyFunctionAndAnIntervalBelowOneMillisecond) {
    asio::io_context io;
    const clients::purge_fn none;
    EXPECT_THROW(clients::periodic_purge(io.get_executor(), none, 1s), std::invalid_argument);
    const clients::purge_fn some = []() -> asio::awaitable<result<std::uint64_t>> { co_return std::uint64_t{0}; };
    EXPECT_THROW(clients::periodic_purge(io.get_executor(), some, 0ms), std::invalid_argument);
}

}  // namespace
