#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::clients {

/// An active ban of a subject (user id, org id, ip, api key id).
struct ban {
    std::string subject_id;
    std::string reason;
    /// When the ban ends; nullopt = permanent.
    std::optional<std::chrono::system_clock::time_point> until;
};

/// Where bans live. Implementations: `memory_ban_store`, and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class ban_store {
public:
    virtual ~ban_store() = default;

    /// The first active ban among `subject_ids` (checked in the given order), or nullopt. A ban whose
    /// `until` has passed is not active. One lookup (one statement in Postgres) for all subjects.
    virtual boost::asio::awaitable<result<std::optional<ban>>> find_active(std::vector<std::string> subject_ids) = 0;

    /// `find_active` answered at once, when the store can without waiting (the in-memory one does); nullopt: ask
    /// `find_active`. The default pipeline's fast path (no coroutine per lookup). A wrapper that forwards this keeps
    /// the capability; the default offers none.
    [[nodiscard]] virtual std::optional<result<std::optional<ban>>> try_find_active(
        std::span<const std::string_view> subject_ids
    ) {
        (void)subject_ids;
        return std::nullopt;
    }
};

}  // namespace preflight::clients
