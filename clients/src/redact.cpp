#include <preflight/clients/redact.hpp>

#include <cctype>

namespace preflight::clients {
namespace {

bool starts_with_scheme(std::string_view s) {
    return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

std::string redact_url(std::string_view url) {
    const auto scheme_end = url.find("://") + 3;
    const auto authority_end = url.find_first_of("/?", scheme_end);
    const auto authority =
        url.substr(scheme_end, authority_end == std::string_view::npos ? url.npos : authority_end - scheme_end);
    const auto at = authority.rfind('@');
    std::string out(url.substr(0, scheme_end));
    if (at != std::string_view::npos) {
        const auto userinfo = authority.substr(0, at);
        const auto colon = userinfo.find(':');
        if (colon != std::string_view::npos) {
            out.append(userinfo.substr(0, colon)).append(":***");
        } else {
            out.append(userinfo);
        }
        out.append(authority.substr(at));
    } else {
        out.append(authority);
    }
    if (authority_end != std::string_view::npos) {
        std::string_view rest = url.substr(authority_end);
        // password=... (and sslpassword=...) may also appear as query parameters, possibly more than once.
        for (auto q = rest.find("password="); q != std::string_view::npos; q = rest.find("password=")) {
            const auto end = rest.find('&', q);
            out.append(rest.substr(0, q)).append("password=***");
            rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        }
        out.append(rest);
    }
    return out;
}

std::string redact_keyvalue(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto key_start = i;
        while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        const auto key = s.substr(key_start, i - key_start);
        out.append(key);
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) out.push_back(s[i++]);
        if (i < s.size() && s[i] == '=') {
            out.push_back(s[i++]);
            while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) out.push_back(s[i++]);
            const auto value_start = i;
            if (i < s.size() && s[i] == '\'') {
                ++i;
                while (i < s.size() && s[i] != '\'') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
                if (i < s.size()) ++i;
            } else {
                // libpq also honours backslash escapes in unquoted values ("a\\ b" is "a b").
                while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])))
                    i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
            }
            const bool secret = key == "password" || key == "sslpassword";
            out.append(secret ? std::string_view{"***"} : s.substr(value_start, i - value_start));
        }
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) out.push_back(s[i++]);
    }
    return out;
}

}  // namespace

std::string redact_connection_string(std::string_view conninfo) {
    if (starts_with_scheme(conninfo)) return redact_url(conninfo);
    if (conninfo.find('=') != std::string_view::npos) return redact_keyvalue(conninfo);
    return std::string(conninfo);
}

}  // namespace preflight::clients
