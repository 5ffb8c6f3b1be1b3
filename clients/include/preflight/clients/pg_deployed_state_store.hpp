#pragma once

#include <preflight/clients/deployed_state_store.hpp>
#include <preflight/clients/pg_pool.hpp>

namespace preflight::clients {

/// Deployed state in `preflight_deployed_state` (sql/002_facts.sql: `version_id text PK, state jsonb`). Each call is
/// ONE prepared statement (parameters only). Semantics equal `memory_deployed_state_store`, with jsonb's
/// normalisation: object member order is not kept (Boost.JSON compares objects regardless of order), a duplicate
/// member keeps its last value, and a string containing U+0000 is rejected by the server (`bad_input`).
/// Errors: `bad_input` (empty or over-long id, before any statement), `not_found` (get of an unknown id),
/// `protocol_error` (a stored document that does not parse), and those of `pg_pool::exec`.
/// Cancellation as `pg_pool::exec` (a cancelled put may still take effect).
/// Lifetime: `pool` must outlive the store and every call. Thread safety: fully thread-safe.
class pg_deployed_state_store final : public deployed_state_store {
public:
    explicit pg_deployed_state_store(pg_pool& pool) noexcept : pool_(pool) {}

    boost::asio::awaitable<result<boost::json::value>> get(std::string version_id) override;
    boost::asio::awaitable<result<void>> put(std::string version_id, boost::json::value state) override;

private:
    pg_pool& pool_;
};

}  // namespace preflight::clients
