#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::limits {

/// A named counter limit of one invocation.
struct counter_limit {
    std::string name;
    std::uint64_t max = 0;
};

/// Limits of one guarded invocation (a hook run by the host). Defaults: deadline 5 s, http_fetches 8,
/// db_queries 32, kv_bytes_written 1 MiB, one host call in flight.
struct invocation_limits_config {
    std::chrono::milliseconds deadline{5000};
    std::vector<counter_limit> counters{
        {"http_fetches", 8},
        {"db_queries", 32},
        {"kv_bytes_written", 1024 * 1024},
    };
    std::uint32_t host_concurrency = 1;
};

/// What the host gets when a limit trips: `filter` hooks pass their input through unchanged; `action` hooks are
/// logged (through `on_trip`) and reported as success.
enum class hook_policy { filter, action };

/// Who is being limited; copied into the trip record.
struct invocation_context {
    std::string subject;     ///< e.g. the org or plugin
    std::string hook;        ///< e.g. "before_run"
    std::string request_id;  ///< for correlation in logs
    hook_policy policy = hook_policy::action;
};

/// The first limit that tripped. `limit` is "deadline", "host_concurrency" or a counter name; `used` is what was
/// attempted (ms elapsed for the deadline), `max` the limit.
struct trip_record {
    std::string limit;
    std::uint64_t used = 0;
    std::uint64_t max = 0;
    std::string subject;
    std::string hook;
    std::string request_id;
};

/// Serialises a trip record as a JSON object (for logs and traces).
[[nodiscard]] boost::json::value to_json(const trip_record& t);

class invocation_guard;

/// RAII: one host call in flight; leaving the scope ends it. Move-only; must not outlive its guard.
class host_call_scope {
public:
    host_call_scope(host_call_scope&& o) noexcept : guard_{std::exchange(o.guard_, nullptr)} {}
    host_call_scope(const host_call_scope&) = delete;
    host_call_scope& operator=(const host_call_scope&) = delete;
    host_call_scope& operator=(host_call_scope&&) = delete;
    ~host_call_scope();

private:
    friend class invocation_guard;
    explicit host_call_scope(invocation_guard* g) noexcept : guard_{g} {}
    invocation_guard* guard_;
};

/// The limits of one invocation: counters, host-call concurrency and the trip. Host functions call `charge` and
/// `enter_host_call`; the first limit to trip wins (exactly one trip is recorded, also under concurrent charges),
/// every later charge fails, and the invocation run by `run_filter`/`run_action` is cancelled.
/// Thread safety: every member may be called concurrently. Lifetime: must outlive the guarded coroutine.
class invocation_guard {
public:
    /// Throws `std::invalid_argument` for a deadline <= 0, host_concurrency 0 or a duplicate counter name.
    invocation_guard(invocation_limits_config limits, invocation_context ctx);
    invocation_guard(const invocation_guard&) = delete;
    invocation_guard& operator=(const invocation_guard&) = delete;

    /// Charges `amount` to counter `name`. When `used + amount > max`, nothing is charged, the limit trips (if
    /// nothing tripped before) and `errc::budget_exhausted` is returned; also after any trip.
    /// Throws `std::invalid_argument` naming the counter when it is not configured (a host bug).
    [[nodiscard]] result<void> charge(std::string_view name, std::uint64_t amount = 1);

    /// Starts a host call. Trips "host_concurrency" when `host_concurrency` calls are already in flight.
    [[nodiscard]] result<host_call_scope> enter_host_call();

    /// Records a trip of `limit` unless one is recorded already; returns true when this call recorded it.
    bool trip(std::string_view limit, std::uint64_t used, std::uint64_t max);

    [[nodiscard]] bool tripped() const;
    [[nodiscard]] std::optional<trip_record> trip_info() const;
    /// Current count of counter `name` (0 for an unknown name).
    [[nodiscard]] std::uint64_t used(std::string_view name) const;

    [[nodiscard]] const invocation_limits_config& limits() const noexcept { return limits_; }
    [[nodiscard]] const invocation_context& context() const noexcept { return ctx_; }

    /// Called once with the trip record when a limit trips (e.g. to log an action hook's neutral result).
    std::function<void(const trip_record&)> on_trip;

private:
    friend class host_call_scope;
    friend struct guard_access;
    struct counter_state {
        std::string name;
        std::uint64_t max;
        std::uint64_t used;
    };

    invocation_limits_config limits_;
    invocation_context ctx_;
    mutable std::mutex mu_;
    std::vector<counter_state> counters_;
    std::uint32_t in_flight_ = 0;
    std::optional<trip_record> trip_;
    std::function<void()> cancel_;  // set while a guarded run is active
};

/// The result of a filter hook: its output, or its input unchanged when a limit tripped (`neutral`).
struct filter_outcome {
    boost::json::value value;
    bool neutral = false;
    std::optional<trip_record> trip;
};

/// The result of an action hook: always reported as success; `neutral` when a limit tripped.
struct action_outcome {
    bool success = true;
    bool neutral = false;
    std::optional<trip_record> trip;
};

/// Runs a filter hook under `guard`: `body(input)` runs until it returns, or until the deadline or another limit
/// trips, which cancels it (Asio per-operation cancellation, terminal) at its next suspension point and yields
/// the input unchanged. An exception from the body propagates unless a limit tripped.
/// Cancellation of the caller is forwarded to the body. `guard` must outlive the returned awaitable.
boost::asio::awaitable<filter_outcome> run_filter(
    invocation_guard& guard,
    boost::json::value input,
    std::function<boost::asio::awaitable<boost::json::value>(boost::json::value)> body
);

/// Runs an action hook under `guard` like `run_filter`; a tripped action is logged via `guard.on_trip` and reported
/// as success with `neutral` set.
boost::asio::awaitable<action_outcome> run_action(
    invocation_guard& guard, std::function<boost::asio::awaitable<void>()> body
);

}  // namespace preflight::limits
