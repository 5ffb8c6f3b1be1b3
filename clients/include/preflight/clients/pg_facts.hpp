#pragma once

#include <preflight/clients/facts/balance_source.hpp>
#include <preflight/clients/facts/ban_store.hpp>
#include <preflight/clients/facts/member_store.hpp>
#include <preflight/clients/facts/subject_facts.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/facts/usage_store.hpp>
#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>  // max_key_bytes

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Postgres fact stores: the read-only facts of the built-in gates, in the tables of sql/002_facts.sql (applied by
// `migrate`). Every call is ONE prepared statement (parameters only) and one round trip; a call with a key longer
// than `max_key_bytes` or containing NUL fails with `errc::bad_input` before reaching the server. Other errors
// are those of `pg_pool::exec` (store_unavailable, connection_broken, timeout, pool_exhausted, bad_input,
// cancelled); cancellation is as `pg_pool::exec` (these statements only read, so a cancelled call has no effect).
// Times come from the server clock (`clock_timestamp()`).
// Lifetime: `pool` must outlive the store and every call. Thread safety: every member may be called concurrently
// from any thread.
namespace preflight::clients {

namespace detail {
class gatherer;
}  // namespace detail

/// Bans in `preflight_bans`. Semantics equal `memory_ban_store` (whose `until` is the row's `expires_at`).
class pg_ban_store final : public ban_store {
public:
    explicit pg_ban_store(pg_pool& pool) noexcept : pool_(pool) {}

    /// The pool it reads through.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

    /// The first active ban among `subject_ids` in the given order (one statement for all of them; an empty
    /// list answers nullopt without a statement). When a subject has several active rows, the one that lasts
    /// longest is returned (a permanent one first).
    boost::asio::awaitable<result<std::optional<ban>>> find_active(std::vector<std::string> subject_ids) override;

private:
    pg_pool& pool_;
};

/// Subscriptions in `preflight_subscriptions`, keyed by owner id. Semantics equal `memory_subscription_store`:
/// the highest plan tier among the counting ("active", "trialing") subscriptions of the user and of the org; on a
/// tie the personal one. An empty id is not looked up. A stored plan the library does not know fails with
/// `errc::protocol_error` (the table's CHECK constraint prevents it).
class pg_subscription_store final : public subscription_store {
public:
    explicit pg_subscription_store(pg_pool& pool) noexcept : pool_(pool) {}

    /// The pool it reads through.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

    /// One statement for both owners.
    boost::asio::awaitable<result<std::optional<subscription>>> find_highest_priority(
        std::string user_id, std::string org_id
    ) override;

private:
    pg_pool& pool_;
};

/// Usage in `preflight_usage`. An unknown subject or period is zero usage. `period_start` must be a date
/// ("YYYY-MM-DD"); the server rejects anything else with `errc::bad_input`.
class pg_usage_store final : public usage_store {
public:
    explicit pg_usage_store(pg_pool& pool) noexcept : pool_(pool) {}

    /// The pool it reads through.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

    boost::asio::awaitable<result<usage>> get(std::string subject_id, std::string period_start) override;
    /// See `usage_store::record`: one statement (the record row of `preflight_usage_records` and the addition to
    /// `preflight_usage` together; migration 009), so a repeated id adds nothing from any process.
    boost::asio::awaitable<result<bool>> record(
        std::string record_id, std::string subject_id, std::string period_start, usage delta
    ) override;
    /// Deletes the record rows of periods before the previous UTC month (the server's clock) and answers how many:
    /// an execution records into the period it started in, so the ids of the current and the previous month are
    /// kept, which covers any lease ttl shorter than a month. A release repeated after that adds its usage to its
    /// (past) period again. The store set's purge runs it (`store_set::purge`).
    boost::asio::awaitable<result<std::uint64_t>> purge_records();

private:
    pg_pool& pool_;
};

/// Org memberships in `preflight_org_members` (NULL `usage_cap` = uncapped).
class pg_member_store final : public member_store {
public:
    explicit pg_member_store(pg_pool& pool) noexcept : pool_(pool) {}

    /// The pool it reads through.
    [[nodiscard]] const pg_pool& pool() const noexcept { return pool_; }

    boost::asio::awaitable<result<std::optional<member>>> find(std::string org_id, std::string user_id) override;

private:
    pg_pool& pool_;
};

/// The self-hosted billing source: plan executions remaining per org in `preflight_balances`. Semantics equal
/// `memory_balance_source`: allowed while remaining > 0 (reason "no plan executions left" otherwise); an unknown
/// org is `errc::not_found`.
class pg_balance_source final : public balance_source {
public:
    explicit pg_balance_source(pg_pool& pool) noexcept : pool_(pool) {}

    boost::asio::awaitable<result<balance_outcome>> check(std::string org_id) override;

private:
    pg_pool& pool_;
};

/// The read-only facts of one request in ONE statement (one round trip): the lookups of `pg_ban_store`,
/// `pg_subscription_store`, `pg_usage_store` and `pg_member_store` with exactly their semantics, as lateral
/// subqueries of a single prepared statement. `make_pg_store_set` sets it as `store_set::subject_facts`.
///
/// With `gather` set, the reads of concurrent requests are gathered (`pg_gather_options`): a request's read leaves
/// at once while fewer than `max_in_flight` calls are in flight; otherwise it joins the next call, sent when one
/// finishes, and that call reads every request in it with one call of `preflight_subject_facts_many`
/// (sql/006_subject_facts_many.sql: the same subqueries per request). A shared call that fails with `bad_input` or
/// `store_unavailable` is retried one read at a time, so a bad read (a period that is not a date) fails by itself.
class pg_subject_facts_source final : public subject_facts_source {
public:
    explicit pg_subject_facts_source(pg_pool& pool, std::optional<pg_gather_options> gather = std::nullopt);
    ~pg_subject_facts_source() override;
    pg_subject_facts_source(const pg_subject_facts_source&) = delete;
    pg_subject_facts_source& operator=(const pg_subject_facts_source&) = delete;

    /// A key longer than `max_key_bytes` or containing NUL is `bad_input` before any statement; a usage period
    /// that is not a date is `bad_input` from the server. A query with nothing to look up sends no statement.
    boost::asio::awaitable<result<subject_facts>> load(subject_facts_query q) override;

    /// True when the four are the Postgres fact stores on this source's pool.
    [[nodiscard]] bool answers_for(
        const ban_store& bans,
        const subscription_store& subscriptions,
        const usage_store& usage,
        const member_store& members
    ) const noexcept override;

    /// The gathering's counters (zeros without `gather`).
    [[nodiscard]] pg_gather_stats gather_stats() const;

private:
    pg_pool& pool_;
    std::unique_ptr<detail::gatherer> gather_;
};

/// Writes facts (for seeding tests and demos, and for admin tools). Each call is one statement; `put_*` replace
/// what was stored under the same key, like the in-memory stores' `put`. Errors as the stores above; a count above
/// INT64_MAX or a period that is not a date is `bad_input` from the server. Cancellation as `pg_pool::exec`: a
/// cancelled write may still take effect. Lifetime and thread safety as the stores.
class pg_fact_writer {
public:
    explicit pg_fact_writer(pg_pool& pool) noexcept : pool_(pool) {}

    /// Replaces every ban of `b.subject_id` with `b`.
    boost::asio::awaitable<result<void>> put_ban(ban b);
    /// Lifts every ban of `subject_id`; true when there was one.
    boost::asio::awaitable<result<bool>> remove_bans(std::string subject_id);
    /// Replaces the subscription of `s.owner_id`.
    boost::asio::awaitable<result<void>> put_subscription(subscription s);
    /// Sets a subject's usage in the period starting `period_start` ("YYYY-MM-DD").
    boost::asio::awaitable<result<void>> put_usage(std::string subject_id, std::string period_start, usage u);
    /// Adds to a subject's usage in a period (creating it at zero); atomic against concurrent adds.
    boost::asio::awaitable<result<void>> add_usage(
        std::string subject_id, std::string period_start, std::uint64_t requests, std::uint64_t tokens
    );
    /// Replaces the membership of `m.user_id` in `m.org_id`.
    boost::asio::awaitable<result<void>> put_member(member m);
    /// Sets the plan executions left for `org_id`.
    boost::asio::awaitable<result<void>> put_balance(std::string org_id, std::int64_t remaining);

private:
    pg_pool& pool_;
};

/// Loads a fact data document (the format of `load_fact_data` in memory_fact_stores.hpp) into the Postgres fact
/// tables, so a demo can load one JSON file into either kind of store. The document is validated completely
/// first: a malformed one throws `fact_data_error` (same messages as `load_fact_data`) and writes nothing. Then
/// one statement per entry, awaited in document order (not one transaction): on the first failed write the error is
/// returned and later entries are not written. Entries replace what is stored under the same key.
/// Cancellation as `pg_pool::exec`. Lifetime: `pool` must outlive the call.
boost::asio::awaitable<result<void>> pg_load_fact_data(pg_pool& pool, boost::json::value doc);

}  // namespace preflight::clients
