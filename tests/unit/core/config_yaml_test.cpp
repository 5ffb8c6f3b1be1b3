// YAML configuration files: scalar types, the same layering and errors as JSON, and the rules for bad input.
#include <preflight/core/config.hpp>
#include <preflight/core/config_file.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

namespace json = boost::json;
using preflight::config;
using preflight::config_error;
using preflight::config_inputs;
using preflight::config_registry;
using preflight::config_source;
using preflight::parse_config_yaml;

config_registry yaml_sample() {
    config_registry r;
    r.add(preflight::int_key("cache.capacity", 1000, 1, "entries"));
    r.add(preflight::number_key("cache.ttl_s", 300.0, 0, true, "seconds"));
    r.add(preflight::bool_key("server.verbose", false, "log more"));
    preflight::config_key name;
    name.path = "server.name";
    name.default_value = "preflightd";
    r.add(name);
    return r;
}

// The config_error of parsing `text`, or a failed test.
config_error yaml_error(const std::string& text) {
    try {
        (void)parse_config_yaml(text, "gw.yaml");
    } catch (const config_error& e) {
        return e;
    }
    ADD_FAILURE() << "no config_error for:\n" << text;
    return config_error("", config_source::file, "", "", "");
}

TEST(config_yaml, scalars_keep_their_types) {
    const auto v = parse_config_yaml(
        "i: 12\nneg: -3\nhex: 0x1f\noct: 0o17\nf: 1.5\ne: 1e3\nb: true\nB: False\ns: hello\nq: \"1\"\nsq: 'true'\n"
        "tagged: !!str 2\ntf: !!float 2\nyes_is_text: yes\nempty_quoted: \"\"\n",
        "gw.yaml"
    );
    const auto& o = v.as_object();
    EXPECT_EQ(o.at("i"), json::value(std::int64_t{12}));
    EXPECT_EQ(o.at("neg"), json::value(std::int64_t{-3}));
    EXPECT_EQ(o.at("hex"), json::value(std::int64_t{31}));
    EXPECT_EQ(o.at("oct"), json::value(std::int64_t{15}));
    EXPECT_TRUE(o.at("f").is_double());
    EXPECT_EQ(o.at("f").as_double(), 1.5);
    EXPECT_EQ(o.at("e").as_double(), 1000.0);
    EXPECT_EQ(o.at("b"), json::value(true));
    EXPECT_EQ(o.at("B"), json::value(false));
    EXPECT_EQ(o.at("s"), json::value("hello"));
    EXPECT_EQ(o.at("q"), json::value("1"));  // quoted: a string
    EXPECT_EQ(o.at("sq"), json::value("true"));
    EXPECT_EQ(o.at("tagged"), json::value("2"));
    EXPECT_TRUE(o.at("tf").is_double());
    EXPECT_EQ(o.at("yes_is_text"), json::value("yes"));  // YAML 1.2 core schema: not a boolean
    EXPECT_EQ(o.at("empty_quoted"), json::value(""));
    const auto inf = parse_config_yaml("x: .inf\n", "gw.yaml");
    EXPECT_TRUE(std::isinf(inf.at("x").as_double()));
}

TEST(config_yaml, maps_onto_the_json_file_layer_with_the_same_layering) {
    const char* yaml = "cache:\n  capacity: 7\n  ttl_s: 2.5\nserver:\n  name: edge\n  verbose: true\n";
    config_inputs y;
    y.file = parse_config_yaml(yaml, "gw.yaml");
    config_inputs j;
    j.file = json::parse(R"({"cache": {"capacity": 7, "ttl_s": 2.5}, "server": {"name": "edge", "verbose": true}})");
    EXPECT_EQ(config::resolve(yaml_sample(), y).to_json(), config::resolve(yaml_sample(), j).to_json());

    y.environment = std::vector<std::string>{"PREFLIGHT_CACHE_CAPACITY=8"};
    y.getenv = [](const std::string& n) -> std::optional<std::string> {
        if (n == "PREFLIGHT_CACHE_CAPACITY") return "8";
        return std::nullopt;
    };
    y.args = {"--server-name=flag"};
    const auto cfg = config::resolve(yaml_sample(), y);
    EXPECT_EQ(cfg.get_int("cache.capacity"), 8);
    EXPECT_EQ(cfg.source_of("cache.capacity"), config_source::env);
    EXPECT_EQ(cfg.get_string("server.name"), "flag");
    EXPECT_EQ(cfg.source_of("server.name"), config_source::flag);
    EXPECT_EQ(cfg.get_number("cache.ttl_s"), 2.5);
    EXPECT_EQ(cfg.source_of("cache.ttl_s"), config_source::file);
}

TEST(config_yaml, type_errors_name_the_full_dotted_key_like_json) {
    config_inputs in;
    in.file_name = "gw.yaml";
    in.file = parse_config_yaml("cache:\n  capacity: \"12\"\n", "gw.yaml");  // quoted: a string, not an integer
    try {
        (void)config::resolve(yaml_sample(), in);
        FAIL();
    } catch (const config_error& e) {
        EXPECT_EQ(e.key(), "cache.capacity");
        EXPECT_EQ(e.origin(), "gw.yaml");
        EXPECT_STREQ(e.what(), R"(config: cache.capacity = "12" from file gw.yaml: must be an integer)");
    }
    in.file = parse_config_yaml("server:\n  verbose: yes\n", "gw.yaml");
    EXPECT_THROW((void)config::resolve(yaml_sample(), in), config_error);
}

TEST(config_yaml, aliases_stand_for_their_anchored_value) {
    const auto v = parse_config_yaml("a: &n 5\nb: *n\n", "gw.yaml");
    EXPECT_EQ(v.at("b"), json::value(std::int64_t{5}));
}

TEST(config_yaml, an_empty_file_is_an_empty_configuration) {
    EXPECT_EQ(parse_config_yaml("", "gw.yaml"), json::object{});
    EXPECT_EQ(parse_config_yaml("# nothing yet\n", "gw.yaml"), json::object{});
}

TEST(config_yaml, bad_input_names_the_file_the_key_and_the_line) {
    auto e = yaml_error("cache:\n  capacity: [1\n");
    EXPECT_EQ(e.origin(), "gw.yaml");
    EXPECT_NE(std::string(e.what()).find("not valid YAML at line"), std::string::npos) << e.what();

    e = yaml_error("cache:\n  capacity: 1\n  capacity: 2\n");
    EXPECT_EQ(e.key(), "cache.capacity");
    EXPECT_NE(std::string(e.what()).find("duplicate key (line 3), first set at line 2"), std::string::npos) << e.what();

    e = yaml_error("cache:\n  capacity: 1\n---\ncache:\n  capacity: 2\n");
    EXPECT_NE(std::string(e.what()).find("2 YAML documents"), std::string::npos) << e.what();

    e = yaml_error("cache:\n  capacity:\n");
    EXPECT_EQ(e.key(), "cache.capacity");
    EXPECT_NE(std::string(e.what()).find("null) (line 2)"), std::string::npos) << e.what();
    EXPECT_EQ(yaml_error("cache:\n  capacity: ~\n").key(), "cache.capacity");

    e = yaml_error("cache:\n  capacity:\n    - 1\n");
    EXPECT_NE(std::string(e.what()).find("sequence (line 2)"), std::string::npos) << e.what();

    e = yaml_error("base: &b {capacity: 1}\ncache:\n  <<: *b\n");
    EXPECT_EQ(e.key(), "cache.<<");
    EXPECT_NE(std::string(e.what()).find("merge key (line 3)"), std::string::npos) << e.what();

    EXPECT_NE(std::string(yaml_error("- 1\n- 2\n").what()).find("mapping"), std::string::npos);
    EXPECT_NE(std::string(yaml_error("? [a]\n: 1\n").what()).find("not a scalar"), std::string::npos);
    EXPECT_NE(std::string(yaml_error("a: !custom 1\n").what()).find("unsupported tag"), std::string::npos);
    EXPECT_NE(std::string(yaml_error("a: !!int abc\n").what()).find("!!int"), std::string::npos);
    EXPECT_NE(std::string(yaml_error("a: 99999999999999999999\n").what()).find("64-bit"), std::string::npos);
}

TEST(config_yaml, errors_never_repeat_a_value) {
    for (const char* text : {
             "server:\n  name: sk_live_SECRET\n  name: sk_live_SECRET\n",
             "server:\n  name: [sk_live_SECRET]\n",
             "a: !custom sk_live_SECRET\n",
             "a: !!int sk_live_SECRET\n",
             "a: sk_live_SECRET\n---\nb: 1\n",
         }) {
        const auto e = yaml_error(text);
        EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
        EXPECT_TRUE(e.value().empty()) << e.value();
    }
}

// A file of `text` named with `suffix`, removed at the end of the test.
struct temp_file {
    std::string path;
    temp_file(const std::string& suffix, const std::string& text) {
        char name[] = "/tmp/preflight_cfg_XXXXXX";
        const int fd = ::mkstemp(name);
        ::close(fd);
        std::remove(name);
        path = std::string(name) + suffix;
        std::ofstream(path) << text;
    }
    ~temp_file() { std::remove(path.c_str()); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
};

TEST(config_file, the_extension_chooses_the_format) {
    const temp_file yaml(".yaml", "cache:\n  capacity: 3\n");
    const temp_file yml(".YML", "cache: {capacity: 4}\n");
    const temp_file js(".json", R"({"cache": {"capacity": 5}})");
    EXPECT_EQ(preflight::load_config_file(yaml.path).at("cache").at("capacity"), json::value(std::int64_t{3}));
    EXPECT_EQ(preflight::load_config_file(yml.path).at("cache").at("capacity"), json::value(std::int64_t{4}));
    EXPECT_EQ(preflight::load_config_file(js.path).at("cache").at("capacity"), json::value(std::int64_t{5}));
    const temp_file yaml_as_json(".json", "cache:\n  capacity: 3\n");
    EXPECT_THROW((void)preflight::load_config_file(yaml_as_json.path), config_error);
}

TEST(config_file, another_extension_is_an_error_naming_the_file) {
    const temp_file conf(".conf", "cache:\n  capacity: 3\n");
    try {
        (void)preflight::load_config_file(conf.path);
        FAIL();
    } catch (const config_error& e) {
        EXPECT_EQ(e.origin(), conf.path);
        EXPECT_NE(std::string(e.what()).find(conf.path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(".yaml"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)preflight::load_config_file("/nonexistent/preflight.yaml"), config_error);
}

}  // namespace
