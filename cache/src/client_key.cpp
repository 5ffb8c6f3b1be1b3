#include <preflight/cache/client_key.hpp>
#include <preflight/cache/fingerprint.hpp>

#include <algorithm>
#include <cctype>
#include <ostream>
#include <vector>

namespace preflight::cache {

namespace {

constexpr std::string_view fingerprint_field = "secret_sha256=";
constexpr std::size_t printed_fingerprint_digits = 12;

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.push_back('=');
    out.append(std::to_string(value.size()));
    out.push_back(':');
    out.append(value);
    out.push_back(';');
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return out;
}

std::string describe(const client_credentials& c, bool with_secret_fingerprint_prefix) {
    std::string out;
    append_field(out, "provider", c.provider);
    append_field(out, "region", c.region);
    append_field(out, "base_url", c.base_url);
    append_field(out, "api_key_id", c.api_key_id);
    append_field(out, "pinned_ip", c.pinned_ip);
    std::vector<std::pair<std::string, std::string_view>> headers;
    headers.reserve(c.extra_headers.size());
    for (const auto& [name, value] : c.extra_headers) headers.emplace_back(lower(name), value);
    std::sort(headers.begin(), headers.end());
    append_field(out, "headers", std::to_string(headers.size()));
    for (const auto& [name, value] : headers) {
        append_field(out, "header", name);
        append_field(out, "value", value);
    }
    const std::string fp = sha256_hex(c.secret.reveal());
    out.append(fingerprint_field);
    out.append(with_secret_fingerprint_prefix ? std::string_view(fp).substr(0, printed_fingerprint_digits) : fp);
    return out;
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const secret_string&) {
    return os << "<redacted>";
}

std::ostream& operator<<(std::ostream& os, const client_credentials& c) {
    return os << describe(c, true);
}

client_key client_key::of(const client_credentials& c) {
    return client_key(describe(c, false));
}

std::string client_key::printable() const {
    const auto pos = value_.rfind(fingerprint_field);
    if (pos == std::string::npos) return value_;
    const auto end = std::min(value_.size(), pos + fingerprint_field.size() + printed_fingerprint_digits);
    return value_.substr(0, end);
}

std::ostream& operator<<(std::ostream& os, const client_key& k) {
    return os << k.printable();
}

}  // namespace preflight::cache
