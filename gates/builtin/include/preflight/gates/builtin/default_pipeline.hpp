#pragma once

#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/builtin_errc.hpp>
#include <preflight/gates/builtin/limiter_keys.hpp>
#include <preflight/gates/pipeline.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/rate_limit_store.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace preflight::gates {

/// Registers every configuration key the built-in gates read (and calls limits::register_config).
/// Keys (defaults; see docs/gates.md): ban.{budget_ms 1000, fail_open false, expose_until false};
/// usage.limits.{free 1000, pro 100000, team 1000000, enterprise 0 = unlimited}, usage.{budget_ms, fail_open false,
/// record_on_release true};
/// member_cap.{budget_ms, fail_open false}; balance.{enabled true, budget_ms 2000, cache_ttl_s 60,
/// stale_if_error_s 0, cache_capacity 10000}; run_budget.{ttl_s 86400, budget_ms 1000, fail_open true} (the
/// max, run_budget.max_mutating_calls 20, comes from limits); backstop.budget_ms (backstop.max / period_s come from
/// limits); rate_limit.{pro,team,enterprise}.{read_rps,read_burst,write_rps,write_burst} (the free tier uses limits'
/// rate_limit.{read,write}_{rps,burst}), rate_limit.budget_ms; fleet.size 1;
/// admission.{enabled true, max_concurrent 10, lease_ttl_ms 300000, budget_ms 1000, fail_open true};
/// pipeline.stateful_call "auto" (auto | separate); <gate>.shadow false for each of `default_gate_names`,
/// pipeline.shadow false. Throws `std::invalid_argument` when a key is already registered.
void register_default_pipeline_config(preflight::config_registry& registry);

struct default_pipeline_deps {
    clients::store_set stores;
    /// The clock of the trace, the balance cache and the local fallback limiter. Null (the default): the store
    /// set's (`store_set::clock`: the in-memory stores'), else the steady clock. One clock by construction: a clock
    /// other than `stores.clock` when the set has one is a `pipeline_config_error` (a pipeline whose caches and
    /// stores read two clocks would disagree with itself). Set it only for a set without a clock (Postgres).
    const preflight::clock* clock = nullptr;
    event_hook on_event;  // fail-open etc.; may be empty
};

/// Builds the production pipeline in precedence order: ban 403, usage 402, org member cap 402,
/// balance 402, backstop 429, rate limit 429, admission 429 (commit, lease). Throws config_error /
/// pipeline_config_error for bad settings.
/// Lifetime: the pipeline shares ownership of the stores; its clock must outlive it and every lease.
/// Thread safety: the pipeline is immutable; any number of concurrent runs.
[[nodiscard]] pipeline default_pipeline(const preflight::config& cfg, default_pipeline_deps deps);

/// Live figures of the in-process parts of one default pipeline, for metrics.
struct default_pipeline_stats {
    cache::cache_stats balance_cache;       ///< the per-org balance outcome cache (zeros when the balance gate is off)
    std::size_t fallback_limiter_keys = 0;  ///< keys held by the local fallback rate limiter (bounded by max_keys)
    std::uint64_t fallback_allowed = 0;     ///< requests the local fallback limiter let through (shared store failing)
    std::uint64_t fallback_denied = 0;      ///< requests it refused (429 "local fallback limiter")
};

/// Reads the stats of the pipeline it was handed to (`default_pipeline_options::monitor`). Thread-safe. Reads zeros
/// before that pipeline is built and once it is gone: the monitor never keeps the pipeline's state alive.
class default_pipeline_monitor {
public:
    [[nodiscard]] default_pipeline_stats read() const;
    /// Called by `default_pipeline_with_options`: where `read` gets its figures (replaces an earlier source).
    void attach(std::function<default_pipeline_stats()> source);

private:
    mutable std::mutex mu_;
    std::function<default_pipeline_stats()> source_;
};

/// `s` as Prometheus text: preflight_balance_cache_{entries (gauge), hits_total, misses_total, evictions_total},
/// preflight_rate_limit_fallback_keys (gauge),
/// preflight_rate_limit_fallback_decisions_total{result="allowed"|"denied"}.
[[nodiscard]] std::string default_pipeline_metrics(const default_pipeline_stats& s);

/// Extras of `default_pipeline` that are not configuration (test seams, metrics). Aggregate with defaults.
struct default_pipeline_options {
    /// Wall clock for the usage period (current UTC month) and ban expiry; empty = system_clock::now.
    clients::wall_clock_fn wall_clock;
    /// Attached to the pipeline's balance cache and fallback limiter (see `default_pipeline_monitor`); may be null.
    std::shared_ptr<default_pipeline_monitor> monitor;
};

/// `default_pipeline` with `opts` (a separate name, so that `&default_pipeline` stays unambiguous).
[[nodiscard]] pipeline default_pipeline_with_options(
    const preflight::config& cfg, default_pipeline_deps deps, default_pipeline_options opts
);

/// Names of the built-in gates, in precedence order.
inline constexpr std::array<const char*, 8> default_gate_names{
    "ban", "usage", "member_cap", "balance", "run_budget", "backstop", "rate_limit", "admission"};

/// `pipeline.stateful_call`: how the stateful gates reach their stores. `automatic`: when the store set offers a
/// `limits::limit_chain` (`make_pg_store_set` does), the backstop, the rate limit and the admission of a request are
/// ONE ordered call that stops at the first denial (one round trip; a later part is never written when an earlier
/// one denies); otherwise, and with `separate`, one call per gate, in order, each refunded by its undo when a later
/// one denies.
enum class stateful_call { automatic, separate };

/// Everything the built-in gates read from the configuration (see `register_default_pipeline_config`).
struct default_pipeline_settings {
    std::chrono::milliseconds ban_budget{1000};
    bool ban_fail_open = false;
    /// A timed ban's 403 says when it ends (`banned_until` in the error body); off by default.
    bool ban_expose_until = false;

    /// Requests per UTC month by plan tier (index = `clients::plan_tier`); 0 = unlimited.
    std::array<std::uint64_t, 4> usage_limits{1000, 100'000, 1'000'000, 0};
    std::chrono::milliseconds usage_budget{1000};
    bool usage_fail_open = false;
    /// Record each admitted execution's usage (one request, or what its release reports) when its lease is released.
    bool usage_record = true;

    std::chrono::milliseconds member_cap_budget{1000};
    bool member_cap_fail_open = false;

    bool balance_enabled = true;
    std::chrono::milliseconds balance_budget{2000};
    std::chrono::seconds balance_cache_ttl{60};
    /// While the provider fails, the last real outcome is still used for this long after it stopped being fresh
    /// (0: a failure fails open at once).
    std::chrono::seconds balance_stale_if_error{0};
    std::size_t balance_cache_capacity = 10'000;

    /// Mutating calls per flow run (requests with a run id), shared through `store_set::run_budgets`.
    std::uint64_t run_budget_max = 20;
    std::chrono::seconds run_budget_ttl{86'400};
    std::chrono::milliseconds run_budget_budget{1000};
    bool run_budget_fail_open = true;

    limits::window_limit backstop{1000, std::chrono::seconds{3600}};
    std::chrono::milliseconds backstop_budget{1000};

    struct tier_rates {
        limits::bucket_limit read;
        limits::bucket_limit write;
    };
    /// By plan tier (index = `clients::plan_tier`).
    std::array<tier_rates, 4> rate_limits{};
    bool cancel_exempt = true;
    std::size_t rate_limit_max_keys = 100'000;
    std::chrono::milliseconds rate_limit_budget{1000};
    /// Servers sharing the stores: the local fallback limiter runs at limit ÷ fleet_size.
    std::uint32_t fleet_size = 1;

    std::uint32_t admission_max_concurrent = 10;
    std::chrono::milliseconds admission_lease_ttl{300'000};
    std::chrono::milliseconds admission_budget{1000};
    bool admission_fail_open = true;
    /// false: no admission gate (no slot taken, no lease), for callers that do not hold leases.
    bool admission_enabled = true;

    stateful_call stateful = stateful_call::automatic;

    /// Shadow mode per built-in gate (index = `default_gate_names`; keys `<gate>.shadow`) and for the whole pipeline
    /// (`pipeline.shadow`): the gate runs, traces `would_deny`, counts and reports (`event_kind::shadow_denial`), and
    /// never denies.
    std::array<bool, 8> shadow{};
    bool shadow_all = false;
    /// `pipeline.near_limit_fraction` (`pipeline_config::near_limit_fraction`).
    double near_limit_fraction = 0.1;
};

/// Reads the keys registered by `register_default_pipeline_config` from a resolved configuration.
/// Throws std::out_of_range when a key was not registered.
[[nodiscard]] default_pipeline_settings default_settings_from(const preflight::config& cfg);

/// The first day of the UTC month of `t`, as "YYYY-MM-01" (the usage period key).
[[nodiscard]] std::string usage_period_start(std::chrono::system_clock::time_point t);

/// The local fallback limit: rate and burst divided by `fleet_size` (burst at least 1).
[[nodiscard]] limits::bucket_limit local_share(limits::bucket_limit l, std::uint32_t fleet_size) noexcept;

}  // namespace preflight::gates
