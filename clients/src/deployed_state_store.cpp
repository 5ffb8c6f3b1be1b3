#include <preflight/clients/deployed_state_store.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>  // max_key_bytes

#include <mutex>
#include <utility>

namespace preflight::clients {

namespace asio = boost::asio;

namespace {

bool bad_version_id(const std::string& id) {
    return id.empty() || id.size() > max_key_bytes || id.find('\0') != std::string::npos;
}

asio::awaitable<result<boost::json::value>> get_from(std::shared_ptr<deployed_state_store> store, std::string id) {
    co_return co_await store->get(std::move(id));
}

}  // namespace

asio::awaitable<result<boost::json::value>> memory_deployed_state_store::get(std::string version_id) {
    if (bad_version_id(version_id)) co_return errc::bad_input;
    std::shared_lock lock(mutex_);
    auto it = docs_.find(version_id);
    if (it == docs_.end()) co_return errc::not_found;
    boost::json::value copy = it->second;
    co_return copy;
}

asio::awaitable<result<void>> memory_deployed_state_store::put(std::string version_id, boost::json::value state) {
    if (bad_version_id(version_id)) co_return errc::bad_input;
    boost::json::value own(std::move(state), boost::json::storage_ptr{});  // never share the caller's resource
    std::unique_lock lock(mutex_);
    docs_.insert_or_assign(std::move(version_id), std::move(own));
    co_return result<void>{};
}

asio::awaitable<result<boost::json::value>> load_deployed_state(
    cache::deployed_state_cache& cache, std::shared_ptr<deployed_state_store> store, std::string version_id
) {
    std::string id = version_id;
    auto load = [store = std::move(store), id]() { return get_from(store, id); };
    co_return co_await cache.get_or_load(std::move(version_id), std::move(load));
}

}  // namespace preflight::clients
