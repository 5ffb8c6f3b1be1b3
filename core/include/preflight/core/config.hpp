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

/// A bad configuration: unknown key, wrong type, out of range, a bad file. `what()` names the key path, the source
/// and, only for a known key that is not a secret, the offending value, e.g.
/// `config: rate_limit.write_burst = "0" from env PREFLIGHT_RATE_LIMIT_WRITE_BURST: must be >= 1`.
/// An unknown key, flag or `PREFLIGHT_…` variable is named without its value (`value()` is empty and `what()` has no
/// ` = …`): it may be a misspelt secret. A secret key's value is shown as "***".
class config_error : public std::runtime_error {
public:
    config_error(std::string key, config_source source, std::string origin, std::string value, std::string reason);
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] config_source source() const noexcept { return source_; }
    /// The spelling in its source: the file path, the environment variable name or the flag.
    [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
    /// The offending value as shown (JSON text; "***" for a secret), or empty when it is not shown.
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

    /// A second spelling of a group of keys, in the file layer only: a file key `spelled_prefix.rest` sets
    /// `key_prefix.rest` (e.g. `server.rate_limit` → `rate_limit`: `server: {rate_limit: {write_rps: 2}}` sets
    /// `rate_limit.write_rps`). Environment variables and flags keep the registered spelling only. A file that sets
    /// one key under both spellings is a `config_error` naming both. Throws `std::invalid_argument` for a malformed
    /// or duplicate alias or one that clashes with a registered key (keys added later are checked too).
    void add_file_alias(std::string spelled_prefix, std::string key_prefix);
    [[nodiscard]] const std::map<std::string, std::string, std::less<>>& file_aliases() const noexcept {
        return file_aliases_;
    }

    [[nodiscard]] static std::string env_name(std::string_view path);
    [[nodiscard]] static std::string flag_name(std::string_view path);

private:
    std::map<std::string, config_key, std::less<>> keys_;
    std::map<std::string, std::string, std::less<>> file_aliases_;
};

/// The raw inputs of one resolution. All optional. The environment layer is empty unless asked for: a default
/// `config_inputs{}` never reads the process environment, so a stray `PREFLIGHT_…` variable cannot change a test or
/// an embedded pipeline. Ask with `config_inputs::from_process_environment()` (what preflightd does), or give the
/// variables yourself (`getenv` and `environment`).
struct config_inputs {
    /// Inputs whose environment layer is this process's `PREFLIGHT_…` variables (`read_process_environment`).
    [[nodiscard]] static config_inputs from_process_environment();

    /// The file layer: a JSON object, nested (`{"rate_limit": {"write_rps": 2}}`) or with dotted keys; a YAML file
    /// maps onto the same value (`load_config_file`, core/config_file.hpp).
    std::optional<boost::json::value> file;
    /// Named in errors (e.g. the file path); "file" when empty.
    std::string file_name;
    /// Read the process environment for what `getenv` / `environment` leave unset: `std::getenv` and `environ`.
    /// Default false: no environment layer at all.
    bool read_process_environment = false;
    /// Looks up an environment variable; nullopt when unset. Empty function: `std::getenv` with
    /// `read_process_environment`, else no variable is set.
    std::function<std::optional<std::string>(const std::string&)> getenv;
    /// Every `PREFLIGHT_…` variable present (name=value), used to detect misspelt variables. nullopt: `environ` with
    /// `read_process_environment`, else none.
    std::optional<std::vector<std::string>> environment;
    /// Command-line arguments (without argv[0]): `--key=value` or `--key value`; booleans also as bare `--key`.
    std::vector<std::string> args;
};

/// Reads and parses a configuration file, its format chosen by the extension: `.json` JSON, `.yaml`/`.yml` YAML
/// (core/config_file.hpp has the YAML rules). Throws `config_error` (source file, origin `path`) for another
/// extension, a file that cannot be read, or one that does not parse (naming the line where the parser gives one).
[[nodiscard]] boost::json::value load_config_file(const std::string& path);

/// The effective configuration: every registered key with its value and source.
class config {
public:
    /// Resolves every registered key: flag > env > file > default. Throws `config_error` for an unknown file key,
    /// a key set twice in the file, an unknown flag, an argument that is not a flag, an unknown
    /// `PREFLIGHT_<GROUP>_…` variable whose group is registered, a value of the wrong type, or a value out of bounds.
    /// Variables of unregistered groups (e.g. `PREFLIGHT_TEST_PG_URL`) are ignored. The environment is read only
    /// when `inputs` ask for it (see `config_inputs`).
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
