#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace preflight::clients {

/// What a billing provider says about an org's remaining plan executions.
struct balance_outcome {
    bool allowed = true;
    std::optional<std::int64_t> remaining;  ///< executions left, when the provider says
    std::string reason;                     ///< provider's reason when blocked
};

/// An external billing provider (HTTP) or the self-hosted balance table (Postgres), or in memory.
/// Errors: `errc::not_found` for an unknown customer, `errc::store_unavailable`/`timeout`/`protocol_error`
/// for failures; the balance gate fails open on all of them.
/// Thread safety: every member may be called concurrently from any thread.
class balance_source {
public:
    virtual ~balance_source() = default;

    virtual boost::asio::awaitable<result<balance_outcome>> check(std::string org_id) = 0;
};

}  // namespace preflight::clients
