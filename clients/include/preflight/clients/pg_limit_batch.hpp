#pragma once

#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace preflight::clients {

namespace detail {
class gatherer;
}  // namespace detail

/// The rows of one limiter write sent through a `pg_limit_batch`: the call's result, shared by every write of the
/// call; this write's outputs are in row `row`, from column `first`.
struct pg_limit_batch_rows {
    std::shared_ptr<const pg_rows> rows;
    std::size_t first = 0;
    std::size_t row = 0;
};

/// Groups limiter writes into few statements: the fixed-window consumes, token-bucket acquires and admission
/// reservations (`pg_fixed_window_store`, `pg_rate_limit_store` and `pg_admission_store` built with this batch).
///
/// A preflight's stateful phase starts its three writes together; they leave as ONE call of `preflight_limit_batch`
/// (sql/004_limit_batch.sql): one backend, one commit, instead of three. Under load, while `max_in_flight` calls are
/// in flight, the writes of the preflights that follow gather in the next call, sent as soon as one in flight
/// finishes, as ONE call of `preflight_limit_many` (sql/005_limit_many.sql): one set-based statement per kind for
/// the common case, so the server's cost per write falls as the load rises. A transport optimisation only: each
/// write keeps the semantics of its standalone statement and its own outcome (a denied write does not stop another).
///
/// A call takes writes from its first write's turn (until the flush queued on that write's executor runs) and, when
/// `max_in_flight` calls are in flight, until one of them finishes; at most `max_per_call` of a kind, and never two of
/// a kind with the same key (such a write starts the next call, so writes of one key are applied in order of
/// submission when `max_in_flight` is 1).
///
/// Errors: a call that fails fails each of its writes with the pool's error (`pg_pool::exec`); an error raised by
/// one write on the server (e.g. a count overflowing bigint, a key that is not valid UTF-8) rolls back its call. A
/// call of one preflight's writes then fails them together; a call of several preflights' writes that failed with
/// `bad_input` or `store_unavailable` is retried one write at a time (`preflight_limit_batch` each, in order), so a
/// bad write fails by itself; the first retry that fails otherwise than with `bad_input` fails the writes after it
/// with its error, untried.
/// Cancellation (terminal, partial and total) of one write: before its call is sent, the write is dropped from the
/// call; after, its result is discarded when it arrives (the write may still take effect; the call is never
/// cancelled, as other writes share it). Destroying the batch fails writes whose call was not sent yet with
/// `errc::cancelled`.
///
/// Lifetime: `pool` must outlive the batch, and the batch every store built with it. Thread safety: fully
/// thread-safe.
class pg_limit_batch {
public:
    /// The kinds of write.
    enum class part : std::size_t { window = 0, bucket = 1, admission = 2 };

    /// Throws `std::invalid_argument` when `max_in_flight` or `max_per_call` is 0.
    explicit pg_limit_batch(pg_pool& pool, pg_gather_options options = {});
    ~pg_limit_batch();
    pg_limit_batch(const pg_limit_batch&) = delete;
    pg_limit_batch& operator=(const pg_limit_batch&) = delete;

    /// Adds one write to the call taking writes. `params` are those of the part, in the function's order:
    /// window (key, max, period_s, n), bucket (key, T_us, tau_us, quantity), admission (key, max, ttl_ms); the
    /// numbers in the text form Postgres parses (they are sent inside array literals as they are).
    /// Resumes with the call's rows; the part's outputs are in row `row` from column `first`: window (allowed,
    /// count, reset_s), bucket (allowed, tat_us or NULL, now_us), admission (lease id or NULL, in_use). Throws
    /// `std::invalid_argument` for a wrong number of parameters.
    boost::asio::awaitable<result<pg_limit_batch_rows>> submit(part p, std::vector<std::string> params);

    /// Current counters.
    [[nodiscard]] pg_gather_stats stats() const;

private:
    std::unique_ptr<detail::gatherer> gather_;
};

}  // namespace preflight::clients
