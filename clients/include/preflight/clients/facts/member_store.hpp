#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preflight::clients {

/// A user's membership of an org, with an optional per-member usage cap for the current period.
struct member {
    std::string org_id;
    std::string user_id;
    std::string role = "member";
    std::optional<std::uint64_t> usage_cap;  ///< nullopt = uncapped
    std::uint64_t used = 0;                  ///< requests used this period (read only when capped)
};

/// Where org memberships live. Implementations: `memory_member_store`, and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class member_store {
public:
    virtual ~member_store() = default;

    /// The membership of `user_id` in `org_id`, or nullopt when the user is not a member.
    virtual boost::asio::awaitable<result<std::optional<member>>> find(std::string org_id, std::string user_id) = 0;

    /// `find` answered at once, when the store can without waiting (the in-memory one does); nullopt: ask `find`.
    /// See `ban_store::try_find_active`.
    [[nodiscard]] virtual std::optional<result<std::optional<member>>> try_find(
        std::string_view org_id, std::string_view user_id
    ) {
        (void)org_id;
        (void)user_id;
        return std::nullopt;
    }
};

}  // namespace preflight::clients
