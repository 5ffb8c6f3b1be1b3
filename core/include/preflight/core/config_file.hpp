#pragma once

#include <preflight/core/config.hpp>

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace preflight {

/// The two file formats of the configuration file layer (`config_inputs::file`).
enum class config_file_format { json, yaml };

/// The format of a configuration file, from its extension: `.json` → json; `.yaml`/`.yml` → yaml (case-insensitive).
/// Throws `config_error` (key "", source file, origin `path`) naming the file for any other extension.
[[nodiscard]] config_file_format config_file_format_of(const std::string& path);

/// Parses the text of a JSON configuration file. Throws `config_error` naming `file_name` when it is not valid JSON.
[[nodiscard]] boost::json::value parse_config_json(std::string_view text, const std::string& file_name);

/// Parses the text of a YAML configuration file into the JSON value the file layer takes. Plain scalars follow the
/// YAML 1.2 core schema: `true`/`false` (also `True`, `TRUE`…) are booleans, `12`/`-3`/`0x1f`/`0o17` integers,
/// `1.5`/`1e3`/`.inf`/`.nan` numbers, everything else a string; a quoted scalar or `!!str` is always a string
/// (`"1"` stays a string), `!!int`/`!!float`/`!!bool` must match. Aliases (`*a`) stand for their anchored value.
/// Throws `config_error` naming `file_name` (and the line, 1-based, where yaml-cpp gives one, and the dotted key)
/// for: a syntax error, more than one document, a top level that is not a mapping, a duplicate key, a key that is
/// not a scalar, a merge key (`<<`), a null value (`key:` or `key: ~`), a sequence, any other tag. An empty file (or
/// comments only) is an empty configuration. No error repeats a value.
[[nodiscard]] boost::json::value parse_config_yaml(std::string_view text, const std::string& file_name);

}  // namespace preflight
