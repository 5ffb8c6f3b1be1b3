#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

// Shared helpers of the store conformance suites (tests/conformance/*_conformance.hpp).
//
// A suite is a GoogleTest typed test parameterised by a Factory. Every Factory provides:
//
//   struct my_factory {
//       // Clock slack of the store: 0 for a store on a manual_clock, a few tens of ms for a store on a real
//       // clock (Postgres). Expected durations are checked within [expected - tolerance, expected].
//       static constexpr std::chrono::milliseconds tolerance{0};
//       // Builds the store (may GTEST_SKIP() or FAIL(), e.g. when no Postgres is configured). `io` outlives it.
//       void set_up(boost::asio::io_context& io);
//       // The store under test (rate_limit_store&, fixed_window_store& or admission_store&).
//       auto& store();
//       // Moves the store's clock forward by at least `d`: a manual_clock advances, a real clock waits.
//       // Suites call it with at most 300 ms at a time.
//       void advance(std::chrono::milliseconds d);
//   };
//
// Instantiate with `INSTANTIATE_TYPED_TEST_SUITE_P(memory, rate_limit_store_conformance, memory_rate_factory);`
// (memory_factory.hpp provides `memory_store_factory<Store>` for stores built from a `const clock&`).
namespace preflight::conformance {

/// Runs `aw` on `io` until it completes (the io_context may hold other work, e.g. idle pool connections).
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> aw) {
    auto fut = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
    io.restart();
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (io.run_one() == 0 && fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            throw std::logic_error("conformance::run: the coroutine did not complete");
        }
    }
    return fut.get();
}

/// A key unique to this test and this process run (stores may persist state between runs), ending in `base`.
inline std::string unique_key(std::string_view base) {
    static const std::uint64_t nonce = std::random_device{}() * 0x100000001ULL + std::random_device{}();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string(info->test_suite_name()) + "." + info->name() + ":" + std::to_string(nonce) + ":" +
           std::string(base);
}

/// Advances in steps of at most 300 ms (real-clock factories wait for real).
template <class Factory>
void advance_by(Factory& f, std::chrono::milliseconds d) {
    while (d.count() > 0) {
        const auto step = std::min(d, std::chrono::milliseconds{300});
        f.advance(step);
        d -= step;
    }
}

}  // namespace preflight::conformance

/// EXPECT that duration `actual` lies in [expected - tol, expected + 1 µs] (1 µs: float rounding).
#define PREFLIGHT_EXPECT_DURATION(actual, expected, tol)                                \
    do {                                                                                \
        const auto a_ = std::chrono::duration_cast<std::chrono::nanoseconds>(actual);   \
        const auto e_ = std::chrono::duration_cast<std::chrono::nanoseconds>(expected); \
        const auto t_ = std::chrono::duration_cast<std::chrono::nanoseconds>(tol);      \
        EXPECT_LE(a_.count(), e_.count() + 1000) << #actual;                            \
        EXPECT_GE(a_.count(), (e_ - t_).count()) << #actual;                            \
    } while (0)
