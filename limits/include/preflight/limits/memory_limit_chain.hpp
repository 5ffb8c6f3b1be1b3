#pragma once

#include <preflight/limits/limit_chain.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

namespace preflight::limits {

/// The embedded `limit_chain`: the parts applied one after another on the three in-memory stores, a denial giving
/// back the earlier parts at once (`limit_chain` semantics). Within one process a concurrent caller may observe a
/// consume for the instant before its give-back; across processes use the Postgres chain.
/// The coroutine completes synchronously; `apply_now` is the same without a coroutine frame.
/// Lifetime: the stores must outlive the chain. Thread safety: as the stores (fully thread-safe).
class memory_limit_chain final : public limit_chain {
public:
    memory_limit_chain(
        memory_fixed_window_store& windows, memory_rate_limit_store& buckets, memory_admission_store& admissions
    ) noexcept
        : windows_(windows), buckets_(buckets), admissions_(admissions) {}

    boost::asio::awaitable<result<chain_result>> apply(chain_request req) override;
    /// True for the three stores the chain was built on.
    [[nodiscard]] bool answers_for(
        const fixed_window_store* windows, const rate_limit_store& buckets, const admission_store& admissions
    ) const noexcept override {
        return (windows == nullptr || windows == &windows_) && &buckets == &buckets_ && &admissions == &admissions_;
    }

    /// Synchronous form of `apply`.
    [[nodiscard]] result<chain_result> apply_now(const chain_request& req);

private:
    memory_fixed_window_store& windows_;
    memory_rate_limit_store& buckets_;
    memory_admission_store& admissions_;
};

}  // namespace preflight::limits
