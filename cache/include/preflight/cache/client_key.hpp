#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <string_view>

namespace preflight::cache {

/// A credential secret (API key, token). It can be read explicitly with `reveal()` but never prints:
/// `operator<<` writes a redaction marker. Comparisons are deliberately not provided.
class secret_string {
public:
    secret_string() = default;
    explicit secret_string(std::string value) : value_(std::move(value)) {}

    /// The secret itself, for building the client. Never log it.
    [[nodiscard]] std::string_view reveal() const noexcept { return value_; }
    [[nodiscard]] bool empty() const noexcept { return value_.empty(); }

    /// Writes "<redacted>" (never the secret).
    friend std::ostream& operator<<(std::ostream& os, const secret_string& s);

private:
    std::string value_;
};

/// Every dimension that selects a distinct provider client. Two credential sets that differ in any field
/// (including the secret) get different clients.
struct client_credentials {
    std::string provider;                              ///< e.g. "stripe", "openai"
    std::string region;                                ///< e.g. "eu-west-1"
    std::string base_url;                              ///< e.g. "https://api.example.com/v1"
    std::string api_key_id;                            ///< the public id of the key (not the secret)
    std::string pinned_ip;                             ///< optional IP the client connects to
    std::map<std::string, std::string> extra_headers;  ///< header name (case-insensitive) -> value
    secret_string secret;                              ///< fingerprinted into the key, never stored in it

    /// Prints every dimension; the secret appears only as "sha256:<first 12 hex digits>".
    friend std::ostream& operator<<(std::ostream& os, const client_credentials& c);
};

/// The memoization key of a credential set: every dimension (length-prefixed, header names lower-cased
/// and sorted) plus the SHA-256 fingerprint of the secret. Contains no part of the secret itself.
class client_key {
public:
    /// Builds the key of `c` (computes SHA-256 of the secret with OpenSSL). Thread-safe.
    [[nodiscard]] static client_key of(const client_credentials& c);

    [[nodiscard]] const std::string& str() const noexcept { return value_; }
    friend bool operator==(const client_key&, const client_key&) = default;

    /// The key with the fingerprint shortened to 12 hex digits, for logs and error messages.
    [[nodiscard]] std::string printable() const;

    /// Writes `printable()`.
    friend std::ostream& operator<<(std::ostream& os, const client_key& k);

private:
    explicit client_key(std::string v) : value_(std::move(v)) {}
    std::string value_;
};

}  // namespace preflight::cache
