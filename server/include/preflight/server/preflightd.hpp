#pragma once

#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_store_set.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/pipeline.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <string>

namespace preflight::server {

/// What preflightd's main plugs into `run_preflightd`: the pipeline and the Postgres store set. Keeping these
/// as functions lets the library stay free of the built-in gates (and lets tests and benchmarks run the same
/// program with a pipeline of their own).
struct preflightd_parts {
    /// Registers the pipeline's configuration keys (besides the server's own `server.*` keys).
    std::function<void(preflight::config_registry&)> register_config;
    /// Builds the pipeline from the effective configuration over `stores`.
    std::function<gates::pipeline(const preflight::config&, clients::store_set, gates::event_hook)> make_pipeline;
    /// The Postgres store set over `pool` (with `--postgres`) with the options of the configuration
    /// (`server.pg_batch_writes`); empty: Postgres is not supported.
    std::function<clients::store_set(std::shared_ptr<clients::pg_pool>, const clients::pg_store_options&)>
        make_pg_stores;
    /// Loads a fact data document into Postgres (with `--postgres` and `--data`); throws on bad data.
    std::function<boost::asio::awaitable<void>(std::shared_ptr<clients::pg_pool>, boost::json::value)> load_pg_data;
    /// More Prometheus text for `/metrics` from the pipeline built by `make_pipeline` (e.g. its caches); may be empty.
    std::function<std::string()> pipeline_metrics;
};

/// preflightd's whole program: resolves the layered configuration (`--config FILE`, `PREFLIGHT_…` variables,
/// flags incl. `--listen --port --threads --data --postgres`), builds the stores (in-memory loaded from
/// `--data`, or Postgres: migrate, pool, load `--data`), the pipeline and the API, serves until SIGINT/SIGTERM
/// and drains. Prints one line with the listening address on stdout; diagnostics go to stderr.
/// Returns the exit code: 0 after a drain, 2 for a bad configuration (the config_error text is printed),
/// 1 for any other start-up failure (bad data file, Postgres unreachable, port taken).
int run_preflightd(int argc, const char* const* argv, const preflightd_parts& parts);

}  // namespace preflight::server
