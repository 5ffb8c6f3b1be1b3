#pragma once

#include <preflight/clients/pg_pool.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace preflight::clients {

namespace detail {
struct limit_batch_state;
}  // namespace detail

/// The rows of one limiter write sent through a `pg_limit_batch`: the batch's single result row, shared by every
/// write of the call; this write's outputs start at column `first`.
struct pg_limit_batch_rows {
    std::shared_ptr<const pg_rows> rows;
    std::size_t first = 0;
};

/// Groups the limiter writes of one turn into one statement: the fixed-window consume, token-bucket acquire and
/// admission reservation that a preflight's stateful phase starts together (`pg_fixed_window_store`,
/// `pg_rate_limit_store` and `pg_admission_store` built with this batch) go to the server as ONE call of
/// `preflight_limit_batch` (sql/004_limit_batch.sql): one backend, one commit, instead of three. A transport
/// optimisation only: each write keeps the semantics of its standalone statement and its own outcome (a denied part
/// does not stop another).
///
/// A turn: writes submitted before the batch's flush runs (queued on the first write's executor when it arrived),
/// so writes started in one handler share a call. A call holds at most one write of each kind; a second write of a
/// kind in the same turn starts another call. A call carrying a single write still uses the batch function.
///
/// Errors: a call that fails fails each of its writes with the pool's error (`pg_pool::exec`); an error raised by
/// one part on the server (e.g. a count overflowing bigint) rolls back the whole call, so its other writes fail too.
/// Cancellation (terminal, partial and total) of one write: before its call is sent, the write is dropped from the
/// call; after, its result is discarded when it arrives (the write may still take effect; the call is never
/// cancelled, as other writes share it). Destroying the batch fails writes whose call was not sent yet with
/// `errc::cancelled`.
///
/// Lifetime: `pool` must outlive the batch, and the batch every store built with it. Thread safety: fully
/// thread-safe.
class pg_limit_batch {
public:
    /// The kinds of write, one slot each per call.
    enum class part : std::size_t { window = 0, bucket = 1, admission = 2 };

    explicit pg_limit_batch(pg_pool& pool);
    ~pg_limit_batch();
    pg_limit_batch(const pg_limit_batch&) = delete;
    pg_limit_batch& operator=(const pg_limit_batch&) = delete;

    /// Adds one write to the current turn's call. `params` are those of the part, in the function's order:
    /// window (key, max, period_s, n), bucket (key, T_us, tau_us, quantity), admission (key, max, ttl_ms).
    /// Resumes with the call's row; the part's outputs start at `first`: window (allowed, count, reset_s),
    /// bucket (allowed, tat_us or NULL, now_us), admission (lease id or NULL, in_use). Throws
    /// `std::invalid_argument` for a wrong number of parameters.
    boost::asio::awaitable<result<pg_limit_batch_rows>> submit(part p, std::vector<std::string> params);

private:
    std::shared_ptr<detail::limit_batch_state> state_;
};

}  // namespace preflight::clients
