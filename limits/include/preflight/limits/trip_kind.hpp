#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace preflight::limits {

/// Which limit of an invocation tripped. Every built-in limit has its own kind; a counter the host configured
/// under another name trips as `custom` (the trip record's `limit` names it).
enum class trip_kind : std::uint8_t {
    wall_clock,        ///< the invocation ran longer than its wall clock (`invocation_limits_config::wall_clock`)
    memory,            ///< counter `memory_bytes`
    fuel,              ///< counter `fuel`
    http_fetches,      ///< counter `http_fetches`
    db_queries,        ///< counter `db_queries`
    kv_bytes_written,  ///< counter `kv_bytes_written`
    host_concurrency,  ///< reserved for hosts: the guard queues host calls instead of tripping this
    circuit_open,      ///< the plugin's circuit breaker is open: the invocation was refused before it started
    custom,            ///< a counter with a name of the host's own
};

/// The number of `trip_kind` values (for arrays indexed by kind).
inline constexpr std::size_t trip_kind_count = static_cast<std::size_t>(trip_kind::custom) + 1;

/// The enumerator's spelling: "wall_clock", "memory", "fuel", …, "circuit_open", "custom".
[[nodiscard]] std::string_view to_string(trip_kind k) noexcept;

/// The names of the built-in counters (the `limit` of their trip records).
namespace counter_names {
inline constexpr std::string_view memory_bytes = "memory_bytes";
inline constexpr std::string_view fuel = "fuel";
inline constexpr std::string_view http_fetches = "http_fetches";
inline constexpr std::string_view db_queries = "db_queries";
inline constexpr std::string_view kv_bytes_written = "kv_bytes_written";
}  // namespace counter_names

/// The kind a limit of this name trips as: a built-in counter name gives its kind ("memory_bytes" → `memory`),
/// "wall_clock", "host_concurrency" and "circuit_open" theirs, any other name `custom`.
[[nodiscard]] trip_kind trip_kind_of(std::string_view limit) noexcept;

/// The `limit` name a trip of this kind records: the counter name for counter kinds ("memory_bytes" for
/// `memory`), the enumerator's spelling otherwise; empty for `custom` (a custom trip names its own counter).
[[nodiscard]] std::string_view limit_name(trip_kind k) noexcept;

}  // namespace preflight::limits
