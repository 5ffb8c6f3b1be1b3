// No configuration error prints a value that could be a secret: unknown keys, flags and variables are named only.
#include <preflight/core/config.hpp>
#include <preflight/core/config_file.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <string>

namespace {

using preflight::config;
using preflight::config_error;
using preflight::config_inputs;
using preflight::config_registry;

config_registry secrets_sample() {
    config_registry r;
    r.add(preflight::int_key("server.port", 8080, 0, "port"));
    preflight::config_key url;
    url.path = "server.postgres_url";
    url.default_value = "";
    url.secret = true;
    r.add(url);
    preflight::config_key api_key = url;
    api_key.path = "server.balance_api_key";
    r.add(api_key);
    return r;
}

// The config_error of resolving `in` over `secrets_sample()`, or a failed test.
config_error secret_error_of(const config_inputs& in) {
    try {
        (void)config::resolve(secrets_sample(), in);
    } catch (const config_error& e) {
        return e;
    }
    ADD_FAILURE() << "no config_error";
    return config_error("", preflight::config_source::file, "", "", "");
}

void expect_hidden(const config_error& e, const std::string& secret) {
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
    EXPECT_EQ(e.value().find(secret), std::string::npos) << e.value();
}

TEST(config_secrets, a_misspelt_flag_is_named_without_its_value) {
    config_inputs in;
    in.args = {"--server-balance-api-kee=sk_live_SECRET"};
    auto e = secret_error_of(in);
    expect_hidden(e, "sk_live_SECRET");
    EXPECT_EQ(e.origin(), "--server-balance-api-kee");
    EXPECT_EQ(e.key(), "server_balance_api_kee");  // the guess from the flag's spelling
    EXPECT_STREQ(e.what(), "config: server_balance_api_kee from flag --server-balance-api-kee: unknown flag");

    in.args = {"--server-balance-api-kee", "sk_live_SECRET"};
    expect_hidden(secret_error_of(in), "sk_live_SECRET");
}

TEST(config_secrets, a_stray_argument_is_not_repeated) {
    config_inputs in;
    in.args = {"--server-port=1", "sk_live_SECRET"};
    const auto e = secret_error_of(in);
    expect_hidden(e, "sk_live_SECRET");
    EXPECT_EQ(e.origin(), "argument 2");
}

TEST(config_secrets, a_misspelt_variable_is_named_without_its_value) {
    config_inputs in;
    in.environment = std::vector<std::string>{"PREFLIGHT_SERVER_POSTGRES_UR=postgresql://u:hunter2@h/db"};
    const auto e = secret_error_of(in);
    expect_hidden(e, "hunter2");
    EXPECT_EQ(e.origin(), "PREFLIGHT_SERVER_POSTGRES_UR");
    EXPECT_EQ(e.key(), "server_postgres_ur");
}

TEST(config_secrets, an_unknown_file_key_is_named_without_its_value) {
    for (const char* doc : {
             R"({"server": {"balance_api_kee": "sk_live_SECRET"}})",
             R"({"server.balance_api_kee": "sk_live_SECRET"})",
             R"({"server": "postgresql://u:sk_live_SECRET@h/db"})",  // a value where keys are expected
             R"(["sk_live_SECRET"])",                                // not an object at all
         }) {
        config_inputs in;
        in.file = boost::json::parse(doc);
        expect_hidden(secret_error_of(in), "sk_live_SECRET");
    }
    config_inputs in;
    in.file = preflight::parse_config_yaml("server:\n  balance_api_kee: sk_live_SECRET\n", "gw.yaml");
    in.file_name = "gw.yaml";
    const auto e = secret_error_of(in);
    expect_hidden(e, "sk_live_SECRET");
    EXPECT_STREQ(e.what(), "config: server.balance_api_kee from file gw.yaml: unknown key");
}

TEST(config_secrets, a_secret_key_with_a_bad_value_shows_stars) {
    config_inputs in;
    in.file = boost::json::parse(R"({"server": {"balance_api_key": ["sk_live_SECRET"]}})");
    const auto e = secret_error_of(in);
    expect_hidden(e, "sk_live_SECRET");
    EXPECT_EQ(e.value(), "\"***\"");
}

TEST(config_secrets, a_known_key_that_is_not_secret_shows_its_value) {
    config_inputs in;
    in.args = {"--server-port=eighty"};
    EXPECT_STREQ(
        secret_error_of(in).what(), R"(config: server.port = "eighty" from flag --server-port: must be an integer)"
    );
}

}  // namespace
