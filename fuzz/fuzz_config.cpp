// Fuzz target: configuration parse + resolve (core/config.hpp) over the keys of limits::register_config.
//
// Input: <file JSON> NUL <environment, one NAME=VALUE per line> NUL <arguments, one per line>.
// An empty first part means "no file". Acceptable outcomes: a JSON parse error (the path `load_config_file`
// turns into `config_error`), `config_error`, or a configuration whose every value has its key's type and
// bounds and from which `limits::settings_from` reads without throwing.

#include "fuzz_check.hpp"
#include <preflight/core/config.hpp>
#include <preflight/limits/limits_config.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <exception>

namespace {

using preflight::fuzz::finding;
using preflight::fuzz::require;

const preflight::config_registry& registry() {
    static const preflight::config_registry reg = [] {
        preflight::config_registry r;
        preflight::limits::register_config(r);
        return r;
    }();
    return reg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parts = preflight::fuzz::split(input, '\0');
    parts.resize(3);

    preflight::config_inputs in;
    in.file_name = "fuzz.json";
    if (!parts[0].empty()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(parts[0], ec);  // the parse load_config_file does
        if (ec) return 0;
        in.file = std::move(v);
    }
    std::vector<std::string> env;
    for (auto& line : preflight::fuzz::split(parts[1], '\n')) {
        if (!line.empty()) env.push_back(std::move(line));
    }
    in.environment = env;
    in.getenv = [env](const std::string& name) -> std::optional<std::string> {
        for (const auto& var : env) {
            if (var.size() > name.size() && var.compare(0, name.size(), name) == 0 && var[name.size()] == '=') {
                return var.substr(name.size() + 1);
            }
        }
        return std::nullopt;
    };
    if (!parts[2].empty()) in.args = preflight::fuzz::split(parts[2], '\n');

    try {
        const auto cfg = preflight::config::resolve(registry(), in);
        for (const auto& [path, key] : registry().keys()) {
            const auto& v = cfg.get(path);
            switch (key.type) {
                case preflight::config_type::integer: require(v.is_int64(), "integer key not int64: " + path); break;
                case preflight::config_type::number: require(v.is_double(), "number key not double: " + path); break;
                case preflight::config_type::boolean: require(v.is_bool(), "boolean key not bool: " + path); break;
                case preflight::config_type::string: require(v.is_string(), "string key not string: " + path); break;
            }
            if (v.is_number()) {
                const double d = v.to_number<double>();
                if (key.min) {
                    require(key.min_exclusive ? d > *key.min : d >= *key.min, "value under the lower bound: " + path);
                }
                if (key.max) require(d <= *key.max, "value over the upper bound: " + path);
            }
        }
        const auto settings = preflight::limits::settings_from(cfg);
        // The settings must carry the configured values, not truncated ones.
        require(
            static_cast<std::int64_t>(settings.invocation.host_concurrency) ==
                cfg.get_int("invocation.host_concurrency"),
            "invocation.host_concurrency truncated by settings_from"
        );
        require(
            static_cast<std::int64_t>(settings.rate_limit.max_keys) == cfg.get_int("rate_limit.max_keys"),
            "rate_limit.max_keys truncated by settings_from"
        );
        // The fixed window converts its period to int64 nanoseconds.
        require(
            settings.backstop.period.count() <=
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::nanoseconds::max()).count(),
            "backstop.period_s overflows the fixed window's nanoseconds"
        );
        const auto printed = boost::json::serialize(cfg.to_json());
        boost::system::error_code ec;
        (void)boost::json::parse(printed, ec);
        require(!ec, "config::to_json() is not valid JSON: " + printed);
    } catch (const preflight::config_error& e) {
        require(std::string_view(e.what()).starts_with("config: "), "config_error text without its prefix");
    } catch (const std::exception& e) {
        finding(std::string("config::resolve threw something other than config_error: ") + e.what());
    }
    return 0;
}
