#pragma once

#include <preflight/core/config.hpp>

#include <boost/json/value.hpp>

#include <map>
#include <string>

namespace preflight::detail {

/// One value of the file layer: the registered key it sets (the map's key), its spelling in the file and the value.
struct file_value {
    std::string spelled;
    boost::json::value value;
};
using flat_file = std::map<std::string, file_value, std::less<>>;

/// Flattens a file document (nested objects and/or dotted keys) into registered keys, through the registry's file
/// aliases. Throws `config_error` (never showing a value) for an unknown key, a non-object where keys are expected,
/// and a key set twice (two spellings, or nested and dotted), naming both spellings.
[[nodiscard]] flat_file flatten_file(
    const config_registry& registry, const boost::json::value& document, const std::string& file_name
);

}  // namespace preflight::detail
