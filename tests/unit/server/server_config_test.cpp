// preflightd's configuration: the rate-limit block under server: in a file, the balance URL never echoed whole.
#include <preflight/clients/http_balance_source.hpp>
#include <preflight/core/config_file.hpp>
#include <preflight/limits/limits_config.hpp>
#include <preflight/server/api.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

preflight::config_registry gateway_registry() {
    preflight::config_registry r;
    preflight::server::register_server_config(r);
    preflight::limits::register_config(r);
    return r;
}

TEST(server_config, rate_limit_under_server_in_a_yaml_file_sets_the_rate_limit_keys) {
    preflight::config_inputs in;
    in.file_name = "gw.yaml";
    in.file = preflight::parse_config_yaml(
        "server:\n  port: 9000\n  rate_limit:\n    write_rps: 2.5\n    cancel_exempt: false\n", "gw.yaml"
    );
    const auto cfg = preflight::config::resolve(gateway_registry(), in);
    EXPECT_EQ(cfg.get_number("rate_limit.write_rps"), 2.5);
    EXPECT_FALSE(cfg.get_bool("rate_limit.cancel_exempt"));
    EXPECT_EQ(cfg.get_int("server.port"), 9000);
    in.args = {"--rate-limit-write-rps=7"};  // the flag is unchanged and wins over the file
    EXPECT_EQ(preflight::config::resolve(gateway_registry(), in).get_number("rate_limit.write_rps"), 7.0);
}

TEST(server_config, the_balance_url_is_shown_without_credentials_or_query) {
    using preflight::clients::http_balance_url_for_messages;
    EXPECT_EQ(http_balance_url_for_messages("http://h:81/v1/?token=sk_live_X#f"), "http://h:81/v1/?***");
    EXPECT_EQ(http_balance_url_for_messages("http://u:pw@h/v1/"), "http://***@h/v1/");
    EXPECT_EQ(http_balance_url_for_messages("http://h/v1/"), "http://h/v1/");
    try {
        (void)preflight::clients::parse_http_balance_url("http://h/v1/?token=sk_live_SECRET");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
    }
}

}  // namespace
