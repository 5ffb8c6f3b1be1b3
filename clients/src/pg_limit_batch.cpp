#include "pg_gather.hpp"
#include <preflight/clients/pg_limit_batch.hpp>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace preflight::clients {

namespace {

constexpr std::size_t n_parts = 3;
constexpr std::array<std::size_t, n_parts> param_count{4, 4, 3};
constexpr std::array<std::size_t, n_parts> first_column{0, 3, 6};
constexpr std::size_t n_columns = 8;

// $1-$4 window, $5-$8 bucket, $9-$11 admission, $12 the parts present (bit 0 window, 1 bucket, 2 admission). The
// pool sends text parameters only (no NULL): an absent part's key becomes NULL here, its other parameters are
// placeholders of the right types.
const pg_statement batch_stmt{
    "preflight_limit_batch",
    "SELECT * FROM preflight_limit_batch("
    "CASE WHEN $12::integer & 1 <> 0 THEN $1::text END, $2::bigint, $3::bigint, $4::bigint,"
    " CASE WHEN $12::integer & 2 <> 0 THEN $5::text END, $6::float8, $7::float8, $8::float8,"
    " CASE WHEN $12::integer & 4 <> 0 THEN $9::text END, $10::integer, $11::bigint)"};

// The writes of several preflights: one array literal per parameter of each part (sql/005_limit_many.sql).
const pg_statement many_stmt{
    "preflight_limit_many",
    "SELECT * FROM preflight_limit_many($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"
    " $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::integer[], $11::bigint[])"};

const std::array<std::array<const char*, 4>, n_parts> placeholders{{
    {"", "0", "1", "0"},
    {"", "1", "1", "0"},
    {"", "0", "0", ""},
}};

std::size_t widest(const detail::gather_lists& live) {
    std::size_t w = 0;
    for (const auto& l : live) w = std::max(w, l.size());
    return w;
}

std::pair<pg_statement, std::vector<std::string>> build(const detail::gather_lists& live) {
    std::vector<std::string> params;
    if (widest(live) == 1) {
        // preflight_limit_batch: at most one write of each part.
        params.reserve(12);
        unsigned mask = 0;
        for (std::size_t i = 0; i < n_parts; ++i) {
            if (!live[i].empty()) {
                mask |= 1U << i;
                for (const auto& p : live[i].front()->params) params.push_back(p);
            } else {
                for (std::size_t k = 0; k < param_count[i]; ++k) params.emplace_back(placeholders[i][k]);
            }
        }
        params.push_back(std::to_string(mask));
        return {batch_stmt, std::move(params)};
    }
    // preflight_limit_many: per part, one array per parameter (numbers go in as the text the server parses).
    params.reserve(11);
    for (std::size_t i = 0; i < n_parts; ++i) {
        std::vector<std::string> column;
        for (std::size_t k = 0; k < param_count[i]; ++k) {
            column.clear();
            for (const auto* w : live[i]) column.push_back(w->params[k]);
            params.push_back(k == 0 ? detail::text_array_literal(column) : detail::plain_array_literal(column));
        }
    }
    return {many_stmt, std::move(params)};
}

// Row i answers the i-th write of each part (one row for a call of preflight_limit_batch).
result<std::vector<std::vector<std::size_t>>> locate(const detail::gather_lists& live, const pg_rows& rows) {
    const auto n = widest(live);
    if (rows.size() != n || rows.columns() != n_columns) return errc::protocol_error;  // a schema mismatch
    std::vector<std::vector<std::size_t>> at(n_parts);
    for (std::size_t i = 0; i < n_parts; ++i) {
        for (std::size_t k = 0; k < live[i].size(); ++k) at[i].push_back(k);
    }
    return at;
}

detail::gather_spec limit_spec() {
    detail::gather_spec s;
    s.kinds = n_parts;
    s.distinct_keys = true;
    // Each part in ascending key order (bytewise): preflight_limit_many takes its locks in array order, so every
    // call takes them in one global order and concurrent calls cannot wait for each other in a cycle.
    s.less = [](const detail::gather_item& a, const detail::gather_item& b) { return a.params[0] < b.params[0]; };
    s.build = build;
    s.locate = locate;
    s.retry_alone = [](boost::system::error_code ec) { return ec == errc::bad_input || ec == errc::store_unavailable; };
    return s;
}

}  // namespace

pg_limit_batch::pg_limit_batch(pg_pool& pool, pg_gather_options options)
    : gather_(std::make_unique<detail::gatherer>(pool, limit_spec(), options)) {}

pg_limit_batch::~pg_limit_batch() = default;

pg_gather_stats pg_limit_batch::stats() const {
    return gather_->stats();
}

boost::asio::awaitable<result<pg_limit_batch_rows>> pg_limit_batch::submit(part p, std::vector<std::string> params) {
    const auto i = static_cast<std::size_t>(p);
    if (i >= n_parts || params.size() != param_count[i]) {
        throw std::invalid_argument(
            "pg_limit_batch::submit: part " + std::to_string(i) + " takes " +
            (i < n_parts ? std::to_string(param_count[i]) : std::string("no")) + " parameters, got " +
            std::to_string(params.size())
        );
    }
    detail::gather_item item;
    item.kind = i;
    item.params = std::move(params);
    auto got = co_await gather_->submit(std::move(item));
    if (!got) co_return got.error();
    co_return pg_limit_batch_rows{std::move(got->first), first_column[i], got->second};
}

}  // namespace preflight::clients
