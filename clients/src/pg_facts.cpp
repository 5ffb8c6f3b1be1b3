#include "pg_gather.hpp"
#include "pg_util.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/pg_facts.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <limits>
#include <memory>
#include <string_view>

// g++ 12 at -O2 reports -Wmismatched-new-delete for Asio's awaitable frames once it inlines their recycling allocator:
// a false positive (see server/src/api.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace preflight::clients {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Times cross the wire as integer microseconds since the Unix epoch (exact both ways: extract() is numeric).
#define PREFLIGHT_US_OF(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
#define PREFLIGHT_TS_OF(param) "(to_timestamp(0) + NULLIF(" param "::text, '')::bigint * interval '1 microsecond')"

// $1 subject ids as a text[] literal. The first subject (in the given order) with an active ban; among its active
// rows the one that lasts longest (permanent first). Index (subject_id, expires_at).
const pg_statement ban_find_stmt{
    "preflight_ban_find",
    "SELECT b.subject_id, b.reason, " PREFLIGHT_US_OF("b.expires_at"
    ) " FROM unnest($1::text[]) WITH ORDINALITY AS s(id, ord)"
      " JOIN preflight_bans b ON b.subject_id = s.id"
      " WHERE b.expires_at IS NULL OR b.expires_at > clock_timestamp()"
      " ORDER BY s.ord, b.expires_at DESC NULLS FIRST, b.id DESC"
      " LIMIT 1"};

// $1 user id, $2 org id ('' = none). The highest plan tier among the counting subscriptions of both; on a tie the
// personal one. Primary key lookups.
const pg_statement sub_find_stmt{
    "preflight_sub_find",
    "SELECT owner_id, plan, status, seats, " PREFLIGHT_US_OF("current_period_end"
    ) " FROM preflight_subscriptions"
      " WHERE owner_id IN (NULLIF($1::text, ''), NULLIF($2::text, '')) AND status IN ('active', 'trialing')"
      " ORDER BY array_position(ARRAY['free', 'pro', 'team', 'enterprise']::text[], plan) DESC,"
      "          owner_id = $1::text DESC"
      " LIMIT 1"};

// $1 subject, $2 period start (date).
const pg_statement usage_get_stmt{
    "preflight_usage_get",
    "SELECT requests, tokens FROM preflight_usage WHERE subject_id = $1::text AND period_start = $2::date"};

// $1 record id, $2 subject, $3 period, $4 requests, $5 tokens. The record row and the addition in one statement: a
// record id seen before inserts no row, and then nothing is added.
const pg_statement usage_record_stmt{
    "preflight_usage_record",
    "WITH rec AS ("
    "  INSERT INTO preflight_usage_records (record_id, subject_id, period_start) VALUES ($1::text, $2::text, $3::date)"
    "  ON CONFLICT (record_id) DO NOTHING RETURNING 1),"
    " up AS ("
    "  INSERT INTO preflight_usage AS u (subject_id, period_start, requests, tokens)"
    "  SELECT $2::text, $3::date, $4::bigint, $5::bigint WHERE EXISTS (SELECT 1 FROM rec)"
    "  ON CONFLICT (subject_id, period_start) DO UPDATE"
    "  SET requests = u.requests + EXCLUDED.requests, tokens = u.tokens + EXCLUDED.tokens RETURNING 1)"
    " SELECT EXISTS (SELECT 1 FROM rec)"};

// Records of periods before the previous UTC month (sql/009's index on period_start).
const pg_statement usage_records_purge_stmt{
    "preflight_usage_records_purge",
    "WITH d AS (DELETE FROM preflight_usage_records WHERE period_start <"
    "  (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC') - interval '1 month')::date RETURNING 1)"
    " SELECT count(*) FROM d"};

// $1 org, $2 user.
const pg_statement member_find_stmt{
    "preflight_member_find",
    "SELECT role, usage_cap, used FROM preflight_org_members WHERE org_id = $1::text AND user_id = $2::text"};

// $1 org.
const pg_statement balance_get_stmt{
    "preflight_balance_get", "SELECT remaining FROM preflight_balances WHERE org_id = $1::text"};

// $1 ban subject ids (text[] literal), $2 user id, $3 org id, $4 usage subject ('' = none), $5 usage period
// ('' with no subject), $6 membership wanted (boolean). The four reads above in one statement: one row whose column
// groups are each NULL when their lookup found nothing (or was skipped). Same rules and indexes as the four.
const pg_statement subject_facts_stmt{
    "preflight_subject_facts",
    "SELECT b.subject_id, b.reason, " PREFLIGHT_US_OF("b.expires_at"
    ) ","
      " s.owner_id, s.plan, s.status, s.seats, " PREFLIGHT_US_OF("s.current_period_end"
      ) ","
        " u.requests, u.tokens, m.role, m.usage_cap, m.used"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN LATERAL (SELECT b.subject_id, b.reason, b.expires_at"
        "   FROM unnest($1::text[]) WITH ORDINALITY AS s(id, ord) JOIN preflight_bans b ON b.subject_id = s.id"
        "   WHERE b.expires_at IS NULL OR b.expires_at > clock_timestamp()"
        "   ORDER BY s.ord, b.expires_at DESC NULLS FIRST, b.id DESC LIMIT 1) AS b ON true"
        " LEFT JOIN LATERAL (SELECT owner_id, plan, status, seats, current_period_end FROM preflight_subscriptions"
        "   WHERE owner_id IN (NULLIF($2::text, ''), NULLIF($3::text, '')) AND status IN ('active', 'trialing')"
        "   ORDER BY array_position(ARRAY['free', 'pro', 'team', 'enterprise']::text[], plan) DESC,"
        "            owner_id = $2::text DESC LIMIT 1) AS s ON true"
        " LEFT JOIN LATERAL (SELECT requests, tokens FROM preflight_usage"
        "   WHERE $4::text <> '' AND subject_id = $4::text AND period_start = NULLIF($5::text, '')::date) AS u ON true"
        " LEFT JOIN LATERAL (SELECT role, usage_cap, used FROM preflight_org_members"
        "   WHERE $6::boolean AND org_id = $3::text AND user_id = $2::text) AS m ON true"};

// The reads of several requests: one array per parameter of preflight_subject_facts (sql/006_subject_facts_many.sql).
// One row per request: its index from 1, then preflight_subject_facts' columns.
const pg_statement subject_facts_many_stmt{
    "preflight_subject_facts_many",
    "SELECT * FROM preflight_subject_facts_many($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::boolean[])"};

constexpr std::size_t subject_facts_columns = 13;

std::pair<pg_statement, std::vector<std::string>> build_reads(const detail::gather_lists& live) {
    const auto& reads = live[0];
    if (reads.size() == 1) return {subject_facts_stmt, reads.front()->params};
    std::vector<std::string> params;
    params.reserve(6);
    std::vector<std::string> column;
    for (std::size_t k = 0; k < 6; ++k) {
        column.clear();
        for (const auto* r : reads) column.push_back(r->params[k]);
        // Five text columns, then the membership flags ("t"/"f").
        params.push_back(k < 5 ? detail::text_array_literal(column) : detail::plain_array_literal(column));
    }
    return {subject_facts_many_stmt, std::move(params)};
}

// One row per read: the single statement's, or the many function's in any order, each naming its read's index.
result<std::vector<std::vector<std::size_t>>> locate_reads(const detail::gather_lists& live, const pg_rows& rows) {
    const auto n = live[0].size();
    std::vector<std::vector<std::size_t>> at(1, std::vector<std::size_t>(n, n));
    if (n == 1) {
        if (rows.size() != 1 || rows.columns() != subject_facts_columns) return errc::protocol_error;
        at[0][0] = 0;
        return at;
    }
    if (rows.size() != n || rows.columns() != subject_facts_columns + 1) return errc::protocol_error;
    for (std::size_t r = 0; r < n; ++r) {
        const auto o = rows.as_int64(r, 0);
        if (o < 1 || static_cast<std::size_t>(o) > n || at[0][static_cast<std::size_t>(o - 1)] != n) {
            return errc::protocol_error;
        }
        at[0][static_cast<std::size_t>(o - 1)] = r;
    }
    return at;
}

detail::gather_spec reads_spec() {
    detail::gather_spec s;
    s.kinds = 1;
    s.at_once = true;  // a request has one combined read: nothing to wait for in its turn
    s.build = build_reads;
    s.locate = locate_reads;
    s.retry_alone = [](boost::system::error_code ec) { return ec == errc::bad_input || ec == errc::store_unavailable; };
    return s;
}

// ---- writes ----------------------------------------------------------------------------------------------------

// $1 subject, $2 reason, $3 expires_at (µs; '' = permanent). Replaces the subject's bans.
const pg_statement ban_put_stmt{
    "preflight_ban_put",
    "WITH d AS (DELETE FROM preflight_bans WHERE subject_id = $1::text)"
    " INSERT INTO preflight_bans (subject_id, reason, expires_at) VALUES ($1::text, $2::text, " PREFLIGHT_TS_OF("$3"
    ) ")"};

const pg_statement ban_remove_stmt{"preflight_ban_remove", "DELETE FROM preflight_bans WHERE subject_id = $1::text"};

// $1 owner, $2 plan, $3 status, $4 seats, $5 current_period_end (µs; '' = none).
const pg_statement sub_put_stmt{
    "preflight_sub_put",
    "INSERT INTO preflight_subscriptions (owner_id, plan, status, seats, current_period_end)"
    " VALUES ($1::text, $2::text, $3::text, $4::integer, " PREFLIGHT_TS_OF("$5"
    ) ")"
      " ON CONFLICT (owner_id) DO UPDATE SET plan = EXCLUDED.plan, status = EXCLUDED.status, seats = EXCLUDED.seats,"
      " current_period_end = EXCLUDED.current_period_end"};

// $1 subject, $2 period, $3 requests, $4 tokens.
const pg_statement usage_put_stmt{
    "preflight_usage_put",
    "INSERT INTO preflight_usage AS u (subject_id, period_start, requests, tokens)"
    " VALUES ($1::text, $2::date, $3::bigint, $4::bigint)"
    " ON CONFLICT (subject_id, period_start) DO UPDATE SET requests = EXCLUDED.requests, tokens = EXCLUDED.tokens"};

const pg_statement usage_add_stmt{
    "preflight_usage_add",
    "INSERT INTO preflight_usage AS u (subject_id, period_start, requests, tokens)"
    " VALUES ($1::text, $2::date, $3::bigint, $4::bigint)"
    " ON CONFLICT (subject_id, period_start)"
    " DO UPDATE SET requests = u.requests + EXCLUDED.requests, tokens = u.tokens + EXCLUDED.tokens"};

// $1 org, $2 user, $3 role, $4 usage cap ('' = uncapped), $5 used.
const pg_statement member_put_stmt{
    "preflight_member_put",
    "INSERT INTO preflight_org_members (org_id, user_id, role, usage_cap, used)"
    " VALUES ($1::text, $2::text, $3::text, NULLIF($4::text, '')::bigint, $5::bigint)"
    " ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role, usage_cap = EXCLUDED.usage_cap,"
    " used = EXCLUDED.used"};

// $1 org, $2 remaining.
const pg_statement balance_put_stmt{
    "preflight_balance_put",
    "INSERT INTO preflight_balances (org_id, remaining) VALUES ($1::text, $2::bigint)"
    " ON CONFLICT (org_id) DO UPDATE SET remaining = EXCLUDED.remaining, updated_at = clock_timestamp()"};

#undef PREFLIGHT_US_OF
#undef PREFLIGHT_TS_OF

std::optional<std::chrono::system_clock::time_point> time_or_null(
    const pg_rows& rows, std::size_t col, std::size_t row = 0
) {
    if (rows.is_null(row, col)) return std::nullopt;
    return std::chrono::system_clock::time_point{std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::microseconds{rows.as_int64(row, col)}
    )};
}

std::string micros_or_empty(const std::optional<std::chrono::system_clock::time_point>& t) {
    if (!t) return {};
    return std::to_string(std::chrono::floor<std::chrono::microseconds>(t->time_since_epoch()).count());
}

template <class... Keys>
result<void> check_keys(const Keys&... keys) {
    for (std::string_view k : {std::string_view(keys)...}) {
        if (auto ok = detail::check_key(k); !ok) return ok;
    }
    return {};
}

// Row readers shared by the single lookups and the combined ones: each reads its columns of row `row` (0 unless
// given) from `col` on.
ban ban_at(const pg_rows& rows, std::size_t col, std::size_t row = 0) {
    ban b;
    b.subject_id = std::string(rows.text(row, col));
    b.reason = std::string(rows.text(row, col + 1));
    b.until = time_or_null(rows, col + 2, row);
    return b;
}

result<subscription> subscription_at(const pg_rows& rows, std::size_t col, std::size_t row = 0) {
    auto plan = parse_plan_tier(rows.text(row, col + 1));
    if (!plan) return errc::protocol_error;
    subscription s;
    s.owner_id = std::string(rows.text(row, col));
    s.plan = *plan;
    s.status = std::string(rows.text(row, col + 2));
    s.seats = static_cast<int>(rows.as_int64(row, col + 3));
    s.current_period_end = time_or_null(rows, col + 4, row);
    return s;
}

usage usage_at(const pg_rows& rows, std::size_t col, std::size_t row = 0) {
    usage u;
    u.requests = static_cast<std::uint64_t>(rows.as_int64(row, col));
    u.tokens = static_cast<std::uint64_t>(rows.as_int64(row, col + 1));
    return u;
}

member member_at(const pg_rows& rows, std::size_t col, std::string org_id, std::string user_id, std::size_t row = 0) {
    member m;
    m.org_id = std::move(org_id);
    m.user_id = std::move(user_id);
    m.role = std::string(rows.text(row, col));
    if (!rows.is_null(row, col + 1)) m.usage_cap = static_cast<std::uint64_t>(rows.as_int64(row, col + 1));
    m.used = static_cast<std::uint64_t>(rows.as_int64(row, col + 2));
    return m;
}

asio::awaitable<result<void>> exec_void(pg_pool& pool, const pg_statement& st, std::vector<std::string> params) {
    auto rows = co_await pool.exec(st, std::move(params));
    if (!rows) co_return rows.error();
    co_return result<void>{};
}

}  // namespace

// ---- reads -----------------------------------------------------------------------------------------------------

asio::awaitable<result<std::optional<ban>>> pg_ban_store::find_active(std::vector<std::string> subject_ids) {
    if (subject_ids.empty()) co_return std::optional<ban>{};
    for (const auto& id : subject_ids) {
        if (auto ok = detail::check_key(id); !ok) co_return ok.error();
    }
    auto params = detail::params(detail::text_array_literal(subject_ids));
    auto rows = co_await pool_.exec(ban_find_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() == 0) co_return std::optional<ban>{};
    co_return std::optional<ban>{ban_at(*rows, 0)};
}

asio::awaitable<result<std::optional<subscription>>> pg_subscription_store::find_highest_priority(
    std::string user_id, std::string org_id
) {
    if (user_id.empty() && org_id.empty()) co_return std::optional<subscription>{};
    if (auto ok = check_keys(user_id, org_id); !ok) co_return ok.error();
    auto params = detail::params(std::move(user_id), std::move(org_id));
    auto rows = co_await pool_.exec(sub_find_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() == 0) co_return std::optional<subscription>{};
    auto s = subscription_at(*rows, 0);
    if (!s) co_return s.error();
    co_return std::optional<subscription>{std::move(*s)};
}

asio::awaitable<result<usage>> pg_usage_store::get(std::string subject_id, std::string period_start) {
    if (auto ok = check_keys(subject_id, period_start); !ok) co_return ok.error();
    auto params = detail::params(std::move(subject_id), std::move(period_start));
    auto rows = co_await pool_.exec(usage_get_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return rows->size() > 0 ? usage_at(*rows, 0) : usage{};
}

asio::awaitable<result<bool>> pg_usage_store::record(
    std::string record_id, std::string subject_id, std::string period_start, usage delta
) {
    using failed = result<bool>;
    if (auto ok = check_keys(subject_id, period_start); !ok)
        co_return failed{boost::system::in_place_error, ok.error()};
    if (auto ok = detail::check_key(record_id); !ok) co_return failed{boost::system::in_place_error, ok.error()};
    constexpr auto max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (delta.requests > max_i64 || delta.tokens > max_i64) {
        co_return failed{boost::system::in_place_error, make_error_code(errc::bad_input)};
    }
    auto params = detail::params(
        std::move(record_id),
        std::move(subject_id),
        std::move(period_start),
        std::to_string(delta.requests),
        std::to_string(delta.tokens)
    );
    auto rows = co_await pool_.exec(usage_record_stmt, std::move(params));
    if (!rows) co_return failed{boost::system::in_place_error, rows.error()};
    if (rows->size() != 1) co_return failed{boost::system::in_place_error, make_error_code(errc::protocol_error)};
    co_return rows->as_bool(0, 0);
}

asio::awaitable<result<std::uint64_t>> pg_usage_store::purge_records() {
    auto rows = co_await pool_.exec(usage_records_purge_stmt, std::vector<std::string>{});
    if (!rows) co_return rows.error();
    if (rows->size() != 1) co_return make_error_code(errc::protocol_error);
    co_return static_cast<std::uint64_t>(rows->as_int64(0, 0));
}

asio::awaitable<result<std::optional<member>>> pg_member_store::find(std::string org_id, std::string user_id) {
    if (auto ok = check_keys(org_id, user_id); !ok) co_return ok.error();
    auto params = detail::params(org_id, user_id);
    auto rows = co_await pool_.exec(member_find_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() == 0) co_return std::optional<member>{};
    co_return std::optional<member>{member_at(*rows, 0, std::move(org_id), std::move(user_id))};
}

asio::awaitable<result<balance_outcome>> pg_balance_source::check(std::string org_id) {
    if (auto ok = detail::check_key(org_id); !ok) co_return ok.error();
    auto params = detail::params(std::move(org_id));
    auto rows = co_await pool_.exec(balance_get_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() == 0) co_return make_error_code(errc::not_found);
    balance_outcome out;
    out.remaining = rows->as_int64(0, 0);
    out.allowed = *out.remaining > 0;
    if (!out.allowed) out.reason = "no plan executions left";
    co_return out;
}

asio::awaitable<result<subject_facts>> pg_subject_facts_source::load(subject_facts_query q) {
    for (const auto& id : q.ban_subjects) {
        if (auto ok = detail::check_key(id); !ok) co_return ok.error();
    }
    if (auto ok = check_keys(q.user_id, q.org_id, q.usage_subject, q.usage_period); !ok) co_return ok.error();
    const bool membership = q.membership && !q.org_id.empty() && !q.user_id.empty();
    if (q.ban_subjects.empty() && q.user_id.empty() && q.org_id.empty() && q.usage_subject.empty()) {
        co_return subject_facts{};  // nothing to look up: no statement
    }
    if (q.usage_subject.empty()) q.usage_period.clear();
    auto params = detail::params(
        detail::text_array_literal(q.ban_subjects),
        q.user_id,
        q.org_id,
        std::move(q.usage_subject),
        std::move(q.usage_period),
        std::string(membership ? "t" : "f")
    );
    std::shared_ptr<const pg_rows> rows;
    std::size_t row = 0;
    if (gather_) {
        detail::gather_item item;
        item.params = std::move(params);
        auto got = co_await gather_->submit(std::move(item));
        if (!got) co_return got.error();
        rows = std::move(got->first);
        row = got->second;
    } else {
        auto r = co_await pool_.exec(subject_facts_stmt, std::move(params));
        if (!r) co_return r.error();
        if (r->size() != 1 || r->columns() != subject_facts_columns) co_return errc::protocol_error;
        rows = std::make_shared<const pg_rows>(std::move(*r));
    }
    // The many function's rows start with the read's index: the columns shift by one.
    const std::size_t c = rows->columns() == subject_facts_columns ? 0 : 1;
    subject_facts out;
    if (!rows->is_null(row, c)) out.active_ban = ban_at(*rows, c, row);
    if (!rows->is_null(row, c + 3)) {
        auto s = subscription_at(*rows, c + 3, row);
        if (!s) co_return s.error();
        out.highest_subscription = std::move(*s);
    }
    if (!rows->is_null(row, c + 8)) out.period_usage = usage_at(*rows, c + 8, row);
    if (!rows->is_null(row, c + 10)) {
        out.membership = member_at(*rows, c + 10, std::move(q.org_id), std::move(q.user_id), row);
    }
    co_return out;
}

pg_subject_facts_source::pg_subject_facts_source(pg_pool& pool, std::optional<pg_gather_options> gather)
    : pool_(pool), gather_(gather ? std::make_unique<detail::gatherer>(pool, reads_spec(), *gather) : nullptr) {}

pg_subject_facts_source::~pg_subject_facts_source() = default;

pg_gather_stats pg_subject_facts_source::gather_stats() const {
    return gather_ ? gather_->stats() : pg_gather_stats{};
}

bool pg_subject_facts_source::answers_for(
    const ban_store& bans,
    const subscription_store& subscriptions,
    const usage_store& usage,
    const member_store& members
) const noexcept {
    const auto on_this_pool = [this](const auto* store) { return store != nullptr && &store->pool() == &pool_; };
    return on_this_pool(dynamic_cast<const pg_ban_store*>(&bans)) &&
           on_this_pool(dynamic_cast<const pg_subscription_store*>(&subscriptions)) &&
           on_this_pool(dynamic_cast<const pg_usage_store*>(&usage)) &&
           on_this_pool(dynamic_cast<const pg_member_store*>(&members));
}

// ---- writes ----------------------------------------------------------------------------------------------------

asio::awaitable<result<void>> pg_fact_writer::put_ban(ban b) {
    if (auto ok = detail::check_key(b.subject_id); !ok) co_return ok;
    auto params = detail::params(std::move(b.subject_id), std::move(b.reason), micros_or_empty(b.until));
    co_return co_await exec_void(pool_, ban_put_stmt, std::move(params));
}

asio::awaitable<result<bool>> pg_fact_writer::remove_bans(std::string subject_id) {
    if (auto ok = detail::check_key(subject_id); !ok) co_return result<bool>{boost::system::in_place_error, ok.error()};
    auto params = detail::params(std::move(subject_id));
    auto rows = co_await pool_.exec(ban_remove_stmt, std::move(params));
    if (!rows) co_return result<bool>{boost::system::in_place_error, rows.error()};
    co_return rows->affected() > 0;
}

asio::awaitable<result<void>> pg_fact_writer::put_subscription(subscription s) {
    if (auto ok = detail::check_key(s.owner_id); !ok) co_return ok;
    auto params = detail::params(
        std::move(s.owner_id),
        std::string(to_string(s.plan)),
        std::move(s.status),
        std::to_string(s.seats),
        micros_or_empty(s.current_period_end)
    );
    co_return co_await exec_void(pool_, sub_put_stmt, std::move(params));
}

asio::awaitable<result<void>> pg_fact_writer::put_usage(std::string subject_id, std::string period_start, usage u) {
    if (auto ok = check_keys(subject_id, period_start); !ok) co_return ok;
    auto params = detail::params(
        std::move(subject_id), std::move(period_start), std::to_string(u.requests), std::to_string(u.tokens)
    );
    co_return co_await exec_void(pool_, usage_put_stmt, std::move(params));
}

asio::awaitable<result<void>> pg_fact_writer::add_usage(
    std::string subject_id, std::string period_start, std::uint64_t requests, std::uint64_t tokens
) {
    if (auto ok = check_keys(subject_id, period_start); !ok) co_return ok;
    auto params = detail::params(
        std::move(subject_id), std::move(period_start), std::to_string(requests), std::to_string(tokens)
    );
    co_return co_await exec_void(pool_, usage_add_stmt, std::move(params));
}

asio::awaitable<result<void>> pg_fact_writer::put_member(member m) {
    if (auto ok = check_keys(m.org_id, m.user_id); !ok) co_return ok;
    auto params = detail::params(
        std::move(m.org_id),
        std::move(m.user_id),
        std::move(m.role),
        m.usage_cap ? std::to_string(*m.usage_cap) : std::string(),
        std::to_string(m.used)
    );
    co_return co_await exec_void(pool_, member_put_stmt, std::move(params));
}

asio::awaitable<result<void>> pg_fact_writer::put_balance(std::string org_id, std::int64_t remaining) {
    if (auto ok = detail::check_key(org_id); !ok) co_return ok;
    auto params = detail::params(std::move(org_id), std::to_string(remaining));
    co_return co_await exec_void(pool_, balance_put_stmt, std::move(params));
}

// ---- loading a fact data document ------------------------------------------------------------------------------

namespace {

// Field readers for a document that `load_fact_data` has already validated (same defaults as it applies).
std::string str_or(const json::object& o, std::string_view key, std::string_view fallback) {
    const auto* v = o.if_contains(key);
    return v ? std::string(v->get_string()) : std::string(fallback);
}

std::optional<std::int64_t> int_or_null(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    return v->is_int64() ? v->get_int64() : static_cast<std::int64_t>(v->get_uint64());
}

const json::array* section(const json::object& doc, std::string_view name) {
    const auto* v = doc.if_contains(name);
    return v ? &v->get_array() : nullptr;
}

struct usage_row {
    std::string subject_id;
    std::string period_start;
    usage u;
};

struct balance_row {
    std::string org_id;
    std::int64_t remaining = 0;
};

/// The entries of a fact data document, in document order per section.
struct fact_data {
    std::vector<ban> bans;
    std::vector<subscription> subscriptions;
    std::vector<usage_row> usage;
    std::vector<member> members;
    std::vector<balance_row> balances;
};

/// Parses a fact data document with exactly the validation, defaults and messages of `load_fact_data` (which
/// checks it first and throws `fact_data_error`).
fact_data parse_fact_data(const json::value& doc) {
    {
        memory_fact_stores scratch;
        load_fact_data(doc, scratch);
    }
    fact_data out;
    const auto& obj = doc.get_object();
    if (const auto* a = section(obj, "bans")) {
        for (const auto& item : *a) {
            const auto& o = item.get_object();
            ban b;
            b.subject_id = str_or(o, "subject_id", "");
            b.reason = str_or(o, "reason", "banned");
            if (auto until = int_or_null(o, "until_unix_s")) b.until = std::chrono::system_clock::from_time_t(*until);
            out.bans.push_back(std::move(b));
        }
    }
    if (const auto* a = section(obj, "subscriptions")) {
        for (const auto& item : *a) {
            const auto& o = item.get_object();
            subscription s;
            s.owner_id = str_or(o, "owner_id", "");
            s.plan = parse_plan_tier(str_or(o, "plan", "")).value_or(plan_tier::free);
            s.status = str_or(o, "status", "active");
            s.seats = static_cast<int>(int_or_null(o, "seats").value_or(1));
            out.subscriptions.push_back(std::move(s));
        }
    }
    if (const auto* a = section(obj, "usage")) {
        for (const auto& item : *a) {
            const auto& o = item.get_object();
            usage_row row;
            row.subject_id = str_or(o, "subject_id", "");
            row.period_start = str_or(o, "period_start", "");
            row.u.requests = static_cast<std::uint64_t>(int_or_null(o, "requests").value_or(0));
            row.u.tokens = static_cast<std::uint64_t>(int_or_null(o, "tokens").value_or(0));
            out.usage.push_back(std::move(row));
        }
    }
    if (const auto* a = section(obj, "members")) {
        for (const auto& item : *a) {
            const auto& o = item.get_object();
            member m;
            m.org_id = str_or(o, "org_id", "");
            m.user_id = str_or(o, "user_id", "");
            m.role = str_or(o, "role", "member");
            if (auto cap = int_or_null(o, "usage_cap")) m.usage_cap = static_cast<std::uint64_t>(*cap);
            m.used = static_cast<std::uint64_t>(int_or_null(o, "used").value_or(0));
            out.members.push_back(std::move(m));
        }
    }
    if (const auto* a = section(obj, "balances")) {
        for (const auto& item : *a) {
            const auto& o = item.get_object();
            balance_row row;
            row.org_id = str_or(o, "org_id", "");
            row.remaining = int_or_null(o, "remaining").value_or(0);
            out.balances.push_back(std::move(row));
        }
    }
    return out;
}

}  // namespace

asio::awaitable<result<void>> pg_load_fact_data(pg_pool& pool, json::value doc) {
    auto data = std::make_unique<fact_data>(parse_fact_data(doc));
    pg_fact_writer w{pool};
    result<void> r;
    for (auto& b : data->bans) {
        if (r = co_await w.put_ban(std::move(b)); !r) co_return r;
    }
    for (auto& s : data->subscriptions) {
        if (r = co_await w.put_subscription(std::move(s)); !r) co_return r;
    }
    for (auto& row : data->usage) {
        if (r = co_await w.put_usage(std::move(row.subject_id), std::move(row.period_start), row.u); !r) co_return r;
    }
    for (auto& m : data->members) {
        if (r = co_await w.put_member(std::move(m)); !r) co_return r;
    }
    for (auto& row : data->balances) {
        if (r = co_await w.put_balance(std::move(row.org_id), row.remaining); !r) co_return r;
    }
    co_return r;
}

}  // namespace preflight::clients
