#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/http_balance_source.hpp>
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/periodic_purge.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>
#include <preflight/server/api.hpp>
#include <preflight/server/daemon.hpp>
#include <preflight/server/preflightd.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace preflight::server {

namespace asio = boost::asio;

namespace {

using gates::append_prometheus_metric;

// Appends `more` to the Prometheus text `extra` already produces (empty: none yet).
void chain_metrics(std::function<std::string()>& extra, std::function<std::string()> more) {
    extra = [previous = std::move(extra), more = std::move(more)] {
        return (previous ? previous() : std::string()) + more();
    };
}

boost::json::value read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read data file '" + path + "'");
    std::ostringstream buf;
    buf << in.rdbuf();
    boost::system::error_code ec;
    auto v = boost::json::parse(buf.str(), ec);
    if (ec) throw std::runtime_error("data file '" + path + "' is not valid JSON: " + ec.message());
    return v;
}

std::string pool_metrics(const clients::pg_pool& pool) {
    const auto s = pool.stats();
    std::string out;
    append_prometheus_metric(out, "preflight_pg_pool_size", "gauge", "Configured Postgres connections.", pool.size());
    append_prometheus_metric(
        out, "preflight_pg_statements_total", "counter", "Statements sent to Postgres.", s.statements
    );
    append_prometheus_metric(
        out, "preflight_pg_syncs_total", "counter", "Pipeline sync points (round trips).", s.syncs
    );
    append_prometheus_metric(
        out, "preflight_pg_connects_total", "counter", "Successful connection attempts.", s.connects
    );
    append_prometheus_metric(
        out, "preflight_pg_failures_total", "counter", "Failed statements and connection attempts.", s.failures
    );
    return out;
}

std::string purge_metrics(const clients::purge_stats& s) {
    std::string out;
    append_prometheus_metric(
        out, "preflight_pg_purge_runs_total", "counter", "Periodic purges of idle limiter rows.", s.runs
    );
    append_prometheus_metric(
        out, "preflight_pg_purged_rows_total", "counter", "Idle limiter rows removed by purges.", s.removed
    );
    append_prometheus_metric(
        out, "preflight_pg_purge_failures_total", "counter", "Periodic purges that failed.", s.failures
    );
    return out;
}

// Keys held by the embedded (in-memory) limit stores: bounded by their max_keys and sweeps (docs/limits.md); exported
// so that a soak can watch them (scripts/soak.sh).
std::string memory_store_metrics(const clients::store_set& stores) {
    std::string out;
    if (const auto* rl = dynamic_cast<const limits::memory_rate_limit_store*>(stores.rate_limits.get())) {
        append_prometheus_metric(
            out, "preflight_rate_limit_keys", "gauge", "Token-bucket keys held in memory.", rl->size()
        );
    }
    if (auto* fw = dynamic_cast<limits::memory_fixed_window_store*>(stores.windows.get())) {
        append_prometheus_metric(
            out, "preflight_fixed_window_keys", "gauge", "Fixed-window keys held in memory.", fw->counter().size()
        );
    }
    if (const auto* ad = dynamic_cast<const limits::memory_admission_store*>(stores.admissions.get())) {
        append_prometheus_metric(
            out, "preflight_admission_keys", "gauge", "Admission keys held in memory.", ad->keys()
        );
        append_prometheus_metric(
            out, "preflight_admission_leases_stored", "gauge", "Admission leases stored in memory.", ad->stored_leases()
        );
    }
    return out;
}

std::string balance_metrics(const clients::http_balance_source& src) {
    std::string out;
    append_prometheus_metric(
        out,
        "preflight_balance_http_connections_opened_total",
        "counter",
        "Connections opened to the HTTP billing provider.",
        src.connections_opened()
    );
    append_prometheus_metric(
        out,
        "preflight_balance_http_idle_connections",
        "gauge",
        "Keep-alive connections to the billing provider parked for reuse.",
        src.idle_connections()
    );
    return out;
}

// The spelling of `key` in the source its value came from (for a config_error).
std::string origin_of(const preflight::config& cfg, std::string_view key, const std::string& file_name) {
    switch (cfg.source_of(key)) {
        case config_source::flag: return preflight::config_registry::flag_name(key);
        case config_source::env: return preflight::config_registry::env_name(key);
        case config_source::file: return file_name;
        case config_source::default_value: break;
    }
    return "default";
}

}  // namespace

int run_preflightd(int argc, const char* const* argv, const preflightd_parts& parts) {
    preflight::config cfg;
    std::string config_file;
    try {
        command_line cl = translate_command_line(argc, argv);
        preflight::config_registry registry;
        register_server_config(registry);
        if (parts.register_config) parts.register_config(registry);
        // preflightd is a program: its PREFLIGHT_… variables are part of its configuration.
        auto inputs = preflight::config_inputs::from_process_environment();
        inputs.args = cl.args;
        config_file = cl.config_file;
        if (!cl.config_file.empty()) {
            inputs.file = preflight::load_config_file(cl.config_file);
            inputs.file_name = cl.config_file;
        }
        cfg = preflight::config::resolve(registry, inputs);
    } catch (const preflight::config_error& e) {
        std::cerr << "preflightd: " << e.what() << std::endl;
        return 2;
    }

    // One io_context per thread, each connection (and every run it starts) on one of them: no strands, no handler
    // of a connection ever waits for another thread. Pools, timers and signals live on context 0.
    io_context_per_thread io(static_cast<std::size_t>(cfg.get_int("server.threads")));
    asio::io_context& ctx = io.main();
    std::shared_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::http_balance_clients> balance_clients;
    std::unique_ptr<clients::periodic_purge> purge;
    std::unique_ptr<api> the_api;
    int code = 0;
    {
        try {
            const std::string data_path = cfg.get_string("server.data");
            const std::string pg_url = cfg.get_string("server.postgres_url");
            std::optional<boost::json::value> data;
            if (!data_path.empty()) data = read_json_file(data_path);

            clients::store_set stores;
            clients::memory_fact_stores facts;
            api_params params;
            if (!pg_url.empty()) {
                if (!parts.make_pg_stores) throw std::runtime_error("this build has no Postgres store set");
                std::string diag;
                auto migrated = clients::migrate(pg_url, &diag);
                if (!migrated) {
                    throw std::runtime_error(
                        "cannot migrate the Postgres schema: " + migrated.error().message() +
                        (diag.empty() ? std::string() : " (" + diag + ")")
                    );
                }
                clients::pool_params pp;
                pp.url = pg_url;
                pp.size = static_cast<std::size_t>(cfg.get_int("server.pool_size"));
                pp.application_name = "preflightd";
                pp.on_error = [](std::string_view st, boost::system::error_code ec, std::string_view msg) {
                    std::cerr << "preflightd: postgres " << st << ": " << ec.message() << ": " << msg << std::endl;
                };
                pool = std::make_shared<clients::pg_pool>(ctx.get_executor(), pp);
                auto connected = asio::co_spawn(ctx, pool->connect_all(), asio::use_future).get();
                if (!connected) throw std::runtime_error("cannot connect to Postgres: " + connected.error().message());
                clients::pg_store_options so;
                so.batch_limit_writes = cfg.get_bool("server.pg_batch_writes");
                so.gather_reads = cfg.get_bool("server.pg_gather_reads");
                so.gather.max_in_flight = static_cast<std::size_t>(cfg.get_int("server.pg_batch_in_flight"));
                so.gather.max_per_call = static_cast<std::size_t>(cfg.get_int("server.pg_batch_max_per_call"));
                stores = parts.make_pg_stores(pool, so);
                if (data) {
                    if (!parts.load_pg_data) throw std::runtime_error("this build cannot load data into Postgres");
                    asio::co_spawn(ctx, parts.load_pg_data(pool, *data), asio::use_future).get();
                }
                clients::pg_statement ping("preflightd_health", "SELECT 1");
                params.health = [pool, ping]() -> asio::awaitable<result<void>> {
                    std::vector<std::string> no_params;  // a named local: no braced temporary in co_await
                    auto r = co_await pool->exec(ping, std::move(no_params));
                    if (!r) co_return r.error();
                    co_return result<void>{};
                };
                if (const auto every = cfg.get_int("server.purge_interval_ms"); every > 0 && stores.purge) {
                    purge = std::make_unique<clients::periodic_purge>(
                        ctx.get_executor(),
                        stores.purge,
                        std::chrono::milliseconds(every),
                        [](boost::system::error_code ec) {
                            std::cerr << "preflightd: purge of idle limiter rows failed: " << ec.message() << std::endl;
                        }
                    );
                }
                params.extra_metrics = [p = pool.get(), pu = purge.get()] {
                    return pool_metrics(*p) + (pu != nullptr ? purge_metrics(pu->stats()) : std::string());
                };
            } else {
                if (data) clients::load_fact_data(*data, facts);
                stores = clients::make_memory_store_set(facts, preflight::clock::steady());
                params.extra_metrics = [stores] { return memory_store_metrics(stores); };
            }
            if (const std::string balance_url = cfg.get_string("server.balance_url"); !balance_url.empty()) {
                clients::http_balance_config bc;
                bc.api_key = cfg.get_string("server.balance_api_key");
                bc.timeout = std::chrono::milliseconds(cfg.get_int("server.balance_timeout_ms"));
                try {
                    bc = clients::parse_http_balance_url(balance_url, std::move(bc));
                } catch (const std::invalid_argument& e) {
                    const std::string key = "server.balance_url";
                    // Never repeat the URL's credentials or query (a token may sit in either).
                    throw preflight::config_error(
                        key,
                        cfg.source_of(key),
                        origin_of(cfg, key, config_file),
                        boost::json::serialize(boost::json::value(clients::http_balance_url_for_messages(balance_url))),
                        e.what()
                    );
                }
                // Memoized per (URL, fingerprint of the key): a library user asking again for the same provider
                // and key gets this client and its warm connections.
                balance_clients = std::make_unique<clients::http_balance_clients>(ctx.get_executor());
                auto source = balance_clients->get(bc);
                chain_metrics(params.extra_metrics, [src = source.get()] { return balance_metrics(*src); });
                stores.balance = std::move(source);
                std::cerr << "preflightd: balance gate asks the billing provider " << clients::http_balance_url(bc)
                          << (bc.api_key.empty() ? " (no API key)" : " (API key set)") << std::endl;
            }
            if (parts.pipeline_metrics) chain_metrics(params.extra_metrics, parts.pipeline_metrics);
            gates::event_hook on_event = [](const gates::gate_event& e) {
                std::cerr << "preflightd: " << gates::to_string(e.kind) << " gate=" << e.gate << ": " << e.reason
                          << std::endl;
            };
            gates::pipeline pipeline = parts.make_pipeline(cfg, stores, std::move(on_event));
            // One lease ttl: the admission store's (a lease neither released nor renewed is gone from both then).
            params.lease_ttl = std::chrono::milliseconds(cfg.get_int("admission.lease_ttl_ms"));
            params.max_leases = static_cast<std::size_t>(cfg.get_int("server.max_leases"));
            params.effective_config = cfg.to_json();
            the_api = std::make_unique<api>(std::move(pipeline), std::move(params));

            http_server_config http;
            http.address = cfg.get_string("server.listen");
            http.port = static_cast<std::uint16_t>(cfg.get_int("server.port"));
            const bool drained = serve_until_signal(
                io, *the_api, http, std::chrono::milliseconds(cfg.get_int("server.drain_timeout_ms")), std::cout
            );
            if (!drained) std::cerr << "preflightd: drain timed out; exiting anyway" << std::endl;
            std::cerr << "preflightd: stopped" << std::endl;
        } catch (const preflight::config_error& e) {
            std::cerr << "preflightd: " << e.what() << std::endl;
            code = 2;
        } catch (const std::exception& e) {
            std::cerr << "preflightd: " << e.what() << std::endl;
            code = 1;
        }
        io.stop();
        if (pool && the_api && the_api->leases().held() > 0) {
            // Held leases are left to the store's ttl (their executions may still run elsewhere). Destroying them
            // would queue releases that hold the pool past the io_context, so the api is deliberately not
            // destroyed at exit.
            (void)the_api.release();
        }
        // The api (leases: their queued releases are dropped unrun) and the pool go before the io_context.
        the_api.reset();
        balance_clients.reset();
        purge.reset();
        pool.reset();
    }
    return code;
}

}  // namespace preflight::server
