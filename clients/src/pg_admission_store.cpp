#include "pg_limit_answers.hpp"
#include "pg_util.hpp"
#include <preflight/clients/pg_admission_store.hpp>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace preflight::clients {

namespace asio = boost::asio;

namespace {

// $1 key, $2 max slots, $3 ttl (ms): one composite "(lease_id,in_use)", the new lease id empty (NULL) when full and
// the live leases after the call. preflight_admit (sql/003_admission.sql) replaces preflight_reserve (001); both
// take the same per-key lock. Called as a scalar: cheaper on the server than `SELECT * FROM` (no function scan).
const pg_statement reserve_stmt{"preflight_adm_reserve", "SELECT preflight_admit($1::text, $2::integer, $3::bigint)"};

// $1 lease id. Deletes the lease (expired ones too); true only when it was live.
const pg_statement release_stmt{
    "preflight_adm_release",
    "WITH d AS (DELETE FROM preflight_leases WHERE lease_id = $1::uuid RETURNING expires_at)"
    " SELECT count(*) FROM d WHERE expires_at > clock_timestamp()"};

// $1 lease id, $2 ttl (ms). Extends a live lease to now + ttl.
const pg_statement renew_stmt{
    "preflight_adm_renew",
    "UPDATE preflight_leases SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond'"
    " WHERE lease_id = $1::uuid AND expires_at > clock_timestamp()"};

// Deletes every expired lease.
const pg_statement admission_purge_stmt{
    "preflight_adm_purge",
    "WITH d AS (DELETE FROM preflight_leases WHERE expires_at <= clock_timestamp() RETURNING 1) SELECT count(*) FROM "
    "d"};

// Parses preflight_admit's composite "(<uuid or empty>,<integer>)" (neither field ever needs quoting).
std::optional<std::pair<std::string_view, std::uint32_t>> parse_admit(std::string_view s) {
    if (s.size() < 4 || s.front() != '(' || s.back() != ')') return std::nullopt;
    s = s.substr(1, s.size() - 2);
    const auto comma = s.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    const auto id = s.substr(0, comma);
    const auto num = s.substr(comma + 1);
    if (!id.empty() && !detail::is_uuid(id)) return std::nullopt;
    std::uint32_t in_use = 0;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), in_use);
    if (ec != std::errc{} || end != num.data() + num.size()) return std::nullopt;
    return std::pair{id, in_use};
}

}  // namespace

asio::awaitable<result<limits::lease_grant>> pg_admission_store::reserve(
    std::string key, std::uint32_t max_slots, std::chrono::milliseconds ttl
) {
    if (auto ok = detail::check_key(key); !ok) co_return ok.error();
    if (max_slots > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) co_return errc::bad_input;
    auto params = detail::params(std::move(key), std::to_string(max_slots), std::to_string(ttl.count()));
    std::optional<limits::lease_grant> out;
    if (batch_ != nullptr) {
        // The batch's (lease id or NULL, in_use) in row `row` from column `first`.
        auto got = co_await batch_->submit(pg_limit_batch::part::admission, std::move(params));
        if (!got) co_return got.error();
        const auto& rows = *got->rows;
        out = detail::admission_answer(
            rows.text(got->row, got->first), rows.as_int64(got->row, got->first + 1), max_slots
        );
    } else {
        auto rows = co_await pool_.exec(reserve_stmt, std::move(params));
        if (!rows) co_return rows.error();
        if (rows->size() == 1 && !rows->is_null(0, 0)) {
            if (auto parsed = parse_admit(rows->text(0, 0))) {
                out = detail::admission_answer(parsed->first, parsed->second, max_slots);
            }
        }
    }
    if (!out) co_return errc::protocol_error;  // not what preflight_admit returns: a schema mismatch
    co_return std::move(*out);
}

asio::awaitable<result<bool>> pg_admission_store::release(std::string lease_id) {
    if (!detail::is_uuid(lease_id)) co_return false;
    auto params = detail::params(std::move(lease_id));
    auto rows = co_await pool_.exec(release_stmt, std::move(params));
    if (!rows) co_return result<bool>{boost::system::in_place_error, rows.error()};
    co_return rows->as_int64(0, 0) > 0;
}

asio::awaitable<result<bool>> pg_admission_store::renew(std::string lease_id, std::chrono::milliseconds ttl) {
    if (!detail::is_uuid(lease_id)) co_return false;
    auto params = detail::params(std::move(lease_id), std::to_string(ttl.count()));
    auto rows = co_await pool_.exec(renew_stmt, std::move(params));
    if (!rows) co_return result<bool>{boost::system::in_place_error, rows.error()};
    co_return rows->affected() > 0;
}

asio::awaitable<result<std::uint64_t>> pg_admission_store::purge_expired() {
    auto rows = co_await pool_.exec(admission_purge_stmt, std::vector<std::string>{});
    if (!rows) co_return rows.error();
    co_return static_cast<std::uint64_t>(rows->as_int64(0, 0));
}

}  // namespace preflight::clients
