#include <preflight/limits/limits_config.hpp>

#include <boost/json/object.hpp>

#include <optional>

namespace preflight::limits {

namespace {

// Upper bounds. fuzz/fuzz_config.cpp found the backstop period (converted to int64 nanoseconds by the fixed window)
// and host_concurrency (a uint32) overflowing or silently truncated; the wall clock and the breaker's durations are
// compared with nanosecond durations too, so they get the same kind of bound.
constexpr double max_ms_in_ns = 9'223'372'036'854.0;
constexpr double max_s_in_ns = 9'223'372'036.0;
constexpr double max_uint32 = 4'294'967'295.0;

constexpr std::string_view profile_prefix = "invocation.profiles.";

// The keys of one limits profile below `prefix` ("invocation." for the default profile).
void add_profile_keys(config_registry& r, const std::string& prefix, const std::string& of) {
    r.add(int_key(
        prefix + "wall_clock_ms",
        250,
        1,
        "wall clock of one guarded invocation in ms" + of + " (<= 9223372036854)",
        max_ms_in_ns
    ));
    r.add(int_key(prefix + "http_fetches", 8, 0, "http fetches per invocation" + of));
    r.add(int_key(prefix + "db_queries", 32, 0, "db queries per invocation" + of));
    r.add(int_key(prefix + "kv_bytes_written", 1024 * 1024, 0, "kv bytes written per invocation" + of));
    r.add(int_key(prefix + "memory_bytes", 64 * 1024 * 1024, 0, "memory the plugin may hold per invocation" + of));
    r.add(int_key(prefix + "fuel", 50'000'000, 0, "fuel (runtime instruction budget) per invocation" + of));
    r.add(int_key(
        prefix + "host_concurrency",
        1,
        1,
        "host calls in flight per invocation" + of + " (<= 4294967295; more wait)",
        max_uint32
    ));
}

// Reads one profile; `inherit` (the default profile) gives the value of every key still at its default.
invocation_limits_config profile_from(
    const config& cfg, const std::string& prefix, const invocation_limits_config* inherit
) {
    auto set = [&](const char* field) {
        return inherit == nullptr || cfg.source_of(prefix + field) != config_source::default_value;
    };
    auto count = [&](const char* field) { return static_cast<std::uint64_t>(cfg.get_int(prefix + field)); };
    invocation_limits_config l;
    if (inherit != nullptr) l = *inherit;
    if (set("wall_clock_ms")) l.wall_clock = std::chrono::milliseconds{cfg.get_int(prefix + "wall_clock_ms")};
    for (auto& c : l.counters) {
        if (set(c.name.c_str())) c.max = count(c.name.c_str());
    }
    if (set("host_concurrency"))
        l.host_concurrency = static_cast<std::uint32_t>(cfg.get_int(prefix + "host_concurrency"));
    return l;
}

bool valid_profile_key_name(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

}  // namespace

void register_config(config_registry& r) {
    r.add(number_key("rate_limit.read_rps", 1.0, 0, true, "read bucket refill, tokens per second (> 0)"));
    r.add(number_key("rate_limit.read_burst", 10.0, 1, false, "read bucket size (>= 1)"));
    r.add(number_key("rate_limit.write_rps", 1.0, 0, true, "write bucket refill, tokens per second (> 0)"));
    r.add(number_key("rate_limit.write_burst", 20.0, 1, false, "write bucket size (>= 1)"));
    r.add(bool_key("rate_limit.cancel_exempt", true, "cancel never touches the write bucket"));
    r.add(int_key("rate_limit.max_keys", 100'000, 1, "keys held by the in-memory token buckets"));
    r.add(int_key("backstop.max", 1000, 1, "fixed-window backstop: units per period per org"));
    r.add(int_key("backstop.period_s", 3600, 1, "fixed-window backstop period in seconds (<= 9223372036)", max_s_in_ns)
    );
    r.add(int_key("run_budget.max_mutating_calls", 20, 1, "mutating calls per run"));
    add_profile_keys(r, "invocation.", "");
    r.add(int_key(
        "invocation.breaker.trips",
        5,
        1,
        "trips of one plugin within the window that open its circuit breaker (<= 4294967295)",
        max_uint32
    ));
    r.add(
        int_key("invocation.breaker.window_s", 60, 1, "circuit breaker window in seconds (<= 9223372036)", max_s_in_ns)
    );
    r.add(int_key(
        "invocation.breaker.cool_down_s",
        30,
        1,
        "seconds an open circuit breaker refuses invocations (<= 9223372036)",
        max_s_in_ns
    ));
}

void register_invocation_profile(config_registry& r, std::string_view name) {
    const std::string n(name);
    if (!valid_profile_key_name(n))
        throw limits_profile_error(n, "", "", "has a malformed name (lower-case letters, digits and '_' only)");
    if (n == "default") throw limits_profile_error(n, "", "", "is the invocation.* keys, not invocation.profiles.*");
    const std::string prefix = std::string(profile_prefix) + n + ".";
    if (r.find(prefix + "wall_clock_ms") != nullptr) throw limits_profile_error(n, "", "", "is registered twice");
    add_profile_keys(r, prefix, " (profile " + n + ")");
}

limits_settings settings_from(const config& cfg) {
    limits_settings s;
    s.rate_limit.read = {cfg.get_number("rate_limit.read_rps"), cfg.get_number("rate_limit.read_burst")};
    s.rate_limit.write = {cfg.get_number("rate_limit.write_rps"), cfg.get_number("rate_limit.write_burst")};
    s.rate_limit.cancel_exempt = cfg.get_bool("rate_limit.cancel_exempt");
    s.rate_limit.max_keys = static_cast<std::size_t>(cfg.get_int("rate_limit.max_keys"));
    s.backstop.max = static_cast<std::uint64_t>(cfg.get_int("backstop.max"));
    s.backstop.period = std::chrono::seconds{cfg.get_int("backstop.period_s")};
    s.run_budget.max_mutating_calls = static_cast<std::uint64_t>(cfg.get_int("run_budget.max_mutating_calls"));
    s.invocation = profile_from(cfg, "invocation.", nullptr);
    s.profiles = invocation_profiles{s.invocation};
    // The registered profiles are the keys invocation.profiles.<name>.wall_clock_ms.
    const boost::json::value all = cfg.to_json();
    constexpr std::string_view suffix = ".wall_clock_ms";
    for (const auto& [key, v] : all.as_object()) {
        const std::string_view k = key;
        if (!k.starts_with(profile_prefix) || !k.ends_with(suffix)) continue;
        const std::string name(k.substr(profile_prefix.size(), k.size() - profile_prefix.size() - suffix.size()));
        if (name.find('.') != std::string::npos) continue;
        s.profiles.add(name, profile_from(cfg, std::string(profile_prefix) + name + ".", &s.invocation));
    }
    s.breaker.trips = static_cast<std::uint32_t>(cfg.get_int("invocation.breaker.trips"));
    s.breaker.window = std::chrono::seconds{cfg.get_int("invocation.breaker.window_s")};
    s.breaker.cool_down = std::chrono::seconds{cfg.get_int("invocation.breaker.cool_down_s")};
    return s;
}

}  // namespace preflight::limits
