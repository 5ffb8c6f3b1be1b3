#include <preflight/clients/redact.hpp>

#include <gtest/gtest.h>

using preflight::clients::redact_connection_string;

TEST(redact, url_password_hidden) {
    EXPECT_EQ(
        redact_connection_string("postgresql://app:s3cret@db.example:5432/prod?sslmode=require"),
        "postgresql://app:***@db.example:5432/prod?sslmode=require"
    );
    EXPECT_EQ(redact_connection_string("postgres://app@db/prod"), "postgres://app@db/prod");
    EXPECT_EQ(
        redact_connection_string("postgresql://db/prod?user=a&password=s3cret&sslmode=x"),
        "postgresql://db/prod?user=a&password=***&sslmode=x"
    );
}

TEST(redact, keyvalue_password_hidden) {
    EXPECT_EQ(
        redact_connection_string("host=h port=5 password=s3cret dbname=d"), "host=h port=5 password=*** dbname=d"
    );
    EXPECT_EQ(redact_connection_string("host=h password='a b\\' c' user=u"), "host=h password=*** user=u");
}

TEST(redact, secret_never_survives) {
    for (const char* s : {"postgresql://u:topsecret@h/d", "password=topsecret", "host=x password = topsecret"}) {
        EXPECT_EQ(redact_connection_string(s).find("topsecret"), std::string::npos) << s;
    }
}

// Found in the security review (docs/security.md): libpq reads backslash escapes in unquoted values, so
// "password=ab\ cd" is the password "ab cd" and its tail must not survive; sslpassword is a secret too; a
// repeated query parameter is redacted every time.
TEST(redact, escaped_unquoted_and_ssl_passwords_hidden) {
    EXPECT_EQ(redact_connection_string("host=h password=ab\\ topsecret user=u"), "host=h password=*** user=u");
    EXPECT_EQ(redact_connection_string("host=h sslpassword=topsecret"), "host=h sslpassword=***");
    EXPECT_EQ(
        redact_connection_string("postgresql://db/p?password=topsecret&password=topsecret2&sslmode=x"),
        "postgresql://db/p?password=***&password=***&sslmode=x"
    );
    EXPECT_EQ(redact_connection_string("postgresql://db/p?sslpassword=topsecret"), "postgresql://db/p?sslpassword=***");
}
