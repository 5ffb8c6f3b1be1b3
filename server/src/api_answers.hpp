#pragma once
// Answers shared by the api's endpoint files (internal to server/src).

#include <preflight/gates/json_writer.hpp>
#include <preflight/gates/utf8.hpp>
#include <preflight/server/http_server.hpp>

#include <string>
#include <string_view>

namespace preflight::server::detail {

/// `{"error":{"code","message"[,"field"]}}` with `status`.
inline http_response error_response(
    unsigned status,
    std::string_view code,
    std::string_view message,
    unsigned version,
    bool keep_alive,
    const std::string_view* field = nullptr
) {
    namespace jw = gates::json_writer;
    std::string body;
    body.reserve(64 + message.size());
    body.append(R"({"error":{"code":)");
    jw::string(body, code);
    jw::key(body, "message");
    jw::string(body, message);
    if (field != nullptr) {
        jw::key(body, "field");
        jw::string(body, *field);
    }
    body.append("}}");
    return json_response(status, std::move(body), version, keep_alive);
}

/// Request targets and lease ids are raw bytes: `s` with every byte that is not part of well-formed UTF-8 replaced
/// by U+FFFD, for a message (found by fuzz/fuzz_http.cpp: regress-404-invalid-utf8-target).
inline std::string valid_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    gates::append_valid_utf8(out, s);
    return out;
}

}  // namespace preflight::server::detail
