// File aliases: a second spelling of a group of keys in the file layer (preflightd: server.rate_limit → rate_limit).
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
using preflight::config_source;

config_registry gateway() {
    config_registry r;
    r.add(preflight::int_key("server.port", 8080, 0, "port"));
    r.add(preflight::number_key("rate_limit.write_rps", 1.0, 0, true, "refill"));
    r.add(preflight::number_key("rate_limit.write_burst", 20.0, 1, false, "burst"));
    r.add_file_alias("server.rate_limit", "rate_limit");
    return r;
}

config_inputs from_file(boost::json::value doc) {
    config_inputs in;
    in.file = std::move(doc);
    in.file_name = "gw";
    return in;
}

TEST(config_alias, both_spellings_set_the_same_key_in_json_and_yaml) {
    for (const char* doc : {
             R"({"server": {"port": 9, "rate_limit": {"write_rps": 2.5}}})",
             R"({"server.rate_limit.write_rps": 2.5, "server": {"port": 9}})",
             R"({"server": {"rate_limit.write_rps": 2.5, "port": 9}})",
         }) {
        const auto cfg = config::resolve(gateway(), from_file(boost::json::parse(doc)));
        EXPECT_EQ(cfg.get_number("rate_limit.write_rps"), 2.5) << doc;
        EXPECT_EQ(cfg.source_of("rate_limit.write_rps"), config_source::file);
        EXPECT_EQ(cfg.get_int("server.port"), 9);
    }
    const auto yaml =
        preflight::parse_config_yaml("server:\n  port: 9\n  rate_limit:\n    write_rps: 2.5\n", "gw.yaml");
    const auto top = preflight::parse_config_yaml("server:\n  port: 9\nrate_limit:\n  write_rps: 2.5\n", "gw.yaml");
    EXPECT_EQ(
        config::resolve(gateway(), from_file(yaml)).to_json(), config::resolve(gateway(), from_file(top)).to_json()
    );
}

TEST(config_alias, flags_and_variables_override_the_aliased_file_key) {
    auto in = from_file(boost::json::parse(R"({"server": {"rate_limit": {"write_rps": 2.5}}})"));
    in.args = {"--rate-limit-write-rps=4"};
    EXPECT_EQ(config::resolve(gateway(), in).get_number("rate_limit.write_rps"), 4.0);
    in.args = {"--server-rate-limit-write-rps=4"};  // the flags keep the registered spelling only
    EXPECT_THROW((void)config::resolve(gateway(), in), config_error);
}

TEST(config_alias, both_spellings_in_one_file_is_an_error_naming_both) {
    const auto doc = preflight::parse_config_yaml(
        "server:\n  rate_limit:\n    write_rps: 2\nrate_limit:\n  write_rps: 3\n", "gw.yaml"
    );
    try {
        (void)config::resolve(gateway(), from_file(doc));
        FAIL();
    } catch (const config_error& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.key(), "rate_limit.write_rps");
        EXPECT_NE(what.find("server.rate_limit.write_rps"), std::string::npos) << what;
        EXPECT_NE(what.find("as rate_limit.write_rps"), std::string::npos) << what;
    }
    // nested and dotted spellings of one key are the same conflict
    EXPECT_THROW(
        (void)config::resolve(
            gateway(), from_file(boost::json::parse(R"({"rate_limit": {"write_rps": 2}, "rate_limit.write_rps": 3})"))
        ),
        config_error
    );
}

TEST(config_alias, errors_name_the_key_as_spelled_in_the_file) {
    try {
        (void
        )config::resolve(gateway(), from_file(boost::json::parse(R"({"server": {"rate_limit": {"write_rps": 0}}})")));
        FAIL();
    } catch (const config_error& e) {
        EXPECT_STREQ(e.what(), "config: server.rate_limit.write_rps = 0 from file gw: must be > 0");
    }
    EXPECT_THROW(
        (void)config::resolve(gateway(), from_file(boost::json::parse(R"({"server": {"rate_limit": {"read": 1}}})"))),
        config_error
    );
}

TEST(config_alias, registration_rejects_clashes) {
    auto r = gateway();
    EXPECT_THROW(r.add_file_alias("server.rate_limit", "rate_limit"), std::invalid_argument);
    EXPECT_THROW(r.add_file_alias("server.port", "rate_limit"), std::invalid_argument);
    EXPECT_THROW(r.add(preflight::int_key("server.rate_limit.x", 1, 0, "x")), std::invalid_argument);
    EXPECT_THROW(r.add_file_alias("Bad..path", "rate_limit"), std::invalid_argument);
}

}  // namespace
