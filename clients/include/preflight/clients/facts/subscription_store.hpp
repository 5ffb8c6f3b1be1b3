#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace preflight::clients {

/// Plan tiers in ascending priority. The rate limits and usage allowances of each tier come from
/// configuration.
enum class plan_tier { free = 0, pro = 1, team = 2, enterprise = 3 };

[[nodiscard]] std::string_view to_string(plan_tier t) noexcept;
/// Parses "free", "pro", "team", "enterprise"; nullopt otherwise.
[[nodiscard]] std::optional<plan_tier> parse_plan_tier(std::string_view s) noexcept;

/// A subscription owned by an org, or by a user (personal subscription).
struct subscription {
    std::string owner_id;  ///< org id, or user id for a personal subscription
    plan_tier plan = plan_tier::free;
    std::string status = "active";  ///< only "active" and "trialing" subscriptions count
    int seats = 1;
    std::optional<std::chrono::system_clock::time_point> current_period_end;

    [[nodiscard]] bool counts() const noexcept { return status == "active" || status == "trialing"; }
};

/// Where subscriptions live. Implementations: `memory_subscription_store`, and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class subscription_store {
public:
    virtual ~subscription_store() = default;

    /// The highest-priority counting subscription among the user's personal one and the org's
    /// (either id may be empty). nullopt when neither has one: the caller treats that as the free tier.
    virtual boost::asio::awaitable<result<std::optional<subscription>>> find_highest_priority(
        std::string user_id, std::string org_id
    ) = 0;

    /// `find_highest_priority` answered at once, when the store can without waiting (the in-memory one does);
    /// nullopt: ask `find_highest_priority`. See `ban_store::try_find_active`.
    [[nodiscard]] virtual std::optional<result<std::optional<subscription>>> try_find_highest_priority(
        std::string_view user_id, std::string_view org_id
    ) {
        (void)user_id;
        (void)org_id;
        return std::nullopt;
    }
};

}  // namespace preflight::clients
