#include "pg_util.hpp"
#include <preflight/clients/pg_run_budget_store.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace preflight::clients {

namespace {

// $1 run id, $2 max, $3 n, $4 ttl (ms). Returns allowed and the run's count after the call. A row past its expiry
// counts as absent (its count restarts); a denied charge updates nothing and reports the live count.
const pg_statement run_charge_stmt{
    "preflight_run_charge",
    "WITH up AS ("
    "  INSERT INTO preflight_run_budgets AS b (run_id, used, expires_at)"
    "  SELECT $1::text, $3::bigint, clock_timestamp() + $4::bigint * interval '1 millisecond'"
    "  WHERE $3::bigint <= $2::bigint"
    "  ON CONFLICT (run_id) DO UPDATE SET"
    "    used = CASE WHEN b.expires_at <= clock_timestamp() THEN EXCLUDED.used ELSE b.used + EXCLUDED.used END,"
    "    expires_at = EXCLUDED.expires_at"
    "  WHERE CASE WHEN b.expires_at <= clock_timestamp() THEN EXCLUDED.used ELSE b.used + EXCLUDED.used END"
    "        <= $2::bigint"
    "  RETURNING b.used)"
    " SELECT (SELECT used FROM up) IS NOT NULL,"
    "  coalesce((SELECT used FROM up),"
    "           (SELECT used FROM preflight_run_budgets WHERE run_id = $1::text AND expires_at > clock_timestamp()),"
    "           0)"};

// $1 run id, $2 n. Never below zero; a forgotten run is left alone.
const pg_statement run_refund_stmt{
    "preflight_run_refund",
    "UPDATE preflight_run_budgets SET used = greatest(used - $2::bigint, 0)"
    " WHERE run_id = $1::text AND expires_at > clock_timestamp()"};

const pg_statement run_purge_stmt{
    "preflight_run_purge",
    "WITH d AS (DELETE FROM preflight_run_budgets WHERE expires_at <= clock_timestamp() RETURNING 1)"
    " SELECT count(*) FROM d"};

constexpr auto run_max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

}  // namespace

boost::asio::awaitable<result<limits::run_charge>> pg_run_budget_store::charge(
    std::string run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
) {
    if (auto ok = detail::check_key(run_id); !ok) co_return ok.error();
    if (max == 0 || max > run_max_i64 || n > run_max_i64 || ttl.count() <= 0) co_return errc::bad_input;
    auto params =
        detail::params(std::move(run_id), std::to_string(max), std::to_string(n), std::to_string(ttl.count()));
    auto rows = co_await pool_.exec(run_charge_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() != 1 || rows->columns() != 2) co_return errc::protocol_error;
    co_return limits::run_charge{rows->as_bool(0, 0), static_cast<std::uint64_t>(rows->as_int64(0, 1)), max};
}

boost::asio::awaitable<result<void>> pg_run_budget_store::refund(std::string run_id, std::uint64_t n) {
    if (auto ok = detail::check_key(run_id); !ok) co_return ok.error();
    if (n > run_max_i64) co_return errc::bad_input;
    if (n == 0) co_return result<void>{};
    auto params = detail::params(std::move(run_id), std::to_string(n));
    auto rows = co_await pool_.exec(run_refund_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return result<void>{};
}

boost::asio::awaitable<result<std::uint64_t>> pg_run_budget_store::purge_expired() {
    auto rows = co_await pool_.exec(run_purge_stmt, std::vector<std::string>{});
    if (!rows) co_return rows.error();
    co_return static_cast<std::uint64_t>(rows->as_int64(0, 0));
}

}  // namespace preflight::clients
