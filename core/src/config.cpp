#include "config_flatten.hpp"
#include <preflight/core/config.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <unistd.h>

namespace preflight {

std::string_view to_string(config_source s) noexcept {
    switch (s) {
        case config_source::default_value: return "default";
        case config_source::file: return "file";
        case config_source::env: return "env";
        case config_source::flag: return "flag";
    }
    return "unknown";
}

config_error::config_error(
    std::string key, config_source source, std::string origin, std::string value, std::string reason
)
    : std::runtime_error(
          "config: " + (key.empty() ? std::string("<document>") : key) +
          (value.empty() ? std::string() : " = " + value) + " from " + std::string(to_string(source)) +
          (origin.empty() ? std::string() : " " + origin) + ": " + reason
      ),
      key_{std::move(key)},
      source_{source},
      origin_{std::move(origin)},
      value_{std::move(value)},
      reason_{std::move(reason)} {}

namespace {

bool valid_path(std::string_view p) {
    if (p.empty() || p.front() == '.' || p.back() == '.') return false;
    for (char c : p) {
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
              c == '.')) {
            return false;
        }
    }
    return p.find("..") == std::string_view::npos;
}

bool type_matches(config_type t, const boost::json::value& v) {
    switch (t) {
        case config_type::integer: return v.is_int64() || (v.is_uint64() && v.get_uint64() <= INT64_MAX);
        case config_type::number: return v.is_number();
        case config_type::boolean: return v.is_bool();
        case config_type::string: return v.is_string();
    }
    return false;
}

std::string_view type_name(config_type t) {
    switch (t) {
        case config_type::integer: return "an integer";
        case config_type::number: return "a number";
        case config_type::boolean: return "a boolean (true/false)";
        case config_type::string: return "a string";
    }
    return "?";
}

std::string quoted(std::string_view s) {
    return boost::json::serialize(boost::json::value(s));
}

constexpr std::string_view redacted = "\"***\"";

// The offending value as shown in an error: never the text of a secret key.
std::string shown(const config_key& k, const std::string& text) {
    return k.secret ? std::string(redacted) : text;
}

std::string fmt_bound(double d) {
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
    std::ostringstream o;
    o << d;
    return o.str();
}

// Normalises to the key's type (integers as int64, numbers as double) and checks the bounds; returns the reason
// when the value is bad.
std::optional<std::string> check(const config_key& k, boost::json::value& v) {
    if (!type_matches(k.type, v)) return "must be " + std::string(type_name(k.type));
    if (k.type == config_type::integer && v.is_uint64()) v = static_cast<std::int64_t>(v.get_uint64());
    if (k.type == config_type::number) v = v.to_number<double>();
    if (k.type == config_type::integer || k.type == config_type::number) {
        const double d = v.is_int64() ? static_cast<double>(v.get_int64()) : v.get_double();
        if (!std::isfinite(d)) return std::string("must be finite");
        if (k.min) {
            if (k.min_exclusive && !(d > *k.min)) return "must be > " + fmt_bound(*k.min);
            if (!k.min_exclusive && !(d >= *k.min)) return "must be >= " + fmt_bound(*k.min);
        }
        if (k.max && !(d <= *k.max)) return "must be <= " + fmt_bound(*k.max);
    }
    return std::nullopt;
}

// Parses the text of an environment variable or flag into the key's type.
std::optional<boost::json::value> parse_text(config_type t, std::string_view s) {
    switch (t) {
        case config_type::integer: {
            std::int64_t v = 0;
            auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
            return boost::json::value(v);
        }
        case config_type::number: {
            double v = 0;
            auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || !std::isfinite(v)) return std::nullopt;
            return boost::json::value(v);
        }
        case config_type::boolean:
            if (s == "true" || s == "1") return boost::json::value(true);
            if (s == "false" || s == "0") return boost::json::value(false);
            return std::nullopt;
        case config_type::string: return boost::json::value(s);
    }
    return std::nullopt;
}

std::string upper(std::string_view s) {
    std::string r(s);
    for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return r;
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

}  // namespace

void config_registry::add(config_key key) {
    if (!valid_path(key.path)) throw std::invalid_argument("config key path '" + key.path + "' is malformed");
    if (keys_.contains(key.path)) throw std::invalid_argument("config key '" + key.path + "' is registered twice");
    for (const auto& [p, k] : keys_) {
        if (p.starts_with(key.path + ".") || key.path.starts_with(p + ".")) {
            throw std::invalid_argument("config key '" + key.path + "' clashes with '" + p + "'");
        }
    }
    for (const auto& [from, to] : file_aliases_) {
        if (key.path == from || key.path.starts_with(from + ".")) {
            throw std::invalid_argument("config key '" + key.path + "' is under the file alias '" + from + "'");
        }
    }
    if (auto bad = check(key, key.default_value)) {
        throw std::invalid_argument(
            "config key '" + key.path + "': default " + boost::json::serialize(key.default_value) + " " + *bad
        );
    }
    std::string path = key.path;
    keys_.emplace(std::move(path), std::move(key));
}

void config_registry::add_file_alias(std::string spelled_prefix, std::string key_prefix) {
    if (!valid_path(spelled_prefix) || !valid_path(key_prefix)) {
        throw std::invalid_argument("config file alias '" + spelled_prefix + "' → '" + key_prefix + "' is malformed");
    }
    if (file_aliases_.contains(spelled_prefix)) {
        throw std::invalid_argument("config file alias '" + spelled_prefix + "' is registered twice");
    }
    for (const auto& [p, k] : keys_) {
        if (p == spelled_prefix || p.starts_with(spelled_prefix + ".")) {
            throw std::invalid_argument("config file alias '" + spelled_prefix + "' clashes with the key '" + p + "'");
        }
    }
    file_aliases_.emplace(std::move(spelled_prefix), std::move(key_prefix));
}

const config_key* config_registry::find(std::string_view path) const noexcept {
    auto it = keys_.find(path);
    return it == keys_.end() ? nullptr : &it->second;
}

std::string config_registry::env_name(std::string_view path) {
    std::string r = "PREFLIGHT_" + upper(path);
    for (char& c : r) {
        if (c == '.') c = '_';
    }
    return r;
}

std::string config_registry::flag_name(std::string_view path) {
    std::string r = "--" + std::string(path);
    for (char& c : r) {
        if (c == '.' || c == '_') c = '-';
    }
    return r;
}

config_inputs config_inputs::from_process_environment() {
    config_inputs in;
    in.read_process_environment = true;
    return in;
}

config config::resolve(const config_registry& registry, const config_inputs& inputs) {
    config cfg;
    for (const auto& [path, key] : registry.keys())
        cfg.values_[path] = entry{key.default_value, config_source::default_value, key.secret};

    const std::string file_name = inputs.file_name.empty() ? std::string("file") : inputs.file_name;
    // 1. file
    if (inputs.file) {
        for (auto& [path, fv] : detail::flatten_file(registry, *inputs.file, file_name)) {
            const config_key& k = *registry.find(path);
            const std::string as_written = boost::json::serialize(fv.value);  // before check() normalises it
            if (auto bad = check(k, fv.value)) {
                throw config_error(fv.spelled, config_source::file, file_name, shown(k, as_written), *bad);
            }
            cfg.values_[path] = entry{std::move(fv.value), config_source::file, k.secret};
        }
    }

    // 2. environment: only the one the inputs give (none by default; `read_process_environment`: this process's)
    std::map<std::string, std::string, std::less<>> env_to_path;
    std::vector<std::string> groups;
    for (const auto& [path, key] : registry.keys()) {
        env_to_path[config_registry::env_name(path)] = path;
        std::string g = "PREFLIGHT_" + upper(path.substr(0, path.find('.'))) + "_";
        if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    }
    std::vector<std::string> present;
    if (inputs.environment) {
        present = *inputs.environment;
    } else if (inputs.read_process_environment) {
        for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
            std::string_view s(*e);
            if (s.starts_with("PREFLIGHT_")) present.emplace_back(s);
        }
    }
    for (const auto& var : present) {
        const auto eq = var.find('=');
        const std::string name = var.substr(0, eq);
        if (env_to_path.contains(name)) continue;
        for (const auto& g : groups) {
            if (name.starts_with(g)) {  // named, its value never shown (it may be a misspelt secret)
                throw config_error(lower(name.substr(10)), config_source::env, name, "", "unknown key");
            }
        }
    }
    for (const auto& [name, path] : env_to_path) {
        std::optional<std::string> text;
        if (inputs.getenv) {
            text = inputs.getenv(name);
        } else if (const char* raw = inputs.read_process_environment ? std::getenv(name.c_str()) : nullptr) {
            text = std::string(raw);
        }
        if (!text) continue;
        const config_key& k = *registry.find(path);
        auto parsed = parse_text(k.type, *text);
        if (!parsed)
            throw config_error(
                path, config_source::env, name, shown(k, quoted(*text)), "must be " + std::string(type_name(k.type))
            );
        if (auto bad = check(k, *parsed)) {
            throw config_error(path, config_source::env, name, shown(k, quoted(*text)), *bad);
        }
        cfg.values_[path] = entry{std::move(*parsed), config_source::env, k.secret};
    }

    // 3. flags
    std::map<std::string, std::string, std::less<>> flag_to_path;
    for (const auto& [path, key] : registry.keys()) flag_to_path[config_registry::flag_name(path)] = path;
    for (std::size_t i = 0; i < inputs.args.size(); ++i) {
        const std::string& arg = inputs.args[i];
        const auto eq = arg.find('=');
        const std::string flag = arg.substr(0, eq);
        if (!arg.starts_with("--")) {  // not named: a stray argument may be a secret meant for a flag
            throw config_error(
                "",
                config_source::flag,
                "argument " + std::to_string(i + 1),
                "",
                "is not a flag (--key=value or --key value)"
            );
        }
        auto it = flag_to_path.find(flag);
        if (it == flag_to_path.end()) {  // named, its value never shown (it may be a misspelt secret)
            std::string path = flag.substr(2);
            for (char& c : path) {
                if (c == '-') c = '_';
            }
            throw config_error(path, config_source::flag, flag, "", "unknown flag");
        }
        const config_key& k = *registry.find(it->second);
        std::string text;
        if (eq != std::string::npos) {
            text = arg.substr(eq + 1);
        } else if (k.type == config_type::boolean &&
                   (i + 1 >= inputs.args.size() || parse_text(config_type::boolean, inputs.args[i + 1]) == std::nullopt)) {
            text = "true";
        } else if (i + 1 < inputs.args.size()) {
            text = inputs.args[++i];
        } else {
            throw config_error(it->second, config_source::flag, flag, "", "needs a value");
        }
        auto parsed = parse_text(k.type, text);
        if (!parsed)
            throw config_error(
                it->second,
                config_source::flag,
                flag,
                shown(k, quoted(text)),
                "must be " + std::string(type_name(k.type))
            );
        if (auto bad = check(k, *parsed)) {
            throw config_error(it->second, config_source::flag, flag, shown(k, quoted(text)), *bad);
        }
        cfg.values_[it->second] = entry{std::move(*parsed), config_source::flag, k.secret};
    }
    return cfg;
}

const config::entry& config::at(std::string_view path) const {
    auto it = values_.find(path);
    if (it == values_.end()) throw std::out_of_range("config key '" + std::string(path) + "' is not registered");
    return it->second;
}

const boost::json::value& config::get(std::string_view path) const {
    return at(path).value;
}
std::int64_t config::get_int(std::string_view path) const {
    return at(path).value.as_int64();
}
double config::get_number(std::string_view path) const {
    return at(path).value.to_number<double>();
}
bool config::get_bool(std::string_view path) const {
    return at(path).value.as_bool();
}
std::string config::get_string(std::string_view path) const {
    return std::string(at(path).value.as_string());
}
config_source config::source_of(std::string_view path) const {
    return at(path).source;
}

boost::json::value config::to_json() const {
    boost::json::object o;
    for (const auto& [path, e] : values_) {
        boost::json::value shown_value = e.value;
        if (e.secret && !(e.value.is_string() && e.value.get_string().empty())) shown_value = "***";
        o[path] = boost::json::object{{"value", std::move(shown_value)}, {"source", to_string(e.source)}};
    }
    return o;
}

config_key int_key(std::string path, std::int64_t def, double min, std::string description, std::optional<double> max) {
    config_key k;
    k.path = std::move(path);
    k.type = config_type::integer;
    k.default_value = def;
    k.min = min;
    k.max = max;
    k.description = std::move(description);
    return k;
}

config_key number_key(std::string path, double def, double min, bool min_exclusive, std::string description) {
    config_key k;
    k.path = std::move(path);
    k.type = config_type::number;
    k.default_value = def;
    k.min = min;
    k.min_exclusive = min_exclusive;
    k.description = std::move(description);
    return k;
}

config_key bool_key(std::string path, bool def, std::string description) {
    config_key k;
    k.path = std::move(path);
    k.type = config_type::boolean;
    k.default_value = def;
    k.description = std::move(description);
    return k;
}

}  // namespace preflight
