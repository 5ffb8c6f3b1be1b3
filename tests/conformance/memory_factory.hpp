#pragma once

#include <preflight/core/clock.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>

namespace preflight::conformance {

/// Conformance factory for an in-memory store constructible from `const preflight::clock&` (e.g.
/// `limits::memory_rate_limit_store`): time is a `manual_clock`, so expectations hold exactly (tolerance 0).
/// Usage:
///   using memory_rate_factory = conformance::memory_store_factory<limits::memory_rate_limit_store>;
///   INSTANTIATE_TYPED_TEST_SUITE_P(memory, rate_limit_store_conformance, memory_rate_factory);
template <class Store>
struct memory_store_factory {
    static constexpr std::chrono::milliseconds tolerance{0};

    void set_up(boost::asio::io_context&) { store_ = std::make_unique<Store>(clock_); }
    Store& store() { return *store_; }
    void advance(std::chrono::milliseconds d) { clock_.advance(d); }

    manual_clock clock_;
    std::unique_ptr<Store> store_;
};

}  // namespace preflight::conformance
