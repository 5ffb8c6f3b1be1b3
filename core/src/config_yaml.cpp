// YAML configuration files → the JSON value of the file layer (core/config_file.hpp documents the rules).
#include <preflight/core/config_file.hpp>

#include <boost/json/object.hpp>

// g++ 12 warns inside yaml-cpp 0.7's node/impl.h (a false -Wdangling-pointer once inlined at -O2).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <regex>

namespace preflight {

namespace {

namespace json = boost::json;

constexpr std::string_view tag_prefix = "tag:yaml.org,2002:";

[[noreturn]] void yaml_fail(const std::string& file_name, const std::string& key, const std::string& reason) {
    throw config_error(key, config_source::file, file_name, "", reason);
}

std::string yaml_line(const YAML::Mark& m) {
    if (m.is_null() || m.line < 0) return std::string();
    return " (line " + std::to_string(m.line + 1) + ")";
}

std::string yaml_key(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
}

std::optional<json::value> integer_of(std::string_view text, int base) {
    bool negative = false;
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (base != 10) text.remove_prefix(2);  // 0x / 0o
    std::uint64_t magnitude = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude, base);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative) {
        if (magnitude <= max) return json::value(static_cast<std::int64_t>(magnitude));
        return json::value(magnitude);
    }
    if (magnitude <= max) return json::value(-static_cast<std::int64_t>(magnitude));
    if (magnitude == max + 1) return json::value(std::numeric_limits<std::int64_t>::min());
    return std::nullopt;
}

std::optional<json::value> number_of(const std::string& text) {
    static const std::regex inf("[-+]?\\.(inf|Inf|INF)");
    static const std::regex nan("\\.(nan|NaN|NAN)");
    if (std::regex_match(text, inf)) {
        return json::value(
            text.front() == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity()
        );
    }
    if (std::regex_match(text, nan)) return json::value(std::numeric_limits<double>::quiet_NaN());
    std::string_view t = text;
    if (t.starts_with('+')) t.remove_prefix(1);
    double d = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec != std::errc{} || end != t.data() + t.size()) return std::nullopt;
    return json::value(d);
}

enum class scalar_kind { null, boolean, integer, number, string };

// The YAML 1.2 core schema's resolution of a plain scalar.
scalar_kind kind_of_plain(const std::string& s) {
    static const std::regex null_re("~|null|Null|NULL|");
    static const std::regex bool_re("true|True|TRUE|false|False|FALSE");
    static const std::regex int_re("[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+");
    static const std::regex float_re(
        "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)"
    );
    if (std::regex_match(s, null_re)) return scalar_kind::null;
    if (std::regex_match(s, bool_re)) return scalar_kind::boolean;
    if (std::regex_match(s, int_re)) return scalar_kind::integer;
    if (std::regex_match(s, float_re)) return scalar_kind::number;
    return scalar_kind::string;
}

struct converter {
    const std::string& file_name;

    [[noreturn]] void null_value(const std::string& key, const YAML::Mark& at) const {
        yaml_fail(file_name, key, "has no value (null)" + yaml_line(at) + "; leave the key out to keep its default");
    }

    json::value scalar(const YAML::Node& n, const std::string& key, const YAML::Mark& at) const {
        const std::string& text = n.Scalar();
        const std::string& tag = n.Tag();
        if (tag == "!" || tag == std::string(tag_prefix) + "str") return json::value(text);
        if (tag != "?" && !tag.starts_with(tag_prefix))
            yaml_fail(file_name, key, "has an unsupported tag" + yaml_line(at));
        const scalar_kind kind = kind_of_plain(text);
        const std::string wanted = tag == "?" ? std::string() : tag.substr(tag_prefix.size());
        auto require = [&](std::string_view name, bool ok) {
            if (wanted == name && !ok) yaml_fail(file_name, key, "is not a valid !!" + wanted + yaml_line(at));
        };
        require("int", kind == scalar_kind::integer);
        require("float", kind == scalar_kind::integer || kind == scalar_kind::number);
        require("bool", kind == scalar_kind::boolean);
        require("null", kind == scalar_kind::null);
        if (!wanted.empty() && wanted != "int" && wanted != "float" && wanted != "bool" && wanted != "null") {
            yaml_fail(file_name, key, "has an unsupported tag" + yaml_line(at));
        }
        switch (kind) {
            case scalar_kind::null: null_value(key, at);
            case scalar_kind::boolean: return json::value(text[0] == 't' || text[0] == 'T');
            case scalar_kind::integer: {
                const int base = text.starts_with("0x") ? 16 : text.starts_with("0o") ? 8 : 10;
                if (auto v = integer_of(text, base)) {
                    if (wanted == "float") return json::value(v->to_number<double>());
                    return *v;
                }
                yaml_fail(file_name, key, "is an integer out of the 64-bit range" + yaml_line(at));
            }
            case scalar_kind::number:
                if (auto v = number_of(text)) return *v;
                yaml_fail(file_name, key, "is a number out of range" + yaml_line(at));
            case scalar_kind::string: break;
        }
        return json::value(text);
    }

    json::value value(const YAML::Node& n, const std::string& key, const YAML::Mark& at) const {
        switch (n.Type()) {
            case YAML::NodeType::Map: return mapping(n, key);
            case YAML::NodeType::Scalar: return scalar(n, key, at);
            case YAML::NodeType::Sequence:
                yaml_fail(file_name, key, "is a sequence" + yaml_line(at) + "; no configuration key takes a list");
            case YAML::NodeType::Null:
            case YAML::NodeType::Undefined: break;
        }
        null_value(key, at);
    }

    json::value mapping(const YAML::Node& n, const std::string& prefix) const {
        json::object out;
        std::map<std::string, YAML::Mark> seen;
        for (auto it = n.begin(); it != n.end(); ++it) {
            // Copies: the iterator's `->` points into a temporary pair, so a reference to its members dangles.
            const YAML::Node k = it->first;
            const YAML::Node v = it->second;
            if (!k.IsScalar()) {
                yaml_fail(
                    file_name, prefix, "has a key that is not a scalar" + yaml_line(k.Mark()) + "; keys are names"
                );
            }
            const std::string name = k.Scalar();
            const std::string key = yaml_key(prefix, name);
            if (name == "<<" && k.Tag() == "?") {
                yaml_fail(
                    file_name, key, "is a merge key" + yaml_line(k.Mark()) + ", which is not supported; use an alias"
                );
            }
            if (auto [first, fresh] = seen.emplace(name, k.Mark()); !fresh) {
                yaml_fail(
                    file_name,
                    key,
                    "is a duplicate key" + yaml_line(k.Mark()) + ", first set" +
                        (first->second.is_null() ? std::string() : " at line " + std::to_string(first->second.line + 1))
                );
            }
            out[name] = value(v, key, k.Mark());
        }
        return out;
    }
};

}  // namespace

json::value parse_config_yaml(std::string_view text, const std::string& file_name) {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::ParserException& e) {
        // yaml-cpp's parser messages are fixed texts (they never quote the input).
        const std::string where = e.mark.is_null() ? std::string()
                                                   : " at line " + std::to_string(e.mark.line + 1) + ", column " +
                                                         std::to_string(e.mark.column + 1);
        yaml_fail(file_name, "", "is not valid YAML" + where + ": " + e.msg);
    } catch (const YAML::Exception& e) {
        yaml_fail(file_name, "", "is not valid YAML: " + e.msg);
    }
    if (docs.empty()) return json::object{};
    if (docs.size() > 1) {
        yaml_fail(
            file_name,
            "",
            "holds " + std::to_string(docs.size()) + " YAML documents (the second" + yaml_line(docs[1].Mark()) +
                "); one is expected"
        );
    }
    const YAML::Node& doc = docs.front();
    if (doc.IsNull()) return json::object{};
    if (!doc.IsMap()) yaml_fail(file_name, "", "must be a YAML mapping of keys" + yaml_line(doc.Mark()));
    converter c{file_name};
    return c.mapping(doc, "");
}

}  // namespace preflight
