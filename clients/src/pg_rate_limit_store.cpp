#include "pg_limit_answers.hpp"
#include "pg_util.hpp"
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace preflight::clients {

namespace asio = boost::asio;

namespace {

// $1 key, $2 T (µs per token), $3 tau (µs), $4 quantity. Returns allowed, the TAT after the call (NULL for an
// unknown key that was denied) and the server's now (µs since the epoch). The upsert locks the key's row and
// re-checks against its latest version, so concurrent acquires from any process serialise on it. A denied
// acquire updates nothing; its TAT comes from the statement's snapshot (only retry_after depends on it).
const pg_statement acquire_stmt{
    "preflight_rl_acquire",
    "WITH p AS (SELECT extract(epoch FROM clock_timestamp())::float8 * 1e6 AS now),"
    " up AS ("
    "  INSERT INTO preflight_rate_limits AS r (key, tat)"
    "  SELECT $1::text, p.now + $4::float8 * $2::float8 FROM p WHERE $4::float8 * $2::float8 <= $3::float8"
    "  ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat)"
    "  WHERE greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat)"
    "        <= EXCLUDED.tat - $4::float8 * $2::float8 + $3::float8"
    "  RETURNING r.tat)"
    " SELECT (SELECT tat FROM up) IS NOT NULL,"
    "        coalesce((SELECT tat FROM up), (SELECT tat FROM preflight_rate_limits WHERE key = $1::text)),"
    "        p.now"
    " FROM p"};

// $1 key. The key's TAT (NULL when unknown) and the server's now.
const pg_statement peek_stmt{
    "preflight_rl_peek",
    "SELECT (SELECT tat FROM preflight_rate_limits WHERE key = $1::text),"
    " extract(epoch FROM clock_timestamp())::float8 * 1e6"};

// $1 key, $2 T (µs), $3 quantity. TAT = max(TAT - q*T, now); an unknown key matches no row.
const pg_statement bucket_refund_stmt{
    "preflight_rl_refund",
    "UPDATE preflight_rate_limits"
    " SET tat = greatest(tat - $3::float8 * $2::float8, extract(epoch FROM clock_timestamp())::float8 * 1e6)"
    " WHERE key = $1::text"};

// Deletes rows equivalent to an absent key (full bucket).
const pg_statement bucket_purge_stmt{
    "preflight_rl_purge",
    "WITH d AS (DELETE FROM preflight_rate_limits WHERE tat <= extract(epoch FROM clock_timestamp())::float8 * 1e6"
    " RETURNING 1) SELECT count(*) FROM d"};

void check_limit(const limits::bucket_limit& limit, const std::string& key) {
    if (!(limit.rate_per_s > 0) || !std::isfinite(limit.rate_per_s) || !(limit.burst >= 1) ||
        !std::isfinite(limit.burst)) {
        throw std::invalid_argument(
            "pg_rate_limit_store: bad limit for key '" + key.substr(0, 64) + "': rate_per_s " +
            detail::to_text(limit.rate_per_s) + ", burst " + detail::to_text(limit.burst)
        );
    }
}

}  // namespace

asio::awaitable<result<limits::acquire_result>> pg_rate_limit_store::acquire(
    std::string key, limits::bucket_limit limit, std::uint32_t quantity
) {
    check_limit(limit, key);
    if (auto ok = detail::check_key(key); !ok) co_return ok.error();
    const auto g = detail::gcra_of(limit);
    const double t = g.t;
    const double tau = g.tau;
    if (quantity == 0) {
        limits::acquire_result out;
        auto params = detail::params(std::move(key));
        auto rows = co_await pool_.exec(peek_stmt, std::move(params));
        if (!rows) co_return rows.error();
        const double now = rows->as_double(0, 1);
        const double base = rows->is_null(0, 0) ? now : std::max(rows->as_double(0, 0), now);
        out.allowed = base + t - now <= tau;
        out.retry_after = detail::us_to_ns(std::max(0.0, base + t - tau - now));
        out.remaining = detail::remaining_tokens(now, tau, base, t);
        out.reset_after = detail::us_to_ns(base - now);
        co_return out;
    }
    auto params = detail::params(std::move(key), detail::to_text(t), detail::to_text(tau), std::to_string(quantity));
    // Both forms answer (allowed, TAT or NULL, now) in row `row` from column `c`.
    pg_rows own;
    std::shared_ptr<const pg_rows> shared;
    std::size_t row = 0;
    std::size_t c = 0;
    if (batch_ != nullptr) {
        auto got = co_await batch_->submit(pg_limit_batch::part::bucket, std::move(params));
        if (!got) co_return got.error();
        shared = std::move(got->rows);
        row = got->row;
        c = got->first;
    } else {
        auto rows = co_await pool_.exec(acquire_stmt, std::move(params));
        if (!rows) co_return rows.error();
        own = std::move(*rows);
    }
    co_return detail::bucket_answer(shared ? *shared : own, row, c, g, quantity);
}

asio::awaitable<result<void>> pg_rate_limit_store::refund(
    std::string key, limits::bucket_limit limit, std::uint32_t quantity
) {
    check_limit(limit, key);
    if (auto ok = detail::check_key(key); !ok) co_return ok.error();
    if (quantity == 0) co_return result<void>{};
    auto params = detail::params(std::move(key), detail::to_text(1e6 / limit.rate_per_s), std::to_string(quantity));
    auto rows = co_await pool_.exec(bucket_refund_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return result<void>{};
}

asio::awaitable<result<std::uint64_t>> pg_rate_limit_store::purge_idle() {
    auto rows = co_await pool_.exec(bucket_purge_stmt, std::vector<std::string>{});
    if (!rows) co_return rows.error();
    co_return static_cast<std::uint64_t>(rows->as_int64(0, 0));
}

}  // namespace preflight::clients
