#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace preflight::clients {

/// A purge of a store set: removes what no longer matters and returns how many rows (`store_set::purge`).
using purge_fn = std::function<boost::asio::awaitable<result<std::uint64_t>>()>;

/// Counters of a `periodic_purge` (monotonic).
struct purge_stats {
    std::uint64_t runs = 0;      ///< purges completed (successful or not)
    std::uint64_t removed = 0;   ///< rows removed in all
    std::uint64_t failures = 0;  ///< purges that returned an error (or threw)
};

/// Runs `purge` every `interval` on `ex` (the first run one interval after construction), one run at a time, until
/// destroyed. Keeps the Postgres limit tables bounded: idle windows and buckets and expired leases of keys no longer
/// used stay there until purged (docs/postgres.md). A failed run is reported to `on_error` (may be empty) and
/// counted; the next run comes one interval later. Throws `std::invalid_argument` for an empty `purge` or an
/// interval below 1 ms. Lifetime: the io_context of `ex` must outlive the object (destroying it cancels the wait; a
/// run in flight finishes on its own and is not counted). Thread safety: `stats` may be called from any thread.
class periodic_purge {
public:
    periodic_purge(
        boost::asio::any_io_executor ex,
        purge_fn purge,
        std::chrono::milliseconds interval,
        std::function<void(boost::system::error_code)> on_error = {}
    );
    ~periodic_purge();
    periodic_purge(const periodic_purge&) = delete;
    periodic_purge& operator=(const periodic_purge&) = delete;

    [[nodiscard]] purge_stats stats() const noexcept;

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace preflight::clients
