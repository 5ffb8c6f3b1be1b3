#include <preflight/clients/migrations.hpp>
#include <preflight/clients/redact.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <exception>
#include <set>

namespace preflight::clients {

namespace detail {
// Defined in the build-generated embedded_migrations.cpp (from sql/*.sql).
std::span<const migration> embedded_migration_table() noexcept;
}  // namespace detail

std::span<const migration> embedded_migrations() noexcept {
    return detail::embedded_migration_table();
}

namespace {
// Arbitrary constant: the advisory lock key that serialises migrations of every preflight process.
constexpr long long migration_lock_key = 0x70726566'6c696768LL;  // "preflig"
}  // namespace

result<migrate_report> migrate(pqxx::connection& conn, std::string* diagnostic) {
    try {
        migrate_report report;
        pqxx::work tx{conn, "preflight_migrate"};
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(migration_lock_key) + ")");
        tx.exec0(
            "CREATE TABLE IF NOT EXISTS preflight_schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        );
        std::set<int> done;
        for (const auto& row : tx.exec("SELECT version FROM preflight_schema_migrations")) {
            done.insert(row[0].as<int>());
        }
        for (const auto& m : embedded_migrations()) {
            if (done.contains(m.version)) continue;
            tx.exec(std::string(m.sql), "migration " + std::string(m.name));
            tx.exec_params0(
                "INSERT INTO preflight_schema_migrations (version, name) VALUES ($1, $2)",
                m.version,
                std::string(m.name)
            );
            report.applied.push_back(m.version);
            done.insert(m.version);
        }
        tx.commit();
        report.version = done.empty() ? 0 : *done.rbegin();
        return report;
    } catch (const pqxx::in_doubt_error& e) {
        // The commit's outcome is unknown: never retried here; a later migrate() finds out.
        if (diagnostic != nullptr) *diagnostic = std::string("migrate: commit outcome unknown: ") + e.what();
        return errc::store_unavailable;
    } catch (const pqxx::broken_connection& e) {
        if (diagnostic != nullptr) *diagnostic = std::string("migrate: connection broken: ") + e.what();
        return errc::connection_broken;
    } catch (const pqxx::failure& e) {
        if (diagnostic != nullptr) *diagnostic = std::string("migrate: ") + e.what();
        return errc::store_unavailable;
    }
}

result<migrate_report> migrate(const std::string& url, std::string* diagnostic) {
    try {
        pqxx::connection conn{url};
        return migrate(conn, diagnostic);
    } catch (const pqxx::failure& e) {
        if (diagnostic != nullptr) {
            *diagnostic = "migrate: cannot connect to " + redact_connection_string(url) + ": " + e.what();
        }
        return errc::store_unavailable;
    }
}

}  // namespace preflight::clients
