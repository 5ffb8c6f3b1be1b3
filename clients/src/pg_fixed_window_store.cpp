#include "pg_limit_answers.hpp"
#include "pg_util.hpp"
#include <preflight/clients/pg_fixed_window_store.hpp>

#include <limits>
#include <stdexcept>

namespace preflight::clients {

namespace asio = boost::asio;

namespace {

// $1 key, $2 max, $3 period (s), $4 n. Conditional increment: the upsert's WHERE rejects an attempt that would
// exceed max, so a blocked attempt writes nothing; a row holding an older window restarts at n. Returns
// allowed, the count of the current window (after the call when allowed) and the seconds until it ends.
const pg_statement consume_stmt{
    "preflight_fw_consume",
    "WITH p AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),"
    " w AS (SELECT p.now, floor(p.now / $3::bigint)::bigint * $3::bigint AS ws FROM p),"
    " up AS ("
    "  INSERT INTO preflight_windows AS f (key, window_start, period_s, count, idle_after)"
    "  SELECT $1::text, w.ws, $3::bigint, $4::bigint, w.ws + 2 * $3::bigint FROM w WHERE $4::bigint <= $2::bigint"
    "  ON CONFLICT (key) DO UPDATE SET"
    "   count = CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s"
    "           THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END,"
    "   window_start = EXCLUDED.window_start, period_s = EXCLUDED.period_s, idle_after = EXCLUDED.idle_after"
    "  WHERE CASE WHEN f.window_start = EXCLUDED.window_start AND f.period_s = EXCLUDED.period_s"
    "        THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END <= $2::bigint"
    "  RETURNING f.count)"
    " SELECT (SELECT count FROM up) IS NOT NULL,"
    "  coalesce((SELECT count FROM up),"
    "           (SELECT f.count FROM preflight_windows f"
    "            WHERE f.key = $1::text AND f.window_start = w.ws AND f.period_s = $3::bigint), 0),"
    "  w.ws + $3::bigint - w.now"
    " FROM w"};

// $1 key, $2 period (s), $3 n. Gives n units back to the key's current window (never below zero); a row holding
// another window (or another period) is left alone.
const pg_statement window_refund_stmt{
    "preflight_fw_refund",
    "UPDATE preflight_windows SET count = greatest(count - $3::bigint, 0)"
    " WHERE key = $1::text AND period_s = $2::bigint"
    "   AND window_start = floor(extract(epoch FROM clock_timestamp()) / $2::bigint)::bigint * $2::bigint"};

// Deletes windows that ended at least one full period ago.
const pg_statement window_purge_stmt{
    "preflight_fw_purge",
    "WITH d AS (DELETE FROM preflight_windows WHERE idle_after <= extract(epoch FROM clock_timestamp())"
    " RETURNING 1) SELECT count(*) FROM d"};

}  // namespace

asio::awaitable<result<limits::window_result>> pg_fixed_window_store::consume(
    std::string key, limits::window_limit limit, std::uint64_t n
) {
    if (limit.period.count() < 1) {
        throw std::invalid_argument("pg_fixed_window_store: period below 1 s for key '" + key.substr(0, 64) + "'");
    }
    if (auto ok = detail::check_key(key); !ok) co_return ok.error();
    constexpr auto max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (n > max_i64 || limit.max > max_i64) co_return errc::bad_input;
    auto params = detail::params(
        std::move(key), std::to_string(limit.max), std::to_string(limit.period.count()), std::to_string(n)
    );
    // Both forms answer (allowed, count, seconds until the window ends).
    if (batch_ != nullptr) {
        auto got = co_await batch_->submit(pg_limit_batch::part::window, std::move(params));
        if (!got) co_return got.error();
        co_return detail::window_answer(*got->rows, got->row, got->first, limit.max);
    }
    auto rows = co_await pool_.exec(consume_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return detail::window_answer(*rows, 0, 0, limit.max);
}

asio::awaitable<result<void>> pg_fixed_window_store::refund(
    std::string key, limits::window_limit limit, std::uint64_t n
) {
    if (limit.period.count() < 1) {
        throw std::invalid_argument("pg_fixed_window_store: period below 1 s for key '" + key.substr(0, 64) + "'");
    }
    if (auto ok = detail::check_key(key); !ok) co_return ok.error();
    constexpr auto max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (n > max_i64) co_return errc::bad_input;
    if (n == 0) co_return result<void>{};
    auto params = detail::params(std::move(key), std::to_string(limit.period.count()), std::to_string(n));
    auto rows = co_await pool_.exec(window_refund_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return result<void>{};
}

asio::awaitable<result<std::uint64_t>> pg_fixed_window_store::purge_idle() {
    auto params = detail::params();
    auto rows = co_await pool_.exec(window_purge_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return static_cast<std::uint64_t>(rows->as_int64(0, 0));
}

}  // namespace preflight::clients
