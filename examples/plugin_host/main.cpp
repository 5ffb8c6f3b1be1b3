// plugin_host: a plugin host that guards its hooks with preflight's invocation limits (docs/limits.md).
//
//   plugin_host examples/plugin_host/plugins.json [--invocation-profiles-interactive-wall-clock-ms=20 …]
//
// Prints one JSON object per line (the profiles, each invocation with its trip record, the breakers' stats), then
// the breakers' Prometheus text. The configuration is the file's "config" object, then PREFLIGHT_… variables, then
// the flags after the file name.

#include "plugin_host.hpp"
#include <preflight/limits/invocation_profiles.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        std::cerr << "usage: plugin_host PLUGINS.json [--config-flag=value ...]\n";
        return argc < 2 ? 2 : 0;
    }
    try {
        // A program: its PREFLIGHT_… variables are part of its configuration (a library call reads none).
        auto inputs = preflight::config_inputs::from_process_environment();
        inputs.file_name = argv[1];
        inputs.args.assign(argv + 2, argv + argc);
        preflight::examples::run_plugin_host_demo(preflight::load_config_file(argv[1]), std::move(inputs), std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "plugin_host: " << e.what() << "\n";
        return 1;
    }
}
