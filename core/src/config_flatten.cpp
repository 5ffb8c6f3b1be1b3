#include "config_flatten.hpp"

namespace preflight::detail {

namespace {

// The registered spelling of a file path: a file alias's prefix replaced by its target.
std::string canonical(const config_registry& reg, const std::string& spelled) {
    for (const auto& [from, to] : reg.file_aliases()) {
        if (spelled == from || spelled.starts_with(from + ".")) return to + spelled.substr(from.size());
    }
    return spelled;
}

// An example key below `prefix` (registered or reached through an alias), or "" when there is none.
std::string key_below(const config_registry& reg, const std::string& prefix) {
    for (const auto& [p, key] : reg.keys()) {
        if (p.starts_with(prefix + ".")) return p;
    }
    for (const auto& [from, to] : reg.file_aliases()) {
        if (from.starts_with(prefix + ".")) return from;
    }
    return std::string();
}

void flatten(
    const config_registry& reg,
    const boost::json::object& obj,
    const std::string& prefix,
    const std::string& file_name,
    flat_file& out
) {
    for (const auto& [k, v] : obj) {
        const std::string spelled = prefix.empty() ? std::string(k) : prefix + "." + std::string(k);
        const std::string path = canonical(reg, spelled);
        if (reg.find(path) != nullptr) {
            if (auto [it, fresh] = out.try_emplace(path, file_value{spelled, v}); !fresh) {
                const std::string both = it->second.spelled == spelled
                                             ? "twice as " + spelled
                                             : "both as " + it->second.spelled + " and as " + spelled;
                throw config_error(path, config_source::file, file_name, "", "is set " + both + "; keep one");
            }
            continue;
        }
        const std::string below = key_below(reg, path);
        if (below.empty()) throw config_error(spelled, config_source::file, file_name, "", "unknown key");
        if (!v.is_object()) {
            throw config_error(
                spelled, config_source::file, file_name, "", "must be an object of keys (such as " + below + ")"
            );
        }
        flatten(reg, v.get_object(), spelled, file_name, out);
    }
}

}  // namespace

flat_file flatten_file(
    const config_registry& registry, const boost::json::value& document, const std::string& file_name
) {
    if (!document.is_object()) {
        throw config_error("", config_source::file, file_name, "", "must be an object (a mapping) of keys");
    }
    flat_file out;
    flatten(registry, document.get_object(), "", file_name, out);
    return out;
}

}  // namespace preflight::detail
