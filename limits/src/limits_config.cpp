#include <preflight/limits/limits_config.hpp>

#include <optional>

namespace preflight::limits {

void register_config(config_registry& r) {
    r.add(number_key("rate_limit.read_rps", 1.0, 0, true, "read bucket refill, tokens per second (> 0)"));
    r.add(number_key("rate_limit.read_burst", 10.0, 1, false, "read bucket size (>= 1)"));
    r.add(number_key("rate_limit.write_rps", 1.0, 0, true, "write bucket refill, tokens per second (> 0)"));
    r.add(number_key("rate_limit.write_burst", 20.0, 1, false, "write bucket size (>= 1)"));
    r.add(bool_key("rate_limit.cancel_exempt", true, "cancel never touches the write bucket"));
    r.add(int_key("rate_limit.max_keys", 100'000, 1, "keys held by the in-memory token buckets"));
    r.add(int_key("backstop.max", 1000, 1, "fixed-window backstop: units per period per org"));
    // Upper bounds found by fuzz/fuzz_config.cpp: the period is converted to nanoseconds (int64) by the fixed
    // window, and host_concurrency is a uint32; larger values overflowed or were silently truncated.
    r.add(int_key(
        "backstop.period_s", 3600, 1, "fixed-window backstop period in seconds (<= 9223372036)", 9'223'372'036.0
    ));
    r.add(int_key("run_budget.max_mutating_calls", 20, 1, "mutating calls per run"));
    r.add(int_key("invocation.deadline_ms", 5000, 1, "wall-clock deadline of one guarded invocation"));
    r.add(int_key("invocation.http_fetches", 8, 0, "http fetches per invocation"));
    r.add(int_key("invocation.db_queries", 32, 0, "db queries per invocation"));
    r.add(int_key("invocation.kv_bytes_written", 1024 * 1024, 0, "kv bytes written per invocation"));
    r.add(int_key(
        "invocation.host_concurrency", 1, 1, "host calls in flight per invocation (<= 4294967295)", 4'294'967'295.0
    ));
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
    s.invocation.deadline = std::chrono::milliseconds{cfg.get_int("invocation.deadline_ms")};
    s.invocation.counters = {
        {"http_fetches", static_cast<std::uint64_t>(cfg.get_int("invocation.http_fetches"))},
        {"db_queries", static_cast<std::uint64_t>(cfg.get_int("invocation.db_queries"))},
        {"kv_bytes_written", static_cast<std::uint64_t>(cfg.get_int("invocation.kv_bytes_written"))},
    };
    s.invocation.host_concurrency = static_cast<std::uint32_t>(cfg.get_int("invocation.host_concurrency"));
    return s;
}

}  // namespace preflight::limits
