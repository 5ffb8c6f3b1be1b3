#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

namespace preflight::clients {

/// Usage of a subject (an org) in one billing period.
struct usage {
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
};

/// Where usage counters live. Implementations: `memory_usage_store`, and the Postgres store.
/// Thread safety: every member may be called concurrently from any thread.
class usage_store {
public:
    virtual ~usage_store() = default;

    /// Usage of `subject_id` in the period starting `period_start` ("YYYY-MM-DD"); zero when unknown.
    virtual boost::asio::awaitable<result<usage>> get(std::string subject_id, std::string period_start) = 0;

    /// Adds `delta` to the usage of `subject_id` in the period starting `period_start`, once per `record_id` (e.g. a
    /// lease id): true when added, false when that id was recorded before (nothing added again). Errors: bad_input
    /// for keys the store cannot hold; store failures (nothing added).
    virtual boost::asio::awaitable<result<bool>> record(
        std::string record_id, std::string subject_id, std::string period_start, usage delta
    ) = 0;
};

}  // namespace preflight::clients
