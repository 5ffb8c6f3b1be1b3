#pragma once

#include <preflight/core/errc.hpp>

#include <pqxx/connection>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::clients {

/// One schema migration: an SQL file of sql/ (e.g. `001_limits.sql` has version 1), embedded into the
/// library at build time so an installed library needs no source tree.
struct migration {
    int version = 0;
    std::string_view name;
    std::string_view sql;
};

/// The embedded migrations in ascending version order. Valid for the life of the program.
[[nodiscard]] std::span<const migration> embedded_migrations() noexcept;

/// What `migrate` did.
struct migrate_report {
    std::vector<int> applied;  ///< versions applied by this call (empty when already current)
    int version = 0;           ///< the schema version after the call
};

/// Applies every embedded migration not yet recorded in `preflight_schema_migrations`, in version order, all
/// in one transaction. Idempotent; safe when several processes migrate at once (a transaction-scoped
/// advisory lock serialises them: the later ones wait, then find nothing to do).
/// Blocking: call it at start-up, not from an io_context thread that serves requests.
/// Errors: `store_unavailable` (cannot connect, SQL failed: nothing is applied then); `diagnostic`, when
/// given, receives the server's message (connection strings redacted).
result<migrate_report> migrate(pqxx::connection& conn, std::string* diagnostic = nullptr);

/// As above, on a new connection to `url` (a libpq URL or key/value string).
result<migrate_report> migrate(const std::string& url, std::string* diagnostic = nullptr);

}  // namespace preflight::clients
