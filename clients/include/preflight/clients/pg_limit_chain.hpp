#pragma once

#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/limits/limit_chain.hpp>

#include <boost/asio/awaitable.hpp>

#include <memory>

namespace preflight::clients {

namespace detail {
class gatherer;
}  // namespace detail

/// The Postgres `limits::limit_chain`: a preflight's window consume, bucket acquire and admission reservation as one
/// call of `preflight_limit_chain` (sql/007_limit_chain.sql) that applies them in that order and stops at the first
/// denial, server-side: a later part is never written when an earlier one denies, the earlier parts are given back
/// in the same transaction. One round trip, one commit.
///
/// Under load, while `max_in_flight` calls are in flight, the chains of the preflights that follow gather in the next
/// call, sent as soon as one in flight finishes, as ONE call of `preflight_limit_chains` (one set-based statement per
/// kind). A call never holds two chains that share a key of a kind (such a chain starts the next call), so the chains
/// of one key are applied in order of submission when `max_in_flight` is 1. A shared call that fails with
/// `bad_input` or `store_unavailable` is retried one chain at a time, so a bad chain fails by itself.
///
/// Errors: as the standalone stores (`bad_input` for a key over `max_key_bytes` or with NUL, a period below 1 s, an
/// invalid bucket limit, counts beyond bigint, a max beyond integer) before anything is sent; the pool's errors.
/// Cancellation of one chain: before its call is sent, it is dropped; after, its result is discarded when it arrives
/// (the chain may still take effect: a lease it took expires by its ttl).
/// Lifetime: `pool` must outlive the chain. Thread safety: fully thread-safe.
class pg_limit_chain final : public limits::limit_chain {
public:
    /// Throws `std::invalid_argument` when `max_in_flight` or `max_per_call` is 0.
    explicit pg_limit_chain(pg_pool& pool, pg_gather_options options = {});
    ~pg_limit_chain() override;
    pg_limit_chain(const pg_limit_chain&) = delete;
    pg_limit_chain& operator=(const pg_limit_chain&) = delete;

    boost::asio::awaitable<result<limits::chain_result>> apply(limits::chain_request req) override;
    /// True for the Postgres limit stores on this chain's pool.
    [[nodiscard]] bool answers_for(
        const limits::fixed_window_store* windows,
        const limits::rate_limit_store& buckets,
        const limits::admission_store& admissions
    ) const noexcept override;

    /// Current counters of the gathering.
    [[nodiscard]] pg_gather_stats stats() const;

private:
    const pg_pool& pool_;
    std::unique_ptr<detail::gatherer> gather_;
};

}  // namespace preflight::clients
