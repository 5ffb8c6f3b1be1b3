#include <preflight/clients/pg_gather_options.hpp>
#include <preflight/server/server_config.hpp>

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace preflight::server {

namespace json = boost::json;

void register_server_config(preflight::config_registry& registry) {
    auto add = [&](std::string path,
                   config_type t,
                   json::value def,
                   std::string desc,
                   std::optional<double> min = {},
                   std::optional<double> max = {},
                   bool secret = false) {
        config_key k;
        k.path = std::move(path);
        k.type = t;
        k.default_value = std::move(def);
        k.description = std::move(desc);
        k.min = min;
        k.max = max;
        k.secret = secret;
        registry.add(std::move(k));
    };
    add("server.listen", config_type::string, "127.0.0.1", "address to listen on");
    add("server.port", config_type::integer, 8080, "TCP port (0 = any free port)", 0, 65535);
    add("server.threads", config_type::integer, 0, "io_context threads (0 = hardware threads)", 0, 256);
    add("server.data", config_type::string, "", "fact data JSON file loaded into the stores (\"\" = none)");
    add("server.postgres_url",
        config_type::string,
        "",
        "Postgres URL: migrate and use the Postgres stores (\"\" = in-memory stores)",
        {},
        {},
        true);
    add("server.pool_size", config_type::integer, 8, "Postgres connections", 1, 1000);
    add("server.purge_interval_ms",
        config_type::integer,
        60000,
        "with Postgres: how often idle windows and buckets, expired leases and forgotten run budgets are deleted "
        "(0 = never)",
        0,
        {});
    add("server.pg_batch_writes",
        config_type::boolean,
        true,
        "with pipeline.stateful_call separate: batch the limit stores' own writes of one turn into one Postgres call "
        "(clients::pg_limit_batch); the default ordered call does not use it");
    add("server.pg_gather_reads",
        config_type::boolean,
        true,
        "gather the combined reads of concurrent requests into shared Postgres calls under load "
        "(clients::pg_subject_facts_source)");
    add("server.pg_batch_in_flight",
        config_type::integer,
        static_cast<std::int64_t>(clients::pg_gather_options{}.max_in_flight),
        "calls in flight at once, for the batched writes and for the gathered reads each; while this many are, the "
        "next call gathers the statements of the requests that follow until one finishes",
        1,
        1024);
    add("server.pg_batch_max_per_call",
        config_type::integer,
        static_cast<std::int64_t>(clients::pg_gather_options{}.max_per_call),
        "writes of one kind, or reads, per gathered call, at most",
        1,
        4096);
    add("server.max_leases", config_type::integer, 100000, "bound of the lease registry", 1, {});
    add("server.drain_timeout_ms", config_type::integer, 10000, "how long SIGTERM waits for in-flight requests", 0, {});
    add("server.balance_url",
        config_type::string,
        "",
        "HTTP billing provider for the balance gate, http://HOST[:PORT][/PATH/] (\"\" = the stores' balance source)");
    add("server.balance_api_key",
        config_type::string,
        "",
        "API key sent to the billing provider as a Bearer token",
        {},
        {},
        true);
    add("server.balance_timeout_ms",
        config_type::integer,
        2000,
        "whole-call timeout of one billing provider request (connect included)",
        1,
        {});
    // The gateway's config files nest the rate-limit block under server: (the flags stay --rate-limit-…).
    registry.add_file_alias("server.rate_limit", "rate_limit");
}

command_line translate_command_line(int argc, const char* const* argv) {
    command_line out;
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> aliases{{
        {"--listen", "--server-listen"},
        {"--balance-url", "--server-balance-url"},
        {"--port", "--server-port"},
        {"--threads", "--server-threads"},
        {"--data", "--server-data"},
        {"--postgres", "--server-postgres-url"},
    }};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        const auto eq = arg.find('=');
        const std::string name = arg.substr(0, eq);
        if (name == "--config") {
            if (eq != std::string::npos) {
                out.config_file = arg.substr(eq + 1);
            } else if (i + 1 < argc) {
                out.config_file = argv[++i];
            } else {
                throw config_error("", config_source::flag, "--config", "\"\"", "needs a file name");
            }
            if (out.config_file.empty()) {
                throw config_error("", config_source::flag, "--config", "\"\"", "needs a file name");
            }
            continue;
        }
        for (const auto& [from, to] : aliases) {
            if (name == from) {
                arg = std::string(to) + (eq == std::string::npos ? std::string() : arg.substr(eq));
                break;
            }
        }
        out.args.push_back(std::move(arg));
    }
    return out;
}

}  // namespace preflight::server
