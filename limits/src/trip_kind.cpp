#include <preflight/limits/trip_kind.hpp>

namespace preflight::limits {

std::string_view to_string(trip_kind k) noexcept {
    switch (k) {
        case trip_kind::wall_clock: return "wall_clock";
        case trip_kind::memory: return "memory";
        case trip_kind::fuel: return "fuel";
        case trip_kind::http_fetches: return "http_fetches";
        case trip_kind::db_queries: return "db_queries";
        case trip_kind::kv_bytes_written: return "kv_bytes_written";
        case trip_kind::host_concurrency: return "host_concurrency";
        case trip_kind::circuit_open: return "circuit_open";
        case trip_kind::custom: return "custom";
    }
    return "custom";
}

std::string_view limit_name(trip_kind k) noexcept {
    switch (k) {
        case trip_kind::memory: return counter_names::memory_bytes;
        case trip_kind::custom: return {};
        default: return to_string(k);
    }
}

trip_kind trip_kind_of(std::string_view limit) noexcept {
    for (std::size_t i = 0; i + 1 < trip_kind_count; ++i) {
        const auto k = static_cast<trip_kind>(i);
        if (limit == limit_name(k)) return k;
    }
    return trip_kind::custom;
}

}  // namespace preflight::limits
