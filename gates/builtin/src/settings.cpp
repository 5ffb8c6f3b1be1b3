#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/limits/limits_config.hpp>

#include <algorithm>
#include <cstdio>

namespace preflight::gates {

namespace {

config_key budget_key(const std::string& gate, std::int64_t def) {
    auto k = int_key(gate + ".budget_ms", def, 1, "time budget of one '" + gate + "' check in ms");
    k.max = 600'000;
    return k;
}

constexpr std::array<const char*, 4> tier_names{"free", "pro", "team", "enterprise"};

struct tier_default {
    double read_rps, read_burst, write_rps, write_burst;
};
// Paid tiers: 5x, 10x and 25x the free tier (limits' rate_limit.* defaults: read 1/10, write 1/20).
constexpr std::array<tier_default, 3> paid_defaults{
    tier_default{5, 50, 5, 100}, tier_default{10, 100, 10, 200}, tier_default{25, 250, 25, 500}};

std::chrono::milliseconds ms(const config& cfg, std::string_view path) {
    return std::chrono::milliseconds{cfg.get_int(path)};
}

}  // namespace

void register_default_pipeline_config(config_registry& r) {
    limits::register_config(r);
    r.add(budget_key("ban", 1000));
    r.add(bool_key("ban.fail_open", false, "a failing ban lookup counts as a pass (default: 503)"));
    r.add(bool_key(
        "ban.expose_until",
        false,
        "a 403 for a timed ban says when it ends (banned_until, RFC 3339 UTC, in the error body); never a Retry-After"
    ));
    const std::array<std::int64_t, 4> usage_defaults{1000, 100'000, 1'000'000, 0};
    for (std::size_t t = 0; t < 4; ++t) {
        r.add(int_key(
            std::string("usage.limits.") + tier_names[t],
            usage_defaults[t],
            0,
            std::string("requests per UTC month on the ") + tier_names[t] + " plan (0 = unlimited)"
        ));
    }
    r.add(budget_key("usage", 1000));
    r.add(bool_key(
        "usage.record_on_release",
        true,
        "record each admitted execution's usage (once per lease) when its lease is released, so the usage gate counts "
        "real traffic"
    ));
    r.add(bool_key("usage.fail_open", false, "a failing usage lookup counts as a pass (default: 503)"));
    r.add(budget_key("member_cap", 1000));
    r.add(bool_key("member_cap.fail_open", false, "a failing membership lookup counts as a pass (default: 503)"));
    r.add(bool_key("balance.enabled", true, "check the billing balance (also needs a balance source)"));
    r.add(budget_key("balance", 2000));
    r.add(int_key("balance.cache_ttl_s", 60, 1, "seconds a balance outcome (allowed or blocked) is cached per org"));
    auto stale = int_key(
        "balance.stale_if_error_s",
        0,
        0,
        "while the balance provider fails, keep using the last real outcome for this many seconds after it went stale "
        "(0: fail open at once)"
    );
    stale.max = 86'400;
    r.add(std::move(stale));
    r.add(int_key("balance.cache_capacity", 10'000, 1, "orgs held by the balance outcome cache"));
    auto run_ttl =
        int_key("run_budget.ttl_s", 86'400, 1, "a flow run's budget is forgotten this long after its last charge");
    run_ttl.max = 31'536'000;
    r.add(std::move(run_ttl));
    r.add(budget_key("run_budget", 1000));
    r.add(bool_key("run_budget.fail_open", true, "a failing run budget store lets the request through"));
    r.add(budget_key("backstop", 1000));
    for (std::size_t t = 1; t < 4; ++t) {
        const std::string base = std::string("rate_limit.") + tier_names[t] + ".";
        const auto& d = paid_defaults[t - 1];
        const std::string tier = tier_names[t];
        r.add(number_key(base + "read_rps", d.read_rps, 0, true, tier + " plan: read refill per second (> 0)"));
        r.add(number_key(base + "read_burst", d.read_burst, 1, false, tier + " plan: read bucket size (>= 1)"));
        r.add(number_key(base + "write_rps", d.write_rps, 0, true, tier + " plan: write refill per second (> 0)"));
        r.add(number_key(base + "write_burst", d.write_burst, 1, false, tier + " plan: write bucket size (>= 1)"));
    }
    r.add(budget_key("rate_limit", 1000));
    auto fleet = int_key("fleet.size", 1, 1, "servers sharing the stores; local fallback limit = limit / fleet.size");
    fleet.max = 100'000;
    r.add(std::move(fleet));
    auto slots = int_key("admission.max_concurrent", 10, 1, "concurrent executions per org");
    slots.max = 1'000'000'000;
    r.add(std::move(slots));
    r.add(int_key("admission.lease_ttl_ms", 300'000, 1, "an unreleased admission lease expires after this"));
    r.add(budget_key("admission", 1000));
    r.add(bool_key("admission.fail_open", true, "a failing admission store admits without a lease"));
    r.add(bool_key(
        "admission.enabled",
        true,
        "take an admission slot (and return a lease) for each execution; false for callers that hold no leases"
    ));
    for (const char* gate : default_gate_names) {
        r.add(bool_key(
            std::string(gate) + ".shadow",
            false,
            std::string("shadow mode for the '") + gate +
                "' gate: it runs and reports what it would deny (trace would_deny, metric, event) but never denies"
        ));
    }
    r.add(bool_key(
        "pipeline.shadow",
        false,
        "shadow mode for every gate: decide, trace, count and report each would-be denial, allow every request"
    ));
    auto near = number_key(
        "pipeline.near_limit_fraction",
        0.1,
        0,
        false,
        "a limiter's pass counts in preflight_gate_near_limit_total when its remaining quota is under this fraction of "
        "its limit (0: never)"
    );
    near.max = 1;
    r.add(std::move(near));
    config_key call;
    call.path = "pipeline.stateful_call";
    call.type = config_type::string;
    call.default_value = "auto";
    call.description =
        "how the backstop, the rate limit and the admission reach their stores: auto (one ordered call that stops at "
        "the first denial when the stores offer it, as Postgres does; one call per gate otherwise), separate (one "
        "call per gate, in order)";
    r.add(std::move(call));
}

default_pipeline_settings default_settings_from(const config& cfg) {
    default_pipeline_settings s;
    const auto lim = limits::settings_from(cfg);
    s.ban_budget = ms(cfg, "ban.budget_ms");
    s.ban_fail_open = cfg.get_bool("ban.fail_open");
    s.ban_expose_until = cfg.get_bool("ban.expose_until");
    for (std::size_t t = 0; t < 4; ++t) {
        s.usage_limits[t] = static_cast<std::uint64_t>(cfg.get_int(std::string("usage.limits.") + tier_names[t]));
    }
    s.usage_budget = ms(cfg, "usage.budget_ms");
    s.usage_fail_open = cfg.get_bool("usage.fail_open");
    s.usage_record = cfg.get_bool("usage.record_on_release");
    s.member_cap_budget = ms(cfg, "member_cap.budget_ms");
    s.member_cap_fail_open = cfg.get_bool("member_cap.fail_open");
    s.balance_enabled = cfg.get_bool("balance.enabled");
    s.balance_budget = ms(cfg, "balance.budget_ms");
    s.balance_cache_ttl = std::chrono::seconds{cfg.get_int("balance.cache_ttl_s")};
    s.balance_stale_if_error = std::chrono::seconds{cfg.get_int("balance.stale_if_error_s")};
    s.balance_cache_capacity = static_cast<std::size_t>(cfg.get_int("balance.cache_capacity"));
    s.run_budget_max = lim.run_budget.max_mutating_calls;
    s.run_budget_ttl = std::chrono::seconds{cfg.get_int("run_budget.ttl_s")};
    s.run_budget_budget = ms(cfg, "run_budget.budget_ms");
    s.run_budget_fail_open = cfg.get_bool("run_budget.fail_open");
    s.backstop = lim.backstop;
    s.backstop_budget = ms(cfg, "backstop.budget_ms");
    s.rate_limits[0] = {lim.rate_limit.read, lim.rate_limit.write};
    for (std::size_t t = 1; t < 4; ++t) {
        const std::string base = std::string("rate_limit.") + tier_names[t] + ".";
        s.rate_limits[t].read = {cfg.get_number(base + "read_rps"), cfg.get_number(base + "read_burst")};
        s.rate_limits[t].write = {cfg.get_number(base + "write_rps"), cfg.get_number(base + "write_burst")};
    }
    s.cancel_exempt = lim.rate_limit.cancel_exempt;
    s.rate_limit_max_keys = lim.rate_limit.max_keys;
    s.rate_limit_budget = ms(cfg, "rate_limit.budget_ms");
    s.fleet_size = static_cast<std::uint32_t>(cfg.get_int("fleet.size"));
    s.admission_max_concurrent = static_cast<std::uint32_t>(cfg.get_int("admission.max_concurrent"));
    s.admission_lease_ttl = ms(cfg, "admission.lease_ttl_ms");
    s.admission_budget = ms(cfg, "admission.budget_ms");
    s.admission_fail_open = cfg.get_bool("admission.fail_open");
    s.admission_enabled = cfg.get_bool("admission.enabled");
    for (std::size_t g = 0; g < default_gate_names.size(); ++g) {
        s.shadow[g] = cfg.get_bool(std::string(default_gate_names[g]) + ".shadow");
    }
    s.shadow_all = cfg.get_bool("pipeline.shadow");
    s.near_limit_fraction = cfg.get_number("pipeline.near_limit_fraction");
    const std::string call = cfg.get_string("pipeline.stateful_call");
    if (call == "auto") {
        s.stateful = stateful_call::automatic;
    } else if (call == "separate") {
        s.stateful = stateful_call::separate;
    } else {
        const auto src = cfg.source_of("pipeline.stateful_call");
        const std::string origin = src == config_source::env    ? config_registry::env_name("pipeline.stateful_call")
                                   : src == config_source::flag ? config_registry::flag_name("pipeline.stateful_call")
                                                                : std::string("file");
        throw config_error("pipeline.stateful_call", src, origin, call, "must be auto or separate");
    }
    return s;
}

std::string usage_period_start(std::chrono::system_clock::time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-01", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()));
    return buf;
}

limits::bucket_limit local_share(limits::bucket_limit l, std::uint32_t fleet_size) noexcept {
    const double n = fleet_size == 0 ? 1.0 : static_cast<double>(fleet_size);
    return {l.rate_per_s / n, std::max(1.0, l.burst / n)};
}

}  // namespace preflight::gates
