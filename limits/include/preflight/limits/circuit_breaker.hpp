#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/limits/trip_kind.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::limits {

/// When a plugin's circuit breaker opens: `trips` trips within `window` open it for `cool_down`. Defaults: 5 trips
/// in 60 s, 30 s cool-down (config `invocation.breaker.*`).
struct circuit_breaker_config {
    std::uint32_t trips = 5;
    std::chrono::milliseconds window{std::chrono::seconds{60}};
    std::chrono::milliseconds cool_down{std::chrono::seconds{30}};
};

/// What one breaker has seen. `trips[k]` counts the trips of kind `k` (indexed by `static_cast<std::size_t>(k)`),
/// refusals while open included (kind `circuit_open`); `opens` how often it opened.
struct circuit_breaker_stats {
    std::array<std::uint64_t, trip_kind_count> trips{};
    std::uint64_t opens = 0;
    bool open = false;

    [[nodiscard]] std::uint64_t trips_of(trip_kind k) const noexcept { return trips[static_cast<std::size_t>(k)]; }
};

/// Why an invocation is refused: the breaker stays open for `retry_after` more (rounded up to whole ms).
struct circuit_refusal {
    std::chrono::milliseconds retry_after{0};
};

/// The circuit breaker of one plugin. Closed, it counts the trips of the plugin's invocations (`record_trip`);
/// when `trips` of them fall within `window`, it opens for `cool_down`, during which every new invocation is refused
/// at once (`try_admit`; `run_filter`/`run_action` record it as a trip of kind `circuit_open`). After the cool-down
/// it is closed again with no trips remembered. Trips reported while it is open are counted in the stats but do not
/// extend the cool-down.
/// Thread safety: every member may be called concurrently. Lifetime: `clk` must outlive the breaker.
class circuit_breaker {
public:
    /// Throws `std::invalid_argument` for `trips` 0 or a window or cool-down <= 0.
    explicit circuit_breaker(circuit_breaker_config cfg = {}, const clock& clk = clock::steady());
    circuit_breaker(const circuit_breaker&) = delete;
    circuit_breaker& operator=(const circuit_breaker&) = delete;

    /// nullopt when a new invocation may start now; otherwise the refusal (which is counted as a `circuit_open`
    /// trip in the stats).
    [[nodiscard]] std::optional<circuit_refusal> try_admit();

    /// Reports a trip of one of the plugin's invocations; may open the breaker. `circuit_open` is only counted.
    void record_trip(trip_kind k);

    [[nodiscard]] bool is_open() const;
    [[nodiscard]] circuit_breaker_stats stats() const;
    [[nodiscard]] const circuit_breaker_config& config() const noexcept { return cfg_; }

private:
    bool open_locked(clock::time_point now) const;

    circuit_breaker_config cfg_;
    const clock& clock_;
    mutable std::mutex mu_;
    std::deque<clock::time_point> recent_;  // trips within the window while closed, oldest first
    std::optional<clock::time_point> open_until_;
    circuit_breaker_stats stats_;
};

/// The circuit breakers of a plugin host, one per plugin name, made on first use with one configuration; and their
/// metrics. Thread safety: every member may be called concurrently. Lifetime: a reference from `for_plugin` stays
/// valid as long as the registry; `clk` must outlive the registry.
class plugin_breakers {
public:
    /// Throws like `circuit_breaker` for a bad configuration.
    explicit plugin_breakers(circuit_breaker_config cfg = {}, const clock& clk = clock::steady());

    [[nodiscard]] circuit_breaker& for_plugin(std::string_view plugin);

    /// The stats of every breaker made so far, sorted by plugin name.
    [[nodiscard]] std::vector<std::pair<std::string, circuit_breaker_stats>> stats() const;

    /// Prometheus text (exposition format 0.0.4), samples sorted by plugin then kind:
    /// `preflight_invocation_trips_total{plugin="…",kind="fuel"}` (counter, every kind of every plugin),
    /// `preflight_invocation_circuit_opens_total{plugin="…"}` (counter),
    /// `preflight_invocation_circuit_open{plugin="…"}` (gauge, 1 while open). Label values are escaped (`\\`, `\"`,
    /// `\n`).
    [[nodiscard]] std::string prometheus_text() const;

private:
    circuit_breaker_config cfg_;
    const clock& clock_;
    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<circuit_breaker>, std::less<>> breakers_;
};

}  // namespace preflight::limits
