#include "pg_util.hpp"
#include <preflight/clients/pg_deployed_state_store.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace preflight::clients {

namespace asio = boost::asio;

namespace {

// $1 version id. The document as jsonb text (primary key lookup).
const pg_statement get_stmt{
    "preflight_ds_get", "SELECT state::text FROM preflight_deployed_state WHERE version_id = $1::text"};

// $1 version id, $2 document (JSON text). Insert or replace.
const pg_statement put_stmt{
    "preflight_ds_put",
    "INSERT INTO preflight_deployed_state (version_id, state) VALUES ($1::text, $2::jsonb)"
    " ON CONFLICT (version_id) DO UPDATE SET state = EXCLUDED.state, created_at = clock_timestamp()"};

result<void> check_id(const std::string& id) {
    if (id.empty()) return errc::bad_input;
    return detail::check_key(id);
}

}  // namespace

asio::awaitable<result<boost::json::value>> pg_deployed_state_store::get(std::string version_id) {
    if (auto ok = check_id(version_id); !ok) co_return ok.error();
    auto params = detail::params(std::move(version_id));
    auto rows = co_await pool_.exec(get_stmt, std::move(params));
    if (!rows) co_return rows.error();
    if (rows->size() == 0) co_return errc::not_found;
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(rows->text(0, 0), ec);
    if (ec) co_return errc::protocol_error;
    co_return doc;
}

asio::awaitable<result<void>> pg_deployed_state_store::put(std::string version_id, boost::json::value state) {
    if (auto ok = check_id(version_id); !ok) co_return ok;
    auto params = detail::params(std::move(version_id), boost::json::serialize(state));
    auto rows = co_await pool_.exec(put_stmt, std::move(params));
    if (!rows) co_return rows.error();
    co_return result<void>{};
}

}  // namespace preflight::clients
