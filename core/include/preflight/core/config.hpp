#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

/// Where an effective configuration value came from. Precedence: flag > env > file > default.
enum class config_source { default_value, file, env, flag };

[[nodiscard]] std::string_view to_string(config_source s) noexcept;

/// The type of a configuration key. `integer` is a signed 64-bit integer; `number` a double.
enum class config_type { integer, number, boolean, string };

/// A bad configuration: unknown key, wrong type, out of range. `what()` names the key path, the source and the
/// offending value, e.g. `config: rate_limit.write_burst = "0" from env PREFLIGHT_RATE_LIMIT_WRITE_BURST: must be >=
/// 1`.
class config_error : public std::runtime_error {
public:
    config_error(std::string key, config_source source, std::string origin, std::string value, std::string reason);
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] config_source source() const noexcept { return source_; }
    /// The spelling in its source: the file path, the environment variable name or the flag.
    [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
    [[nodiscard]] const std::string& value() const noexcept { return value_; }
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
    std::string key_;
    config_source source_;
    std::string origin_;
    std::string value_;
    std::string reason_;
};

/// One typed key. `path` is dotted lower_snake_case (`rate_limit.write_rps`); its environment variable is
/// `PREFLIGHT_` + upper-case path with '.' → '_' (`PREFLIGHT_RATE_LIMIT_WRITE_RPS`); its flag is `--` + path with
/// '.' and '_' → '-' (`--rate-limit-write-rps`). Bounds apply to integer and number keys.
struct config_key {
    std::string path;
    config_type type = config_type::string;
    boost::json::value default_value;
    std::string description;
    std::optional<double> min;   ///< inclusive lower bound
    std::optional<double> max;   ///< inclusive upper bound
    bool min_exclusive = false;  ///< the lower bound is exclusive (value > min)
    /// A secret (password, API key, connection string with a password): `config::to_json()` prints "***" for its
    /// value and a `config_error` about it never repeats the offending value.
    bool secret = false;
};

/// Shorthands for registering keys (used by every module's `register_config`).
[[nodiscard]] config_key int_key(
    std::string path, std::int64_t def, double min, std::string description, std::optional<double> max = std::nullopt
);
[[nodiscard]] config_key number_key(
    std::string path, double def, double min, bool min_exclusive, std::string description
);
[[nodiscard]] config_key bool_key(std::string path, bool def, std::string description);

/// The set of known keys. Modules register theirs (limits: `preflight::limits::register_config`).
/// Not thread-safe while being filled; read-only afterwards.
class config_registry {
public:
    /// Adds a key. Throws `std::invalid_argument` for a duplicate or malformed path or a default of the wrong type.
    void add(config_key key);
    [[nodiscard]] const config_key* find(std::string_view path) const noexcept;
    [[nodiscard]] const std::map<std::string, config_key, std::less<>>& keys() const noexcept { return keys_; }

    [[nodiscard]] static std::string env_name(std::string_view path);
    [[nodiscard]] static std::string flag_name(std::string_view path);

private:
    std::map<std::string, config_key, std::less<>> keys_;
};

/// The raw inputs of one resolution. All optional.
struct config_inputs {
    /// The file layer: a JSON object, nested (`{"rate_limit": {"write_rps": 2}}`) or with dotted keys.
    std::optional<boost::json::value> file;
    /// Named in errors (e.g. the file path); "file" when empty.
    std::string file_name;
    /// Looks up an environment variable; nullopt when unset. Default (empty function): `std::getenv`.
    std::function<std::optional<std::string>(const std::string&)> getenv;
    /// Every `PREFLIGHT_…` variable present (name=value), used to detect misspelt variables. Default: `environ`.
    std::optional<std::vector<std::string>> environment;
    /// Command-line arguments (without argv[0]): `--key=value` or `--key value`; booleans also as bare `--key`.
    std::vector<std::string> args;
};

/// Reads and parses a JSON file; throws `config_error` (key "", source file) when it cannot be read or parsed.
[[nodiscard]] boost::json::value load_config_file(const std::string& path);

/// The effective configuration: every registered key with its value and source.
class config {
public:
    /// Resolves every registered key: flag > env > file > default. Throws `config_error` for an unknown file key,
    /// an unknown flag, an unknown `PREFLIGHT_<GROUP>_…` variable whose group is registered, a value of the wrong
    /// type, or a value out of bounds. Variables of unregistered groups (e.g. `PREFLIGHT_TEST_PG_URL`) are ignored.
    [[nodiscard]] static config resolve(const config_registry& registry, const config_inputs& inputs);

    [[nodiscard]] const boost::json::value& get(std::string_view path) const;  ///< throws std::out_of_range
    [[nodiscard]] std::int64_t get_int(std::string_view path) const;
    [[nodiscard]] double get_number(std::string_view path) const;
    [[nodiscard]] bool get_bool(std::string_view path) const;
    [[nodiscard]] std::string get_string(std::string_view path) const;
    [[nodiscard]] config_source source_of(std::string_view path) const;

    /// `{"rate_limit.write_rps": {"value": 1.0, "source": "default"}, …}`, keys sorted. The value of a key
    /// registered with `secret = true` is printed as "***" (an empty secret as "").
    [[nodiscard]] boost::json::value to_json() const;

private:
    struct entry {
        boost::json::value value;
        config_source source = config_source::default_value;
        bool secret = false;
    };
    const entry& at(std::string_view path) const;
    std::map<std::string, entry, std::less<>> values_;
};

}  // namespace preflight
