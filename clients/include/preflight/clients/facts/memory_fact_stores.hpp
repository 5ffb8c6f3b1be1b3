#pragma once

#include <preflight/clients/facts/balance_source.hpp>
#include <preflight/clients/facts/ban_store.hpp>
#include <preflight/clients/facts/member_store.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/facts/usage_store.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace preflight::clients {

namespace detail {
/// A string hash that also takes `std::string_view` (lookups without copying the key).
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

/// Wall-clock source for ban expiry (injectable in tests).
using wall_clock_fn = std::function<std::chrono::system_clock::time_point()>;

/// In-memory bans (the embedded default). Thread-safe: reads share a lock, writes take it exclusively.
class memory_ban_store final : public ban_store {
public:
    explicit memory_ban_store(wall_clock_fn now = {});

    boost::asio::awaitable<result<std::optional<ban>>> find_active(std::vector<std::string> subject_ids) override;
    /// Always answers (under a shared lock).
    std::optional<result<std::optional<ban>>> try_find_active(std::span<const std::string_view> subject_ids) override;

    void put(ban b);
    bool remove(const std::string& subject_id);

private:
    wall_clock_fn now_;
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, ban, detail::string_hash, std::equal_to<>> bans_;
};

/// In-memory subscriptions keyed by owner (org id or user id). Thread-safe.
class memory_subscription_store final : public subscription_store {
public:
    boost::asio::awaitable<result<std::optional<subscription>>> find_highest_priority(
        std::string user_id, std::string org_id
    ) override;
    /// Always answers (under a shared lock).
    std::optional<result<std::optional<subscription>>> try_find_highest_priority(
        std::string_view user_id, std::string_view org_id
    ) override;

    void put(subscription s);

private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, subscription, detail::string_hash, std::equal_to<>> by_owner_;
};

/// In-memory usage per (subject, period start). Thread-safe.
namespace detail {
/// Hash and equality of a two-string key, also for a pair of `std::string_view`s (lookups without copying the strings).
struct string_pair_hash {
    using is_transparent = void;
    std::size_t operator()(std::pair<std::string_view, std::string_view> k) const noexcept {
        const std::size_t a = std::hash<std::string_view>{}(k.first);
        return a ^ (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
    }
    std::size_t operator()(const std::pair<std::string, std::string>& k) const noexcept {
        return (*this)(std::pair<std::string_view, std::string_view>{k.first, k.second});
    }
};
struct string_pair_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
        return std::string_view(a.first) == std::string_view(b.first) &&
               std::string_view(a.second) == std::string_view(b.second);
    }
};
template <class V>
using string_pair_map = std::unordered_map<std::pair<std::string, std::string>, V, string_pair_hash, string_pair_equal>;
}  // namespace detail

class memory_usage_store final : public usage_store {
public:
    boost::asio::awaitable<result<usage>> get(std::string subject_id, std::string period_start) override;
    /// See `usage_store::record`. Remembers at least the last `max_records` / 2 record ids and at most `max_records`
    /// (two generations: older ones could be recorded again; the bound wins, as memory must stay bounded, and a
    /// lease is released long before 50000 others).
    boost::asio::awaitable<result<bool>> record(
        std::string record_id, std::string subject_id, std::string period_start, usage delta
    ) override;
    static constexpr std::size_t max_records = 100'000;

    /// Synchronous form of `get` (the default pipeline's fast path for its eager usage fact).
    [[nodiscard]] usage get_now(const std::string& subject_id, const std::string& period_start) const;

    void put(const std::string& subject_id, const std::string& period_start, usage u);
    /// Adds to a subject's usage (creating it at zero).
    void add(
        const std::string& subject_id, const std::string& period_start, std::uint64_t requests, std::uint64_t tokens
    );

private:
    mutable std::shared_mutex mutex_;
    detail::string_pair_map<usage> usage_;
    std::mutex records_mutex_;                  // the record ids only (readers of usage_ never wait on it)
    std::unordered_set<std::string> recorded_;  // the current generation
    std::unordered_set<std::string> previous_;  // the one before; dropped when the current one is full
};

/// In-memory org memberships. Thread-safe.
class memory_member_store final : public member_store {
public:
    boost::asio::awaitable<result<std::optional<member>>> find(std::string org_id, std::string user_id) override;
    /// Always answers (under a shared lock).
    std::optional<result<std::optional<member>>> try_find(std::string_view org_id, std::string_view user_id) override;

    void put(member m);

private:
    mutable std::shared_mutex mutex_;
    detail::string_pair_map<member> members_;
};

/// In-memory balances (plan executions left per org). An unknown org is `errc::not_found`.
/// Thread-safe.
class memory_balance_source final : public balance_source {
public:
    boost::asio::awaitable<result<balance_outcome>> check(std::string org_id) override;

    /// Sets the executions left for `org_id`; allowed while > 0.
    void put(const std::string& org_id, std::int64_t remaining);

private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, std::int64_t> remaining_;
};

/// The in-memory fact stores together, as loaded from a data file.
struct memory_fact_stores {
    std::shared_ptr<memory_ban_store> bans = std::make_shared<memory_ban_store>();
    std::shared_ptr<memory_subscription_store> subscriptions = std::make_shared<memory_subscription_store>();
    std::shared_ptr<memory_usage_store> usage = std::make_shared<memory_usage_store>();
    std::shared_ptr<memory_member_store> members = std::make_shared<memory_member_store>();
    std::shared_ptr<memory_balance_source> balances = std::make_shared<memory_balance_source>();
};

/// Thrown for a malformed fact data document; `what()` names the JSON path and the bad value.
class fact_data_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Loads a fact data document into `stores`:
/// ```
/// {"bans": [{"subject_id": "user_9", "reason": "abuse", "until_unix_s": 1900000000}],
///  "subscriptions": [{"owner_id": "org_1", "plan": "pro", "status": "active", "seats": 5}],
///  "usage": [{"subject_id": "org_1", "period_start": "2026-11-01", "requests": 10, "tokens": 0}],
///  "members": [{"org_id": "org_1", "user_id": "user_1", "role": "admin", "usage_cap": 100, "used": 3}],
///  "balances": [{"org_id": "org_1", "remaining": 500}]}
/// ```
/// Every section is optional. Throws `fact_data_error` for unknown keys, wrong types and bad values.
void load_fact_data(const boost::json::value& doc, memory_fact_stores& stores);

}  // namespace preflight::clients
