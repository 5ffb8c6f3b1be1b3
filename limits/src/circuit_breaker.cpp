#include <preflight/limits/circuit_breaker.hpp>

#include <stdexcept>

namespace preflight::limits {

circuit_breaker::circuit_breaker(circuit_breaker_config cfg, const clock& clk) : cfg_{cfg}, clock_{clk} {
    if (cfg_.trips == 0) throw std::invalid_argument("invocation.breaker.trips must be >= 1, got 0");
    if (cfg_.window.count() <= 0) {
        throw std::invalid_argument(
            "invocation.breaker.window must be > 0 ms, got " + std::to_string(cfg_.window.count())
        );
    }
    if (cfg_.cool_down.count() <= 0) {
        throw std::invalid_argument(
            "invocation.breaker.cool_down must be > 0 ms, got " + std::to_string(cfg_.cool_down.count())
        );
    }
}

bool circuit_breaker::open_locked(clock::time_point now) const {
    return open_until_ && now < *open_until_;
}

std::optional<circuit_refusal> circuit_breaker::try_admit() {
    const auto now = clock_.now();
    std::lock_guard g{mu_};
    if (!open_locked(now)) {
        open_until_.reset();  // the cool-down is over (or it never opened): closed, nothing remembered
        return std::nullopt;
    }
    ++stats_.trips[static_cast<std::size_t>(trip_kind::circuit_open)];
    return circuit_refusal{std::chrono::ceil<std::chrono::milliseconds>(*open_until_ - now)};
}

void circuit_breaker::record_trip(trip_kind k) {
    const auto now = clock_.now();
    std::lock_guard g{mu_};
    ++stats_.trips[static_cast<std::size_t>(k)];
    if (k == trip_kind::circuit_open || open_locked(now)) return;
    open_until_.reset();
    recent_.push_back(now);
    while (!recent_.empty() && recent_.front() + cfg_.window <= now) recent_.pop_front();
    if (recent_.size() >= cfg_.trips) {
        recent_.clear();
        open_until_ = now + cfg_.cool_down;
        ++stats_.opens;
    }
}

bool circuit_breaker::is_open() const {
    const auto now = clock_.now();
    std::lock_guard g{mu_};
    return open_locked(now);
}

circuit_breaker_stats circuit_breaker::stats() const {
    const auto now = clock_.now();
    std::lock_guard g{mu_};
    circuit_breaker_stats s = stats_;
    s.open = open_locked(now);
    return s;
}

plugin_breakers::plugin_breakers(circuit_breaker_config cfg, const clock& clk) : cfg_{cfg}, clock_{clk} {
    circuit_breaker check{cfg_, clock_};  // throws for a bad configuration now, not on first use
}

circuit_breaker& plugin_breakers::for_plugin(std::string_view plugin) {
    std::lock_guard g{mu_};
    auto it = breakers_.find(plugin);
    if (it == breakers_.end())
        it = breakers_.emplace(std::string(plugin), std::make_unique<circuit_breaker>(cfg_, clock_)).first;
    return *it->second;
}

std::vector<std::pair<std::string, circuit_breaker_stats>> plugin_breakers::stats() const {
    std::lock_guard g{mu_};
    std::vector<std::pair<std::string, circuit_breaker_stats>> out;
    out.reserve(breakers_.size());
    for (const auto& [name, b] : breakers_) out.emplace_back(name, b->stats());
    return out;
}

namespace {

// A Prometheus label value: backslash, double quote and newline escaped.
std::string prom_label_value(std::string_view s) {
    std::string r;
    r.reserve(s.size());
    for (char c : s) {
        if (c == '\\') {
            r += "\\\\";
        } else if (c == '"') {
            r += "\\\"";
        } else if (c == '\n') {
            r += "\\n";
        } else {
            r += c;
        }
    }
    return r;
}

void prom_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void prom_sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value) {
    out.append(name).append("{").append(labels).append("} ").append(std::to_string(value)).append("\n");
}

}  // namespace

std::string plugin_breakers::prometheus_text() const {
    const auto all = stats();
    std::string out;
    prom_header(out, "preflight_invocation_trips_total", "counter", "Invocation limit trips per plugin and kind.");
    for (const auto& [plugin, s] : all) {
        const std::string p = "plugin=\"" + prom_label_value(plugin) + "\"";
        for (std::size_t k = 0; k < trip_kind_count; ++k) {
            const std::string labels = p + ",kind=\"" + std::string(to_string(static_cast<trip_kind>(k))) + "\"";
            prom_sample(out, "preflight_invocation_trips_total", labels, s.trips[k]);
        }
    }
    prom_header(out, "preflight_invocation_circuit_opens_total", "counter", "Times a plugin's circuit breaker opened.");
    for (const auto& [plugin, s] : all) {
        prom_sample(
            out, "preflight_invocation_circuit_opens_total", "plugin=\"" + prom_label_value(plugin) + "\"", s.opens
        );
    }
    prom_header(out, "preflight_invocation_circuit_open", "gauge", "1 while a plugin's circuit breaker is open.");
    for (const auto& [plugin, s] : all) {
        prom_sample(
            out, "preflight_invocation_circuit_open", "plugin=\"" + prom_label_value(plugin) + "\"", s.open ? 1 : 0
        );
    }
    return out;
}

}  // namespace preflight::limits
