#pragma once

#include <string>
#include <string_view>

namespace preflight::clients {

/// Returns a Postgres connection string with its password replaced by "***", for logs and for the
/// printed configuration. Handles URLs (`postgresql://user:secret@host/db`) and key/value strings
/// (`host=h password=secret`, also quoted values). Anything else is returned unchanged.
[[nodiscard]] std::string redact_connection_string(std::string_view conninfo);

}  // namespace preflight::clients
