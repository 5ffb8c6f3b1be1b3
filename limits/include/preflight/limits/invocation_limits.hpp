#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>
#include <preflight/limits/circuit_breaker.hpp>
#include <preflight/limits/trip_kind.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
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

/// Limits of one guarded invocation (a hook run by the plugin host). Defaults: wall clock 250 ms, http_fetches 8,
/// db_queries 32, kv_bytes_written 1 MiB, memory_bytes 64 MiB, fuel 50,000,000, one host call in flight.
/// A host usually takes these from a named profile (`invocation_profiles`, config `invocation.*`).
struct invocation_limits_config {
    std::chrono::milliseconds wall_clock{250};
    std::vector<counter_limit> counters{
        {std::string(counter_names::http_fetches), 8},
        {std::string(counter_names::db_queries), 32},
        {std::string(counter_names::kv_bytes_written), 1024 * 1024},
        {std::string(counter_names::memory_bytes), 64 * 1024 * 1024},
        {std::string(counter_names::fuel), 50'000'000},
    };
    std::uint32_t host_concurrency = 1;
};

/// What the host gets when a limit trips: `filter` hooks pass their input through unchanged; `action` hooks are
/// logged (through `on_trip`) and reported as success.
enum class hook_policy { filter, action };

/// Who is being limited; copied into the trip record.
struct invocation_context {
    std::string subject;     ///< e.g. the plugin (the key of its circuit breaker) or the org
    std::string hook;        ///< e.g. "before_run"
    std::string request_id;  ///< for correlation in logs
    hook_policy policy = hook_policy::action;
    std::string profile = "default";  ///< the limits profile the limits came from (for the trip record)
};

/// The first limit that tripped. `kind` says which; `limit` is its name ("wall_clock", a counter name such as
/// "fuel" or "memory_bytes", "circuit_open"). `used` is what was attempted (ms elapsed for the wall clock), `max`
/// the limit; for `circuit_open` both are the breaker's trip threshold and `retry_after` is the rest of its
/// cool-down (0 for every other kind).
struct trip_record {
    trip_kind kind = trip_kind::custom;
    std::string limit;
    std::uint64_t used = 0;
    std::uint64_t max = 0;
    std::string subject;
    std::string hook;
    std::string request_id;
    std::string profile;
    std::chrono::milliseconds retry_after{0};
};

/// Serialises a trip record as a JSON object (for logs and traces):
/// `{"kind","limit","used","max","subject","hook","request_id","profile"}`, plus `"retry_after_ms"` for
/// `circuit_open`.
[[nodiscard]] boost::json::value to_json(const trip_record& t);

class invocation_guard;

/// RAII: one host call in flight; leaving the scope ends it (and lets the next queued host call in). Move-only;
/// must not outlive its guard.
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

/// The limits of one invocation: wall clock, counters, host-call concurrency and the trip. Host functions call
/// `charge`/`set_used` and `co_await enter_host_call()`; the first limit to trip wins (exactly one trip is recorded,
/// also under concurrent charges), every later charge fails, and the invocation run by `run_filter`/`run_action` is
/// cancelled. The wall clock starts when the guard is made and is read from the injected clock.
/// With a circuit breaker (one per plugin, see `plugin_breakers`), every trip is reported to it, and
/// `run_filter`/`run_action` refuse to start while it is open.
/// Thread safety: every member may be called concurrently. Lifetime: must outlive the guarded coroutine and every
/// `enter_host_call`; `breaker` and `clk` must outlive the guard.
class invocation_guard {
public:
    /// Throws `std::invalid_argument` for a wall clock <= 0, host_concurrency 0 or a duplicate counter name.
    invocation_guard(
        invocation_limits_config limits,
        invocation_context ctx,
        circuit_breaker* breaker = nullptr,
        const clock& clk = clock::steady()
    );
    invocation_guard(const invocation_guard&) = delete;
    invocation_guard& operator=(const invocation_guard&) = delete;
    /// Host calls still queued complete with `operation_aborted` (a misuse: the guard must outlive them).
    ~invocation_guard();

    /// Charges `amount` to counter `name`. When `used + amount > max`, nothing is charged, the limit trips (if
    /// nothing tripped before) and `errc::budget_exhausted` is returned; also after any trip, and when the wall
    /// clock has run out (which trips `wall_clock`). Throws `std::invalid_argument` naming the counter when it is
    /// not configured (a host bug).
    [[nodiscard]] result<void> charge(std::string_view name, std::uint64_t amount = 1);

    /// Sets counter `name` to `value`: for a gauge such as `memory_bytes`, which the host reads from the plugin's
    /// runtime after each call. `value > max` stores nothing and trips; otherwise like `charge`.
    [[nodiscard]] result<void> set_used(std::string_view name, std::uint64_t value);

    /// Trips `wall_clock` when the invocation has run for its wall clock or longer (by the injected clock); returns
    /// `errc::budget_exhausted` then and after any trip. For safe points of the plugin runtime (e.g. an epoch tick);
    /// `charge`, `set_used`, `enter_host_call` and the timer of `run_filter`/`run_action` check it too.
    [[nodiscard]] result<void> check_wall_clock();

    /// Starts a host call: at most `host_concurrency` are in flight; a further one waits, first come first served,
    /// until one ends. Returns `errc::budget_exhausted` (without waiting, or by waking the waiter) once a limit
    /// trips — the wall clock included: inside `run_filter`/`run_action` the run's timer trips it while calls wait.
    /// Cancellation: terminal, partial and total; a cancelled wait leaves the queue (nothing else changes) and
    /// throws `boost::system::system_error` with `operation_aborted`. Resumes on the caller's executor.
    [[nodiscard]] boost::asio::awaitable<result<host_call_scope>> enter_host_call();

    /// Records a trip of `limit` (its kind from `trip_kind_of`) unless one is recorded already; returns true when
    /// this call recorded it. Then wakes queued host calls, reports the trip to the breaker (a `circuit_open` trip
    /// was counted by the breaker already), calls `on_trip` and cancels the guarded run.
    bool trip(std::string_view limit, std::uint64_t used, std::uint64_t max);
    /// The same with a kind and its `limit_name`.
    bool trip(trip_kind kind, std::uint64_t used, std::uint64_t max);

    [[nodiscard]] bool tripped() const;
    [[nodiscard]] std::optional<trip_record> trip_info() const;
    /// Current count of counter `name` (0 for an unknown name).
    [[nodiscard]] std::uint64_t used(std::string_view name) const;
    /// Time since the guard was made, by the injected clock.
    [[nodiscard]] clock::duration elapsed() const noexcept;
    /// Host calls in flight and host calls waiting (a snapshot).
    [[nodiscard]] std::uint32_t host_calls_in_flight() const;
    [[nodiscard]] std::size_t host_calls_waiting() const;

    [[nodiscard]] const invocation_limits_config& limits() const noexcept { return limits_; }
    [[nodiscard]] const invocation_context& context() const noexcept { return ctx_; }
    [[nodiscard]] circuit_breaker* breaker() const noexcept { return breaker_; }
    [[nodiscard]] const clock& time_source() const noexcept { return clock_; }

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
    struct waiter {
        std::uint64_t id;
        boost::asio::any_io_executor executor;
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler;
    };
    counter_state& counter_locked(std::string_view name);
    bool record_trip(
        trip_kind kind,
        std::string_view limit,
        std::uint64_t used,
        std::uint64_t max,
        std::chrono::milliseconds retry_after
    );
    bool trip_wall_clock(clock::duration elapsed);
    void end_host_call();
    static void complete(waiter w, boost::system::error_code ec);

    invocation_limits_config limits_;
    invocation_context ctx_;
    circuit_breaker* breaker_;
    const clock& clock_;
    clock::time_point started_;
    mutable std::mutex mu_;
    std::vector<counter_state> counters_;
    std::uint32_t in_flight_ = 0;
    std::deque<waiter> waiters_;
    std::uint64_t next_waiter_ = 0;
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

/// Runs a filter hook under `guard`: `body(input)` runs until it returns, or until the wall clock or another limit
/// trips, which cancels it (Asio per-operation cancellation, terminal) at its next suspension point and yields the
/// input unchanged. While the guard's circuit breaker is open the body does not run: the trip is `circuit_open`.
/// The wall clock is watched by a `steady_timer` that re-reads the injected clock whenever it fires (so under a
/// `manual_clock` the wall clock runs out only when the test moves that clock).
/// An exception from the body propagates unless a limit tripped. Cancellation of the caller is forwarded to the
/// body. `guard` must outlive the returned awaitable.
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
