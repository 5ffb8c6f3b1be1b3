#pragma once

#include <preflight/core/config.hpp>

#include <boost/json/value.hpp>

#include <ostream>

namespace preflight::examples {

/// The demo of a plugin host (examples/plugin_host/). `doc` is `{"plugins": [{"name", "hook", "policy": "filter" |
/// "action", "limits_profile"}, …], "config": {…}}`. It registers the limits keys and the profile every plugin names,
/// resolves the configuration (`doc.config` as the file layer of `inputs`, then `inputs`' environment and flags),
/// and runs
/// 1. the first filter plugin's hook once: it makes two host calls at once (the second waits for the first), then
///    hangs, so its wall clock trips and the host gets the input back unchanged;
/// 2. the first action plugin's hook four times: each run burns fuel until it runs out; the breaker's threshold of
///    trips (`invocation.breaker.trips`, 3 in plugins.json) opens the plugin's circuit breaker, and the next
///    invocation is refused at once (`circuit_open`).
/// Writes one JSON object per line (`"event"`: "profiles", "invocation" for each run, "metrics"), then the breakers'
/// Prometheus text. Throws `config_error` or `limits_profile_error` for a bad configuration and
/// `std::invalid_argument` for a malformed plugin list.
void run_plugin_host_demo(const boost::json::value& doc, config_inputs inputs, std::ostream& out);

}  // namespace preflight::examples
