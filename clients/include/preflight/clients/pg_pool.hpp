#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

struct pg_result;  // libpq's PGresult

namespace preflight::clients {

namespace detail {
struct pool_impl;
struct blocking_runner;
}  // namespace detail

/// One statement seen by `pool_params::on_statement`: sent to the server, or completed (its result or error
/// arrived, or the pool failed it after sending). Statements that never reach a connection (pool exhausted,
/// cancelled while waiting) produce no event.
struct pg_statement_event {
    enum class kind { sent, completed };
    kind what = kind::sent;
    std::uint64_t id = 0;             ///< unique per pool, increasing in send order; `completed` repeats it
    std::string_view statement;       ///< the prepared statement's name
    bool internal = false;            ///< a PREPARE sent by the pool itself (first use on a connection)
    std::size_t connection = 0;       ///< index of the pool connection
    boost::system::error_code error;  ///< `completed` only: the statement's error (empty on success)
};

/// Settings of a `pg_pool`. Every field has a default except `url`.
struct pool_params {
    /// A libpq connection string: URL (`postgresql://user@host:5432/db`) or key/value form.
    std::string url;
    /// Number of server connections.
    std::size_t size = 4;
    /// Bound on opening one connection (libpq `connect_timeout`; libpq rounds values below 2 s up to 2 s).
    std::chrono::milliseconds connect_timeout{5000};
    /// Server-side `statement_timeout` of every connection; 0 disables it. A statement that runs longer
    /// fails with `errc::timeout`.
    std::chrono::milliseconds statement_timeout{5000};
    /// How long a statement may wait for pool capacity (every connection at `max_in_flight`) before it
    /// fails with `errc::pool_exhausted`.
    std::chrono::milliseconds wait_timeout{2000};
    /// `application_name` of every connection (visible in pg_stat_activity).
    std::string application_name = "preflight";
    /// Pipeline depth: statements in flight on one connection at a time (libpq pipeline mode).
    std::size_t max_in_flight = 32;
    /// Called (on the pool's strand) for every failed statement or connection attempt, with the statement
    /// name ("connect" for connection attempts), the error and a diagnostic message (server text; the
    /// connection string is redacted). Must not block and must not throw.
    std::function<void(std::string_view statement, boost::system::error_code, std::string_view message)> on_error;
    /// Called (on the pool's strand) when a statement is sent and when it completes: a counting hook for tests
    /// and benchmarks (statements and sequential round trips of a code path). Must not block and must not throw;
    /// empty costs nothing.
    std::function<void(const pg_statement_event&)> on_statement;
    /// Connection affinity: statements submitted in the same turn (e.g. the reads a preflight starts together in one
    /// handler; a turn ends when its flush, queued on the io_context, runs) go to one connection (at most
    /// `coalesce_max` of them, then the next connection), back to back, each still with its own sync (its own implicit
    /// transaction: an error in one never aborts another), so fewer server backends are woken per turn. (libpq 15's
    /// PQpipelineSync writes each statement to the socket at once; with libpq >= 17 one socket write could carry them
    /// all.) Off (the default): every statement goes to the least loaded connection, one backend per statement.
    /// Measured on the shared 2-core machine with this branch: W6 c=1 with `coalesce_max` 2 (the four reads on two
    /// backends, one per core) had a lower p50 in 5 of 6 interleaved runs of one session (median ~262 vs ~300 µs) but
    /// not in a later one (304 vs 277 µs), and ~10% less client CPU; c=32 the same within noise; all reads on one
    /// backend (`coalesce_max` 8) was no better than off (~10% slower on the quiet machine earlier). Off by default
    /// until a quiet-machine measurement settles it.
    bool coalesce = false;
    /// At most this many statements of one turn on one connection (then the next connection takes the rest), so
    /// that a burst is still spread over several backends.
    std::size_t coalesce_max = 2;
    /// With `coalesce` on a TCP connection: hold the segments of a turn's second and later statements (TCP_CORK)
    /// until the turn's flush, so that they leave in one segment (libpq 15 writes each statement at once). Costs
    /// two setsockopt calls per coalesced turn; saves a segment per statement. Off by default: W6 on the shared
    /// 2-core machine showed no difference beyond its noise.
    bool tcp_cork = false;
};

/// A named server-side prepared statement. Cheap to copy (shared, immutable). Each pool connection prepares
/// it on first use. Names must be unique per pool for a given SQL text.
class pg_statement {
public:
    pg_statement(std::string name, std::string sql);
    [[nodiscard]] const std::string& name() const noexcept;
    [[nodiscard]] const std::string& sql() const noexcept;

private:
    struct data;
    std::shared_ptr<const data> d_;
};

/// The rows of one statement's result (text format). Move-only; owns the libpq result.
class pg_rows {
public:
    pg_rows() noexcept = default;
    explicit pg_rows(::pg_result* r) noexcept;
    pg_rows(pg_rows&&) noexcept;
    pg_rows& operator=(pg_rows&&) noexcept;
    pg_rows(const pg_rows&) = delete;
    pg_rows& operator=(const pg_rows&) = delete;
    ~pg_rows();

    [[nodiscard]] std::size_t size() const noexcept;
    [[nodiscard]] std::size_t columns() const noexcept;
    [[nodiscard]] bool is_null(std::size_t row, std::size_t col) const noexcept;
    /// The text value of a field ("" for NULL). Valid while this object lives.
    [[nodiscard]] std::string_view text(std::size_t row, std::size_t col) const noexcept;
    /// Parses a field. Throws `std::invalid_argument` naming the column when it does not parse
    /// (a broken invariant: the SQL promised that type).
    [[nodiscard]] std::int64_t as_int64(std::size_t row, std::size_t col) const;
    [[nodiscard]] double as_double(std::size_t row, std::size_t col) const;
    [[nodiscard]] bool as_bool(std::size_t row, std::size_t col) const;
    /// Rows affected by an INSERT/UPDATE/DELETE (0 for other statements).
    [[nodiscard]] std::uint64_t affected() const noexcept;

private:
    ::pg_result* r_ = nullptr;
};

/// Counters of a pool (monotonic, approximate under concurrency).
struct pool_stats {
    std::uint64_t statements = 0;  ///< statements sent (including PREPAREs)
    std::uint64_t syncs = 0;       ///< pipeline sync points sent: each is one round trip for its statement
    std::uint64_t connects = 0;    ///< successful connection attempts
    std::uint64_t failures = 0;    ///< failed statements and connection attempts
};

/// An asynchronous Postgres connection pool for coroutines, built on libpq in non-blocking pipeline mode
/// with each socket watched by Asio: awaiting a statement never blocks an io_context thread (only the
/// connection handshake runs on a small internal thread pool). Many statements may be in flight on one
/// connection (pipelining, each statement its own implicit transaction), so few connections serve many
/// coroutines. Connections open lazily (or all at once with `connect_all`); a broken connection fails its
/// in-flight statements with `errc::connection_broken` and is replaced on next use.
///
/// With `pool_params::coalesce`, statements submitted together share one connection.
///
/// Lifetime: destroy the pool before its io_context; destruction fails outstanding statements with
/// `errc::cancelled`. Thread safety: every member may be called from any thread; the internals run on one
/// strand of the executor given at construction.
class pg_pool {
public:
    /// Creates the pool; no connection is opened yet. Throws `std::invalid_argument` when `size` or
    /// `max_in_flight` is 0.
    pg_pool(boost::asio::any_io_executor ex, pool_params params);
    ~pg_pool();
    pg_pool(const pg_pool&) = delete;
    pg_pool& operator=(const pg_pool&) = delete;

    /// Runs prepared statement `st` with text parameters `params` (never interpolated into SQL) and returns
    /// its rows. The statement is sent inline (dispatch onto the pool's strand) when the strand is free and the caller
    /// runs on the pool's io_context, queued otherwise. The coroutine resumes on its own executor: inline from the
    /// pool's socket reader when that executor allows it (dispatch), so a caller's continuation may run while the
    /// pool's strand is held (it may call `exec` again; it must not block).
    /// Errors: `store_unavailable` (cannot connect, server error), `connection_broken` (the connection broke
    /// while the statement was in flight: its effect is unknown, it is never retried), `timeout`
    /// (statement_timeout), `pool_exhausted` (no capacity within wait_timeout), `bad_input` (the server
    /// rejected a parameter), `cancelled`. Details go to `pool_params::on_error` with the statement name.
    /// Cancellation: terminal, partial and total. A statement not yet sent is dropped; one in flight is
    /// cancelled server-side (PQcancel) when it is alone on its connection, otherwise its result is
    /// discarded when it arrives (the statement may still take effect).
    boost::asio::awaitable<result<pg_rows>> exec(pg_statement st, std::vector<std::string> params);

    /// As above with the parameters given one by one (`co_await pool.exec(st, key, std::to_string(n))`).
    /// Prefer this form inside coroutines: g++ 12 miscompiles braced lists of std::string there.
    template <class... Params>
    requires(sizeof...(Params) > 0 && (std::is_convertible_v<Params, std::string> && ...))
        boost::asio::awaitable<result<pg_rows>> exec(pg_statement st, Params&&... params) {
        std::vector<std::string> v;
        v.reserve(sizeof...(Params));
        (v.emplace_back(std::forward<Params>(params)), ...);
        return exec(std::move(st), std::move(v));
    }

    /// Opens every connection that is not open yet and waits for them; fails with the first error.
    boost::asio::awaitable<result<void>> connect_all();

    /// Current counters.
    [[nodiscard]] pool_stats stats() const noexcept;

    /// Statements submitted through `exec` and not answered yet (approximate under concurrency): 0 when the pool is
    /// idle. Statements dropped uncalled at shutdown stay counted.
    [[nodiscard]] std::size_t busy() const noexcept;

    /// The configured number of connections.
    [[nodiscard]] std::size_t size() const noexcept;

private:
    std::unique_ptr<detail::blocking_runner> blocking_;
    std::shared_ptr<detail::pool_impl> impl_;
};

}  // namespace preflight::clients
