// preflightd: the HTTP admission server over the default pipeline (built-in gates).
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_store_set.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/server/preflightd.hpp>

int main(int argc, char** argv) {
    namespace g = preflight::gates;
    preflight::server::preflightd_parts parts;
    parts.register_config = [](preflight::config_registry& r) { g::register_default_pipeline_config(r); };
    // The balance cache and the fallback rate limiter of the pipeline, on /metrics.
    auto monitor = std::make_shared<g::default_pipeline_monitor>();
    parts.make_pipeline =
        [monitor](const preflight::config& cfg, preflight::clients::store_set stores, g::event_hook hook) {
            g::default_pipeline_deps deps;
            deps.stores = std::move(stores);
            deps.on_event = std::move(hook);
            g::default_pipeline_options opts;
            opts.monitor = monitor;
            return g::default_pipeline_with_options(cfg, std::move(deps), std::move(opts));
        };
    parts.pipeline_metrics = [monitor] { return g::default_pipeline_metrics(monitor->read()); };
    parts.make_pg_stores = [](std::shared_ptr<preflight::clients::pg_pool> pool,
                              const preflight::clients::pg_store_options& options) {
        return preflight::clients::make_pg_store_set(std::move(pool), options);
    };
    // A captureless coroutine lambda: its parameters live in the coroutine frame.
    parts.load_pg_data = [](std::shared_ptr<preflight::clients::pg_pool> pool,
                            boost::json::value doc) -> boost::asio::awaitable<void> {
        auto loaded = co_await preflight::clients::pg_load_fact_data(*pool, std::move(doc));
        if (!loaded) throw boost::system::system_error(loaded.error(), "preflightd: loading --data into Postgres");
    };
    return preflight::server::run_preflightd(argc, argv, parts);
}
