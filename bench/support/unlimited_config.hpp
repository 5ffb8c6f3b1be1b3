#pragma once
// The default pipeline's configuration with every limit effectively infinite and usage unlimited, for the
// workloads in which every preflight must be admitted (W1's default-pipeline case, W6).

#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace preflight::bench {

/// As below with the members of `overrides` set over (or added to) the unlimited configuration file.
inline preflight::config unlimited_default_pipeline_config(const boost::json::object& overrides) {
    namespace json = boost::json;
    preflight::config_registry reg;
    preflight::gates::register_default_pipeline_config(reg);
    json::object file;
    for (const char* tier : {"free", "pro", "team", "enterprise"}) file[std::string("usage.limits.") + tier] = 0;
    for (const char* prefix : {"rate_limit.", "rate_limit.pro.", "rate_limit.team.", "rate_limit.enterprise."}) {
        const std::string base = prefix;
        file[base + "read_rps"] = 1e12;
        file[base + "read_burst"] = 1e15;
        file[base + "write_rps"] = 1e12;
        file[base + "write_burst"] = 1e15;
    }
    file["backstop.max"] = std::int64_t{1} << 60;
    file["admission.max_concurrent"] = 1'000'000'000;
    for (const auto& [k, v] : overrides) file[k] = v;
    preflight::config_inputs in;
    in.file = json::value(file);
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    in.environment = std::vector<std::string>{};
    return preflight::config::resolve(reg, in);
}

inline preflight::config unlimited_default_pipeline_config() {
    return unlimited_default_pipeline_config({});
}

}  // namespace preflight::bench
