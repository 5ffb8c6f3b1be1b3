#pragma once

#include <preflight/core/config.hpp>
#include <preflight/limits/circuit_breaker.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/invocation_limits.hpp>
#include <preflight/limits/invocation_profiles.hpp>
#include <preflight/limits/run_budget.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <string_view>

namespace preflight::limits {

/// Registers the keys of the limits module (all with the defaults of DESIGN.md):
/// rate_limit.{read_rps,read_burst,write_rps,write_burst,cancel_exempt,max_keys},
/// backstop.{max,period_s}, run_budget.max_mutating_calls,
/// invocation.{wall_clock_ms,http_fetches,db_queries,kv_bytes_written,memory_bytes,fuel,host_concurrency} (the
/// "default" limits profile of a plugin host), invocation.breaker.{trips,window_s,cool_down_s}.
/// Throws `std::invalid_argument` when a key is already registered.
void register_config(config_registry& registry);

/// Registers the keys of limits profile `name`: invocation.profiles.<name>.{wall_clock_ms,http_fetches,db_queries,
/// kv_bytes_written,memory_bytes,fuel,host_concurrency}, with the bounds of the `invocation.*` keys. A key of the
/// profile that is not set (file, environment or flag) takes the value of the "default" profile's key. A plugin
/// host registers every profile its manifests name, before resolving the configuration.
/// Throws `limits_profile_error` for a malformed name, for "default" (that is the `invocation.*` keys) and for a
/// profile registered twice.
void register_invocation_profile(config_registry& registry, std::string_view name);

/// Everything the limits module reads from the configuration.
struct limits_settings {
    token_bucket_params rate_limit;
    window_limit backstop;
    run_budget_policy run_budget;
    invocation_limits_config invocation;  ///< the "default" profile
    invocation_profiles profiles;         ///< "default" and every profile registered with register_invocation_profile
    circuit_breaker_config breaker;       ///< of every plugin
};

/// Reads the keys registered by `register_config` and `register_invocation_profile` from a resolved configuration.
[[nodiscard]] limits_settings settings_from(const config& cfg);

}  // namespace preflight::limits
