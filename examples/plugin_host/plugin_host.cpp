#include "plugin_host.hpp"

#include <preflight/limits/circuit_breaker.hpp>
#include <preflight/limits/invocation_limits.hpp>
#include <preflight/limits/invocation_profiles.hpp>
#include <preflight/limits/limits_config.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace preflight::examples {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace lim = preflight::limits;
using namespace std::chrono_literals;

struct plugin {
    lim::plugin_manifest manifest;
    std::string hook;
    lim::hook_policy policy = lim::hook_policy::action;
};

std::string string_field(const json::object& o, std::string_view key, std::size_t i) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_string())
        throw std::invalid_argument("plugins[" + std::to_string(i) + "]." + std::string(key) + " must be a string");
    return std::string(v->get_string());
}

std::vector<plugin> read_plugins(const json::value& doc) {
    const auto* list = doc.is_object() ? doc.get_object().if_contains("plugins") : nullptr;
    if (list == nullptr || !list->is_array()) throw std::invalid_argument("plugins must be an array");
    std::vector<plugin> out;
    for (std::size_t i = 0; i < list->get_array().size(); ++i) {
        const auto& v = list->get_array()[i];
        if (!v.is_object()) throw std::invalid_argument("plugins[" + std::to_string(i) + "] must be an object");
        const auto& o = v.get_object();
        plugin p;
        p.manifest.name = string_field(o, "name", i);
        if (o.contains("limits_profile")) p.manifest.limits_profile = string_field(o, "limits_profile", i);
        p.hook = string_field(o, "hook", i);
        const std::string policy = string_field(o, "policy", i);
        if (policy != "filter" && policy != "action") {
            throw std::invalid_argument(
                "plugins[" + std::to_string(i) + "].policy must be \"filter\" or \"action\", got \"" + policy + "\""
            );
        }
        p.policy = policy == "filter" ? lim::hook_policy::filter : lim::hook_policy::action;
        out.push_back(std::move(p));
    }
    return out;
}

template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> aw) {
    auto f = asio::co_spawn(io, std::move(aw), asio::use_future);
    io.restart();
    io.run();
    return f.get();
}

json::value profile_json(const lim::invocation_limits_config& l) {
    json::object o{{"wall_clock_ms", l.wall_clock.count()}};
    for (const auto& c : l.counters) o[c.name] = c.max;
    o["host_concurrency"] = l.host_concurrency;
    return o;
}

json::value trip_json(const std::optional<lim::trip_record>& t) {
    return t ? lim::to_json(*t) : json::value(nullptr);
}

// The host function `fetch` the plugin calls: one host call (it waits while another is in flight), one http fetch,
// 5 ms of network. Returns false when a limit tripped (the plugin gets an error).
asio::awaitable<bool> host_fetch(lim::invocation_guard& g, std::uint32_t& max_in_flight) {
    auto scope = co_await g.enter_host_call();
    if (!scope) co_return false;
    if (!g.charge(lim::counter_names::http_fetches)) co_return false;
    max_in_flight = std::max(max_in_flight, g.host_calls_in_flight());
    asio::steady_timer network(co_await asio::this_coro::executor, 5ms);
    co_await network.async_wait(asio::use_awaitable);
    co_return true;
}

void run_filter_plugin(
    const plugin& p, const lim::invocation_profiles& profiles, lim::plugin_breakers& breakers, std::ostream& out
) {
    lim::invocation_guard guard{
        profiles.for_manifest(p.manifest),
        lim::context_for(p.manifest, p.hook, "req-1", p.policy),
        &breakers.for_plugin(p.manifest.name)};
    std::uint32_t max_in_flight = 0;
    int fetches = 0;
    asio::io_context io;
    const json::value input = {{"prompt", "hello"}};
    auto result = run_on(io, lim::run_filter(guard, input, [&](json::value in) -> asio::awaitable<json::value> {
                             using namespace asio::experimental::awaitable_operators;
                             // Two fetches at once: the guard lets one host call in at a time, the other waits.
                             auto [a, b] =
                                 co_await (host_fetch(guard, max_in_flight) && host_fetch(guard, max_in_flight));
                             fetches = static_cast<int>(a) + static_cast<int>(b);
                             // Then the plugin waits for something that never answers: only its wall clock ends it.
                             asio::steady_timer stuck(co_await asio::this_coro::executor, 10s);
                             co_await stuck.async_wait(asio::use_awaitable);
                             in.as_object()["prompt"] = "rewritten";
                             co_return in;
                         }));
    out << json::serialize(json::object{
               {"event", "invocation"},
               {"plugin", p.manifest.name},
               {"hook", p.hook},
               {"profile", p.manifest.limits_profile},
               {"neutral", result.neutral},
               {"output", result.value},
               {"fetches", fetches},
               {"max_host_calls_in_flight", max_in_flight},
               {"trip", trip_json(result.trip)},
           })
        << "\n";
}

void run_action_plugin(
    const plugin& p,
    const lim::invocation_profiles& profiles,
    lim::plugin_breakers& breakers,
    int invocations,
    std::ostream& out
) {
    for (int i = 1; i <= invocations; ++i) {
        const std::string request_id = "req-" + std::to_string(i + 1);
        lim::invocation_guard guard{
            profiles.for_manifest(p.manifest),
            lim::context_for(p.manifest, p.hook, request_id, p.policy),
            &breakers.for_plugin(p.manifest.name)};
        asio::io_context io;
        bool ran = false;
        auto result = run_on(io, lim::run_action(guard, [&]() -> asio::awaitable<void> {
                                 ran = true;
                                 // The plugin runtime meters the hook: fuel per batch of instructions, and the memory
                                 // the plugin holds after each batch. When the guard says no, the runtime traps.
                                 for (std::uint64_t batch = 1;; ++batch) {
                                     if (!guard.charge(lim::counter_names::fuel, 300'000)) co_return;
                                     if (!guard.set_used(lim::counter_names::memory_bytes, batch * 4 * 1024 * 1024))
                                         co_return;
                                     co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
                                 }
                             }));
        out << json::serialize(json::object{
                   {"event", "invocation"},
                   {"plugin", p.manifest.name},
                   {"hook", p.hook},
                   {"profile", p.manifest.limits_profile},
                   {"request_id", request_id},
                   {"ran", ran},
                   {"success", result.success},
                   {"neutral", result.neutral},
                   {"fuel_used", guard.used(lim::counter_names::fuel)},
                   {"trip", trip_json(result.trip)},
               })
            << "\n";
    }
}

json::value metrics_json(const lim::plugin_breakers& breakers) {
    json::array plugins;
    for (const auto& [name, s] : breakers.stats()) {
        json::object trips;
        for (std::size_t k = 0; k < lim::trip_kind_count; ++k) {
            if (s.trips[k] != 0) trips[lim::to_string(static_cast<lim::trip_kind>(k))] = s.trips[k];
        }
        plugins.push_back(json::object{{"plugin", name}, {"trips", trips}, {"opens", s.opens}, {"open", s.open}});
    }
    return json::object{{"event", "metrics"}, {"plugins", plugins}};
}

}  // namespace

void run_plugin_host_demo(const json::value& doc, config_inputs inputs, std::ostream& out) {
    const auto plugins = read_plugins(doc);

    // The keys of the limits module and of every profile a manifest names.
    config_registry registry;
    lim::register_config(registry);
    std::set<std::string> named;
    for (const auto& p : plugins) {
        if (p.manifest.limits_profile != "default" && named.insert(p.manifest.limits_profile).second)
            lim::register_invocation_profile(registry, p.manifest.limits_profile);
    }
    if (const auto* c = doc.get_object().if_contains("config")) inputs.file = *c;
    const auto settings = lim::settings_from(config::resolve(registry, inputs));

    json::object profiles;
    for (const auto& name : settings.profiles.names()) profiles[name] = profile_json(settings.profiles.at(name));
    out << json::serialize(json::object{{"event", "profiles"}, {"profiles", profiles}}) << "\n";

    lim::plugin_breakers breakers{settings.breaker};
    const auto first = [&](lim::hook_policy policy) {
        return std::find_if(plugins.begin(), plugins.end(), [&](const plugin& p) { return p.policy == policy; });
    };
    if (auto f = first(lim::hook_policy::filter); f != plugins.end())
        run_filter_plugin(*f, settings.profiles, breakers, out);
    if (auto a = first(lim::hook_policy::action); a != plugins.end())
        run_action_plugin(*a, settings.profiles, breakers, static_cast<int>(settings.breaker.trips) + 1, out);

    out << json::serialize(metrics_json(breakers)) << "\n";
    out << breakers.prometheus_text();
}

}  // namespace preflight::examples
