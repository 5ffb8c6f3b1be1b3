#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/fixed_window.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/window_refund.hpp>

namespace preflight::limits {

/// The embedded (one process) `fixed_window_store`, built on `fixed_window_counter`.
/// The coroutines complete synchronously. Errors: period <= 0 or max 0 gives `errc::bad_input`.
/// `purge_idle` removes windows with `window_start + 2 × period <= now` (see window_math::purgeable).
/// Thread safety: every member may be called concurrently. Lifetime: the clock must outlive the store.
class memory_fixed_window_store final : public fixed_window_store, public window_refund {
public:
    explicit memory_fixed_window_store(
        const preflight::clock& c = preflight::clock::steady(), fixed_window_params p = {}
    );

    boost::asio::awaitable<result<window_result>> consume(std::string key, window_limit limit, std::uint64_t n)
        override;
    boost::asio::awaitable<result<std::uint64_t>> purge_idle() override;
    /// See `window_refund::refund` (the current window of the store's clock). Errors as `consume`.
    boost::asio::awaitable<result<void>> refund(std::string key, window_limit limit, std::uint64_t n) override;

    /// The synchronous counter behind the store (the fast path).
    [[nodiscard]] fixed_window_counter& counter() noexcept { return counter_; }

private:
    fixed_window_counter counter_;
};

}  // namespace preflight::limits
