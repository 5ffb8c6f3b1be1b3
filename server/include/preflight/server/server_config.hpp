#pragma once

#include <preflight/core/config.hpp>

#include <string>
#include <vector>

namespace preflight::server {

/// preflightd's own configuration keys: `server.listen` ("127.0.0.1"), `server.port` (8080), `server.threads`
/// (0 = hardware threads), `server.data` (fact data JSON file for the in-memory stores, "" = none),
/// `server.postgres_url` (secret; "" = in-memory stores), `server.pool_size` (8),
/// `server.pg_batch_writes` (true: `clients::pg_store_options::batch_limit_writes`), `server.pg_gather_reads` (true:
/// `gather_reads`), `server.pg_batch_in_flight` (2) and `server.pg_batch_max_per_call` (64)
/// (`clients::pg_gather_options`), `server.purge_interval_ms` (60000; 0 = never: `clients::periodic_purge` of the
/// Postgres store set), `server.max_leases` (100000), `server.drain_timeout_ms`
/// (10000); the HTTP billing provider of the balance gate: `server.balance_url` ("" = the store set's balance source),
/// `server.balance_api_key` (secret), `server.balance_timeout_ms` (2000).
void register_server_config(preflight::config_registry& registry);

/// The server's short command line, translated for `config_inputs::args`: `--listen` → `--server-listen`,
/// `--port`, `--threads`, `--data`, `--postgres` (→ `--server-postgres-url`), `--balance-url`; `--config FILE` is taken
/// out (returned in `config_file`). Other arguments pass through unchanged (the layered config rejects unknown ones).
struct command_line {
    std::string config_file;  ///< empty: none
    std::vector<std::string> args;
};
[[nodiscard]] command_line translate_command_line(int argc, const char* const* argv);

}  // namespace preflight::server
