#include <preflight/core/config.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

using preflight::config;
using preflight::config_error;
using preflight::config_inputs;
using preflight::config_key;
using preflight::config_registry;
using preflight::config_source;
using preflight::config_type;

namespace {

config_key key(
    std::string path,
    config_type t,
    boost::json::value def,
    std::optional<double> min = std::nullopt,
    std::optional<double> max = std::nullopt,
    bool exclusive = false
) {
    config_key k;
    k.path = std::move(path);
    k.type = t;
    k.default_value = std::move(def);
    k.min = min;
    k.max = max;
    k.min_exclusive = exclusive;
    return k;
}

config_registry sample() {
    config_registry r;
    r.add(key("cache.capacity", config_type::integer, 1000, 1.0));
    r.add(key("cache.ttl_s", config_type::number, 300.0, 0.0, 86400.0, true));
    r.add(key("server.name", config_type::string, "preflightd"));
    r.add(key("server.verbose", config_type::boolean, false));
    return r;
}

config_inputs no_env() {
    config_inputs in;
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    in.environment = std::vector<std::string>{};
    return in;
}

TEST(config_registry, derives_env_and_flag_names) {
    EXPECT_EQ(config_registry::env_name("rate_limit.write_rps"), "PREFLIGHT_RATE_LIMIT_WRITE_RPS");
    EXPECT_EQ(config_registry::flag_name("rate_limit.write_rps"), "--rate-limit-write-rps");
}

TEST(config_registry, rejects_duplicates_clashes_bad_paths_and_bad_defaults) {
    auto r = sample();
    EXPECT_THROW(r.add(key("cache.capacity", config_type::integer, 1)), std::invalid_argument);
    EXPECT_THROW(r.add(key("cache", config_type::integer, 1)), std::invalid_argument);
    EXPECT_THROW(r.add(key("Cache.Size", config_type::integer, 1)), std::invalid_argument);
    EXPECT_THROW(r.add(key("cache.size", config_type::integer, "big")), std::invalid_argument);
    EXPECT_THROW(r.add(key("cache.size", config_type::integer, 0, 1.0)), std::invalid_argument);
    EXPECT_NO_THROW(r.add(key("cache.size", config_type::integer, 1, 1.0)));
}

TEST(config, defaults_with_source_default) {
    auto cfg = config::resolve(sample(), no_env());
    EXPECT_EQ(cfg.get_int("cache.capacity"), 1000);
    EXPECT_EQ(cfg.get_number("cache.ttl_s"), 300.0);
    EXPECT_EQ(cfg.get_string("server.name"), "preflightd");
    EXPECT_FALSE(cfg.get_bool("server.verbose"));
    EXPECT_EQ(cfg.source_of("cache.capacity"), config_source::default_value);
    EXPECT_THROW((void)cfg.get("nope"), std::out_of_range);
}

TEST(config, file_accepts_nested_and_dotted_keys_and_integers_for_numbers) {
    auto in = no_env();
    in.file = boost::json::parse(R"({"cache": {"capacity": 5}, "cache.ttl_s": 60, "server": {"verbose": true}})");
    auto cfg = config::resolve(sample(), in);
    EXPECT_EQ(cfg.get_int("cache.capacity"), 5);
    EXPECT_EQ(cfg.get_number("cache.ttl_s"), 60.0);
    EXPECT_TRUE(cfg.get_bool("server.verbose"));
    EXPECT_EQ(cfg.source_of("cache.ttl_s"), config_source::file);
}

TEST(config, bare_boolean_flag_and_separate_value) {
    auto in = no_env();
    in.args = {"--server-verbose", "--cache-capacity", "7", "--server-name=edge"};
    auto cfg = config::resolve(sample(), in);
    EXPECT_TRUE(cfg.get_bool("server.verbose"));
    EXPECT_EQ(cfg.get_int("cache.capacity"), 7);
    EXPECT_EQ(cfg.get_string("server.name"), "edge");
}

// Sets a variable of this process for the scope of one test.
struct scoped_env {
    std::string name;
    scoped_env(std::string n, const char* value) : name(std::move(n)) { ::setenv(name.c_str(), value, 1); }
    ~scoped_env() { ::unsetenv(name.c_str()); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
};

TEST(config, ignores_the_process_environment_unless_asked) {
    const scoped_env set("PREFLIGHT_CACHE_CAPACITY", "42");
    const scoped_env misspelt("PREFLIGHT_CACHE_CAPACITI", "1");  // would be an unknown key if it were read
    const auto cfg = config::resolve(sample(), config_inputs{});
    EXPECT_EQ(cfg.get_int("cache.capacity"), 1000);
    EXPECT_EQ(cfg.source_of("cache.capacity"), config_source::default_value);
}

TEST(config, reads_the_process_environment_when_asked) {
    const scoped_env set("PREFLIGHT_CACHE_CAPACITY", "42");
    const auto cfg = config::resolve(sample(), config_inputs::from_process_environment());
    EXPECT_EQ(cfg.get_int("cache.capacity"), 42);
    EXPECT_EQ(cfg.source_of("cache.capacity"), config_source::env);
    const scoped_env misspelt("PREFLIGHT_CACHE_CAPACITI", "1");
    EXPECT_THROW((void)config::resolve(sample(), config_inputs::from_process_environment()), config_error);
}

TEST(config, upper_bound_and_exclusive_lower_bound) {
    auto in = no_env();
    in.args = {"--cache-ttl-s=0"};
    EXPECT_THROW((void)config::resolve(sample(), in), config_error);
    in.args = {"--cache-ttl-s=90000"};
    try {
        (void)config::resolve(sample(), in);
        FAIL();
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(), R"(config: cache.ttl_s = "90000" from flag --cache-ttl-s: must be <= 86400)");
    }
}

TEST(config, integer_rejects_fractions_and_trailing_text) {
    auto in = no_env();
    in.args = {"--cache-capacity=1.5"};
    EXPECT_THROW((void)config::resolve(sample(), in), config_error);
    in.args = {"--cache-capacity=12abc"};
    EXPECT_THROW((void)config::resolve(sample(), in), config_error);
    in.args = {};
    in.file = boost::json::parse(R"({"cache": {"capacity": 1.5}})");
    EXPECT_THROW((void)config::resolve(sample(), in), config_error);
}

TEST(config, positional_argument_is_an_error) {
    auto in = no_env();
    in.args = {"stray"};
    EXPECT_THROW((void)config::resolve(sample(), in), config_error);
}

TEST(config, load_file_reports_unreadable_and_malformed_files) {
    EXPECT_THROW((void)preflight::load_config_file("/nonexistent/preflight.json"), config_error);
    const std::string path = ::testing::TempDir() + "preflight_config_test.json";
    {
        std::ofstream out(path);
        out << "{\"cache\": ";
    }
    try {
        (void)preflight::load_config_file(path);
        FAIL();
    } catch (const config_error& e) {
        EXPECT_EQ(e.source(), config_source::file);
        EXPECT_EQ(e.origin(), path);
    }
    {
        std::ofstream out(path);
        out << R"({"cache": {"capacity": 3}})";
    }
    auto in = no_env();
    in.file = preflight::load_config_file(path);
    in.file_name = path;
    EXPECT_EQ(config::resolve(sample(), in).get_int("cache.capacity"), 3);
    std::remove(path.c_str());
}

TEST(config, prints_effective_configuration_with_sources) {
    auto in = no_env();
    in.args = {"--cache-capacity=9"};
    auto cfg = config::resolve(sample(), in);
    EXPECT_EQ(cfg.to_json(), boost::json::parse(R"({
            "cache.capacity": {"value": 9, "source": "flag"},
            "cache.ttl_s": {"value": 300.0, "source": "default"},
            "server.name": {"value": "preflightd", "source": "default"},
            "server.verbose": {"value": false, "source": "default"}
        })"));
}

}  // namespace

// Security review (docs/security.md): a secret key never prints, neither in the effective configuration nor in
// an error about its value.
TEST(config, secret_values_are_redacted_in_print_and_errors) {
    config_registry r;
    config_key url = key("store.url", config_type::string, "");
    url.secret = true;
    r.add(url);
    config_key port = key("store.port", config_type::integer, 5432, 1.0);
    port.secret = true;
    r.add(port);

    config_inputs in;
    in.environment = std::vector<std::string>{};
    in.getenv = [](const std::string&) { return std::nullopt; };
    EXPECT_EQ(config::resolve(r, in).to_json().at("store.url").at("value"), "");  // empty: nothing to hide

    in.args = {"--store-url=postgresql://u:topsecret@h/d"};
    const auto cfg = config::resolve(r, in);
    EXPECT_EQ(cfg.get_string("store.url"), "postgresql://u:topsecret@h/d");
    EXPECT_EQ(cfg.to_json().at("store.url").at("value"), "***");
    EXPECT_EQ(cfg.to_json().at("store.url").at("source"), "flag");

    in.args = {"--store-port=topsecret"};
    try {
        (void)config::resolve(r, in);
        FAIL() << "expected config_error";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
        EXPECT_EQ(e.value(), R"("***")");
        EXPECT_EQ(e.key(), "store.port");
    }
    in.args.clear();
    in.file = boost::json::parse(R"({"store": {"port": "topsecret"}})");
    try {
        (void)config::resolve(r, in);
        FAIL() << "expected config_error";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
    }
}

namespace {

TEST(config, to_json_redacts_secret_values_from_every_source) {
    config_registry reg;
    config_key url;
    url.path = "store.url";
    url.type = config_type::string;
    url.default_value = "";
    url.secret = true;
    reg.add(url);
    config_key token = url;
    token.path = "store.token";
    token.default_value = "default-token";
    reg.add(token);
    config_key plain = url;
    plain.path = "store.name";
    plain.secret = false;
    plain.default_value = "main";
    reg.add(plain);

    config_inputs in;
    in.environment = std::vector<std::string>{};
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    // Empty and not given: nothing to hide.
    EXPECT_EQ(config::resolve(reg, in).to_json().at("store.url").at("value"), boost::json::value(""));
    EXPECT_EQ(config::resolve(reg, in).to_json().at("store.token").at("value"), boost::json::value("***"));

    in.args = {"--store-url=postgresql://u:hunter2@db/x"};
    auto cfg = config::resolve(reg, in);
    const auto j = cfg.to_json();
    EXPECT_EQ(j.at("store.url").at("value"), boost::json::value("***"));
    EXPECT_EQ(j.at("store.url").at("source"), boost::json::value("flag"));
    EXPECT_EQ(j.at("store.name").at("value"), boost::json::value("main"));
    EXPECT_EQ(boost::json::serialize(j).find("hunter2"), std::string::npos);
    // The program still sees the real value.
    EXPECT_EQ(cfg.get_string("store.url"), "postgresql://u:hunter2@db/x");

    in.args = {};
    in.getenv = [](const std::string& n) -> std::optional<std::string> {
        if (n == "PREFLIGHT_STORE_TOKEN") return std::string("from-env");
        return std::nullopt;
    };
    const auto j2 = config::resolve(reg, in).to_json();
    EXPECT_EQ(j2.at("store.token").at("value"), boost::json::value("***"));
    EXPECT_EQ(j2.at("store.token").at("source"), boost::json::value("env"));
}

}  // namespace
