#pragma once

#include <preflight/core/config.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/invocation_limits.hpp>
#include <preflight/limits/run_budget.hpp>
#include <preflight/limits/token_bucket.hpp>

namespace preflight::limits {

/// Registers the keys of the limits module (all with the defaults of DESIGN.md):
/// rate_limit.{read_rps,read_burst,write_rps,write_burst,cancel_exempt,max_keys},
/// backstop.{max,period_s}, run_budget.max_mutating_calls,
/// invocation.{deadline_ms,http_fetches,db_queries,kv_bytes_written,host_concurrency}.
/// Throws `std::invalid_argument` when a key is already registered.
void register_config(config_registry& registry);

/// Everything the limits module reads from the configuration.
struct limits_settings {
    token_bucket_params rate_limit;
    window_limit backstop;
    run_budget_policy run_budget;
    invocation_limits_config invocation;
};

/// Reads the keys registered by `register_config` from a resolved configuration.
[[nodiscard]] limits_settings settings_from(const config& cfg);

}  // namespace preflight::limits
