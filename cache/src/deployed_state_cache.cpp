#include <preflight/cache/deployed_state_cache.hpp>

#include <utility>

namespace preflight::cache {

namespace {

ttl_lru_params to_lru_params(const deployed_state_cache_params& p) {
    ttl_lru_params out;
    out.capacity = p.capacity;
    out.ttl = p.ttl;
    out.mode = ttl_mode::absolute;
    out.shards = p.shards;
    return out;
}

}  // namespace

deployed_state_cache::deployed_state_cache(deployed_state_cache_params params, const clock& clk)
    : cache_(to_lru_params(params), clk) {}

void deployed_state_cache::put(std::string_view version_id, boost::json::value state) {
    cache_.put(version_id, std::move(state));
}

std::optional<boost::json::value> deployed_state_cache::get(
    std::string_view version_id, boost::json::storage_ptr storage
) {
    auto p = cache_.get(version_id);
    if (!p) return std::nullopt;
    return boost::json::value(*p, std::move(storage));
}

boost::asio::awaitable<result<boost::json::value>> deployed_state_cache::get_or_load(
    std::string version_id, loader load
) {
    if (!load) throw std::invalid_argument("deployed_state_cache::get_or_load: empty loader for " + version_id);
    auto r = co_await cache_.get_or_load(std::move(version_id), std::move(load));
    if (!r) co_return r.error();
    co_return boost::json::value(**r);
}

bool deployed_state_cache::erase(std::string_view version_id) {
    return cache_.erase(version_id);
}

cache_stats deployed_state_cache::stats() const {
    return cache_.stats();
}

}  // namespace preflight::cache
