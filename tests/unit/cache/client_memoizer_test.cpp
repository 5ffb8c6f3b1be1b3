#include <preflight/cache/client_memoizer.hpp>
#include <preflight/cache/fingerprint.hpp>
#include <preflight/core/clock.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>

namespace {

using namespace std::chrono_literals;
using preflight::manual_clock;
using preflight::cache::client_credentials;
using preflight::cache::client_key;
using preflight::cache::client_memoizer;
using preflight::cache::client_memoizer_params;
using preflight::cache::secret_string;

constexpr const char* secret_1 = "sk_live_AAAAsecretOne";
constexpr const char* secret_2 = "sk_live_BBBBsecretTwo";

struct fake_client {
    std::string secret_seen;
    int* destroyed;
    ~fake_client() { ++*destroyed; }
};

client_credentials creds(const char* secret) {
    client_credentials c;
    c.provider = "billing";
    c.region = "eu-west-1";
    c.base_url = "https://billing.example.com/v1";
    c.api_key_id = "key_123";
    c.pinned_ip = "10.0.0.7";
    c.extra_headers = {{"X-Tenant", "org_1"}};
    c.secret = secret_string(secret);
    return c;
}

struct fixture : ::testing::Test {
    int destroyed = 0;
    int made = 0;
    auto factory() {
        return [this](const client_credentials& c) {
            ++made;
            return std::make_shared<fake_client>(std::string(c.secret.reveal()), &destroyed);
        };
    }
};

using client_memoizer_test = fixture;

TEST_F(client_memoizer_test, same_credentials_share_one_client) {
    client_memoizer<fake_client> memo;
    auto a = memo.get_or_create(creds(secret_1), factory());
    auto b = memo.get_or_create(creds(secret_1), factory());
    EXPECT_EQ(a, b);
    EXPECT_EQ(made, 1);
    EXPECT_EQ(a->secret_seen, secret_1);  // the factory receives the secret
}

TEST_F(client_memoizer_test, a_rotated_secret_under_the_same_key_id_yields_a_new_client) {
    client_memoizer<fake_client> memo;
    auto a = memo.get_or_create(creds(secret_1), factory());
    auto b = memo.get_or_create(creds(secret_2), factory());
    EXPECT_NE(a, b);
    EXPECT_EQ(made, 2);
    EXPECT_EQ(b->secret_seen, secret_2);
    EXPECT_NE(client_key::of(creds(secret_1)), client_key::of(creds(secret_2)));
}

TEST_F(client_memoizer_test, every_credential_dimension_is_part_of_the_key) {
    const auto base = client_key::of(creds(secret_1));
    auto vary = [&](auto mutate) {
        auto c = creds(secret_1);
        mutate(c);
        return client_key::of(c);
    };
    EXPECT_NE(base, vary([](client_credentials& c) { c.provider = "other"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.region = "us-east-1"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.base_url = "https://other"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.api_key_id = "key_124"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.pinned_ip = "10.0.0.8"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.extra_headers["X-Tenant"] = "org_2"; }));
    EXPECT_NE(base, vary([](client_credentials& c) { c.extra_headers["X-Other"] = "1"; }));
    // Header names are case-insensitive.
    EXPECT_EQ(base, vary([](client_credentials& c) { c.extra_headers = {{"x-tenant", "org_1"}}; }));
    // Field boundaries cannot be shifted to produce the same key.
    auto c1 = creds(secret_1);
    auto c2 = creds(secret_1);
    c1.provider = "ab";
    c1.region = "c";
    c2.provider = "a";
    c2.region = "bc";
    EXPECT_NE(client_key::of(c1), client_key::of(c2));
}

TEST_F(client_memoizer_test, the_secret_never_appears_in_the_key_or_any_printed_form) {
    const auto c = creds(secret_1);
    const auto key = client_key::of(c);
    std::ostringstream printed_key, printed_creds, printed_secret;
    printed_key << key;
    printed_creds << c;
    printed_secret << c.secret;
    for (const std::string& s :
         {key.str(), key.printable(), printed_key.str(), printed_creds.str(), printed_secret.str()}) {
        EXPECT_EQ(s.find(secret_1), std::string::npos) << s;
        EXPECT_EQ(s.find("secretOne"), std::string::npos) << s;
    }
    EXPECT_NE(key.str().find("billing"), std::string::npos);
    EXPECT_NE(printed_creds.str().find("key_123"), std::string::npos);
    EXPECT_EQ(printed_secret.str(), "<redacted>");
    // The full key carries the fingerprint; printed forms only a prefix of it.
    const std::string fp = preflight::cache::sha256_hex(secret_1);
    EXPECT_NE(key.str().find(fp), std::string::npos);
    EXPECT_EQ(printed_key.str().find(fp), std::string::npos);
    EXPECT_NE(printed_key.str().find(fp.substr(0, 12)), std::string::npos);
}

TEST_F(client_memoizer_test, an_evicted_client_in_use_is_not_destroyed_until_released) {
    client_memoizer_params p;
    p.capacity = 1;
    client_memoizer<fake_client> memo(p);
    auto in_use = memo.get_or_create(creds(secret_1), factory());
    (void)memo.get_or_create(creds(secret_2), factory());  // evicts the first
    EXPECT_EQ(memo.find(creds(secret_1)), nullptr);
    EXPECT_EQ(memo.stats().evictions, 1u);
    EXPECT_EQ(destroyed, 0);
    EXPECT_EQ(in_use->secret_seen, secret_1);  // still usable
    in_use.reset();
    EXPECT_EQ(destroyed, 1);
    // A new request for the evicted credentials gets a new client.
    (void)memo.get_or_create(creds(secret_1), factory());
    EXPECT_EQ(made, 3);
}

TEST_F(client_memoizer_test, idle_ttl_of_30_minutes_extended_by_use) {
    manual_clock clk;
    client_memoizer<fake_client> memo({}, clk);
    auto a = memo.get_or_create(creds(secret_1), factory());
    clk.advance(29min);
    EXPECT_EQ(memo.get_or_create(creds(secret_1), factory()), a);
    clk.advance(29min);
    EXPECT_EQ(memo.get_or_create(creds(secret_1), factory()), a);  // 58 min old, used within 30
    clk.advance(30min);
    EXPECT_NE(memo.get_or_create(creds(secret_1), factory()), a);  // idle for 30 min: a new client
    EXPECT_EQ(made, 2);
}

TEST_F(client_memoizer_test, defaults_are_1000_clients_and_30_minutes) {
    const client_memoizer_params p;
    EXPECT_EQ(p.capacity, 1000u);
    EXPECT_EQ(p.idle_ttl, 30min);
    client_memoizer<fake_client> memo;
    for (int i = 0; i < 1500; ++i) {
        auto c = creds(secret_1);
        c.api_key_id = "key_" + std::to_string(i);
        (void)memo.get_or_create(c, factory());
    }
    EXPECT_LE(memo.size(), 1000u);
    EXPECT_EQ(destroyed, 1500 - static_cast<int>(memo.size()));
}

TEST_F(client_memoizer_test, null_factory_result_is_an_error_naming_the_key_without_the_secret) {
    client_memoizer<fake_client> memo;
    try {
        (void
        )memo.get_or_create(creds(secret_1), [](const client_credentials&) { return std::shared_ptr<fake_client>{}; });
        FAIL() << "expected invalid_argument";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("key_123"), std::string::npos) << what;
        EXPECT_EQ(what.find(secret_1), std::string::npos) << what;
    }
}

}  // namespace
