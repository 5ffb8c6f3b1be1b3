#include "pg_gather.hpp"
#include "pg_limit_answers.hpp"
#include "pg_util.hpp"
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_limit_chain.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace preflight::clients {

namespace {

constexpr std::size_t chain_parts = 3;
constexpr std::array<std::size_t, chain_parts> chain_param_count{4, 4, 3};
constexpr std::array<std::size_t, chain_parts> chain_first_param{0, 4, 8};
constexpr std::size_t chain_mask_param = 11;  // bit i: part i present
constexpr std::size_t chain_columns = 8;
constexpr std::array<std::size_t, chain_parts> chain_first_column{0, 3, 6};

// $1-$4 window, $5-$8 bucket, $9-$11 admission, $12 the parts present. An absent part's key becomes NULL here (the
// pool sends text parameters only); its other parameters are placeholders of the right types.
const pg_statement chain_stmt{
    "preflight_limit_chain",
    "SELECT * FROM preflight_limit_chain("
    "CASE WHEN $12::integer & 1 <> 0 THEN $1::text END, $2::bigint, $3::bigint, $4::bigint,"
    " CASE WHEN $12::integer & 2 <> 0 THEN $5::text END, $6::float8, $7::float8, $8::float8,"
    " CASE WHEN $12::integer & 4 <> 0 THEN $9::text END, $10::integer, $11::bigint)"};

// Several chains: their number, then per part one array per parameter and the chain of each element.
const pg_statement chains_stmt{
    "preflight_limit_chains",
    "SELECT * FROM preflight_limit_chains($1::integer,"
    " $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[],"
    " $7::text[], $8::float8[], $9::float8[], $10::float8[], $11::integer[],"
    " $12::text[], $13::integer[], $14::bigint[], $15::integer[])"};

bool has_part(const detail::gather_item& it, std::size_t part) {
    return (std::stoul(it.params[chain_mask_param]) & (1UL << part)) != 0;
}

std::pair<pg_statement, std::vector<std::string>> build_chains(const detail::gather_lists& live) {
    const auto& chains = live[0];
    if (chains.size() == 1) return {chain_stmt, chains.front()->params};
    std::vector<std::string> params;
    params.reserve(1 + 5 * chain_parts);
    params.push_back(std::to_string(chains.size()));
    for (std::size_t p = 0; p < chain_parts; ++p) {
        // The part's elements in ascending key order (bytewise): the function takes its locks in array order, so
        // every call takes them in one global order (as 004 and 005 do).
        std::vector<std::size_t> order;
        for (std::size_t c = 0; c < chains.size(); ++c) {
            if (has_part(*chains[c], p)) order.push_back(c);
        }
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return chains[a]->params[chain_first_param[p]] < chains[b]->params[chain_first_param[p]];
        });
        std::vector<std::string> column;
        for (std::size_t k = 0; k < chain_param_count[p]; ++k) {
            column.clear();
            for (auto c : order) column.push_back(chains[c]->params[chain_first_param[p] + k]);
            params.push_back(k == 0 ? detail::text_array_literal(column) : detail::plain_array_literal(column));
        }
        column.clear();
        for (auto c : order) column.push_back(std::to_string(c + 1));
        params.push_back(detail::plain_array_literal(column));
    }
    return {chains_stmt, std::move(params)};
}

// Row c answers chain c.
result<std::vector<std::vector<std::size_t>>> locate_chains(const detail::gather_lists& live, const pg_rows& rows) {
    if (rows.size() != live[0].size() || rows.columns() != chain_columns) return errc::protocol_error;
    std::vector<std::vector<std::size_t>> at(1);
    for (std::size_t c = 0; c < live[0].size(); ++c) at[0].push_back(c);
    return at;
}

detail::gather_spec chain_spec() {
    detail::gather_spec s;
    s.kinds = 1;
    // Two chains with a key of a kind in common go to different calls (the set-based statements write a row once).
    s.conflict = [](const detail::gather_item& a, const detail::gather_item& b) {
        for (std::size_t p = 0; p < chain_parts; ++p) {
            if (has_part(a, p) && has_part(b, p) && a.params[chain_first_param[p]] == b.params[chain_first_param[p]])
                return true;
        }
        return false;
    };
    s.build = build_chains;
    s.locate = locate_chains;
    s.retry_alone = [](boost::system::error_code ec) { return ec == errc::bad_input || ec == errc::store_unavailable; };
    return s;
}

constexpr auto chain_max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// The 12 parameters of `req`, or bad_input for what the standalone stores refuse.
result<std::vector<std::string>> params_of(const limits::chain_request& req) {
    std::vector<std::string> p{"", "0", "1", "0", "", "1", "1", "0", "", "0", "0", ""};
    unsigned mask = 0;
    if (const auto& w = req.window) {
        if (!detail::check_key(w->key) || w->limit.period.count() < 1 || w->limit.max == 0 ||
            w->limit.max > chain_max_i64 || w->n > chain_max_i64) {
            return errc::bad_input;
        }
        mask |= 1U;
        p[0] = w->key;
        p[1] = std::to_string(w->limit.max);
        p[2] = std::to_string(w->limit.period.count());
        p[3] = std::to_string(w->n);
    }
    if (const auto& b = req.bucket) {
        const auto& l = b->limit;
        if (!detail::check_key(b->key) || !(l.rate_per_s > 0) || !std::isfinite(l.rate_per_s) || !(l.burst >= 1) ||
            !std::isfinite(l.burst)) {
            return errc::bad_input;
        }
        const auto g = detail::gcra_of(l);
        mask |= 2U;
        p[4] = b->key;
        p[5] = detail::to_text(g.t);
        p[6] = detail::to_text(g.tau);
        p[7] = std::to_string(b->quantity);
    }
    if (const auto& a = req.admission) {
        if (!detail::check_key(a->key) || a->max_slots == 0 ||
            a->max_slots > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()) ||
            a->ttl.count() <= 0) {
            return errc::bad_input;
        }
        mask |= 4U;
        p[8] = a->key;
        p[9] = std::to_string(a->max_slots);
        p[10] = std::to_string(a->ttl.count());
    }
    p[chain_mask_param] = std::to_string(mask);
    return p;
}

// Chain `row`'s answer (columns of 007); protocol_error when it is not what the function returns.
result<limits::chain_result> chain_answer(const limits::chain_request& req, const pg_rows& rows, std::size_t row) {
    limits::chain_result out;
    const auto attempted = [&](std::size_t part) { return !rows.is_null(row, chain_first_column[part]); };
    if (req.window && attempted(0)) {
        out.window = detail::window_answer(rows, row, chain_first_column[0], req.window->limit.max);
        if (!out.window->allowed) out.denied_by = limits::chain_part::window;
    }
    if (req.bucket && attempted(1)) {
        out.bucket = detail::bucket_answer(
            rows, row, chain_first_column[1], detail::gcra_of(req.bucket->limit), req.bucket->quantity
        );
        if (!out.bucket->allowed) out.denied_by = limits::chain_part::bucket;
    }
    if (req.admission && !rows.is_null(row, chain_first_column[2] + 1)) {
        out.admission = detail::admission_answer(
            rows.text(row, chain_first_column[2]),
            rows.as_int64(row, chain_first_column[2] + 1),
            req.admission->max_slots
        );
        if (!out.admission) return errc::protocol_error;
        if (!out.admission->admitted) out.denied_by = limits::chain_part::admission;
    }
    // A part asked and not attempted is only possible after a denial.
    const bool gap = (req.window && !out.window) || (req.bucket && !out.bucket) || (req.admission && !out.admission);
    if (gap && !out.denied_by) return errc::protocol_error;
    return out;
}

}  // namespace

pg_limit_chain::pg_limit_chain(pg_pool& pool, pg_gather_options options)
    : pool_(pool), gather_(std::make_unique<detail::gatherer>(pool, chain_spec(), options)) {}

pg_limit_chain::~pg_limit_chain() = default;

bool pg_limit_chain::answers_for(
    const limits::fixed_window_store* windows,
    const limits::rate_limit_store& buckets,
    const limits::admission_store& admissions
) const noexcept {
    const auto on_this_pool = [this](const auto* store) { return store != nullptr && &store->pool() == &pool_; };
    return (windows == nullptr || on_this_pool(dynamic_cast<const pg_fixed_window_store*>(windows))) &&
           on_this_pool(dynamic_cast<const pg_rate_limit_store*>(&buckets)) &&
           on_this_pool(dynamic_cast<const pg_admission_store*>(&admissions));
}

pg_gather_stats pg_limit_chain::stats() const {
    return gather_->stats();
}

boost::asio::awaitable<result<limits::chain_result>> pg_limit_chain::apply(limits::chain_request req) {
    auto params = params_of(req);
    if (!params) co_return params.error();
    if (!req.window && !req.bucket && !req.admission) co_return limits::chain_result{};
    detail::gather_item item;
    item.params = std::move(*params);
    auto got = co_await gather_->submit(std::move(item));
    if (!got) co_return got.error();
    co_return chain_answer(req, *got->first, got->second);
}

}  // namespace preflight::clients
