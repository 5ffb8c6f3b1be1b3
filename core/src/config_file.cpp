// The configuration file layer: reading a file and choosing its format by extension.
#include <preflight/core/config_file.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace preflight {

namespace {

std::string quoted_path(std::string_view s) {
    return boost::json::serialize(boost::json::value(s));
}

}  // namespace

config_file_format config_file_format_of(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".json") return config_file_format::json;
    if (ext == ".yaml" || ext == ".yml") return config_file_format::yaml;
    throw config_error(
        "",
        config_source::file,
        path,
        quoted_path(path),
        "has an unknown configuration file extension (use .json, .yaml or .yml)"
    );
}

boost::json::value parse_config_json(std::string_view text, const std::string& file_name) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec)
        throw config_error(
            "", config_source::file, file_name, quoted_path(file_name), "is not valid JSON: " + ec.message()
        );
    return v;
}

boost::json::value load_config_file(const std::string& path) {
    const config_file_format format = config_file_format_of(path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error("", config_source::file, path, quoted_path(path), "cannot be read");
    std::ostringstream buf;
    buf << in.rdbuf();
    return format == config_file_format::yaml ? parse_config_yaml(buf.str(), path) : parse_config_json(buf.str(), path);
}

}  // namespace preflight
