#include <preflight/gates/metrics.hpp>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <thread>

namespace preflight::gates {
namespace {

constexpr std::size_t shards = 8;
constexpr std::size_t n_buckets = pipeline_metrics::bucket_bounds.size() + 1;  // + Inf
// Slots of a cell: outcomes, fail_open, shadow denials, buckets, sum (ns), timed count.
constexpr std::size_t slot_fail_open = gate_outcome_count;
constexpr std::size_t slot_shadow = slot_fail_open + 1;
constexpr std::size_t slot_bucket0 = slot_shadow + 1;
constexpr std::size_t slot_sum_ns = slot_bucket0 + n_buckets;
constexpr std::size_t slot_timed = slot_sum_ns + 1;
constexpr std::size_t n_slots = slot_timed + 1;

std::size_t my_shard() noexcept {
    thread_local const std::size_t shard = std::hash<std::thread::id>{}(std::this_thread::get_id()) % shards;
    return shard;
}

std::string escape_label(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

}  // namespace

struct alignas(64) pipeline_metrics::cell {
    std::array<std::atomic<std::uint64_t>, n_slots> v{};
};

pipeline_metrics::pipeline_metrics(std::vector<std::string> gate_names)
    : names_(std::move(gate_names)), cells_(std::make_unique<cell[]>(shards * names_.size())) {}

pipeline_metrics::~pipeline_metrics() = default;

void pipeline_metrics::record(std::size_t gate, const gate_trace& t) noexcept {
    if (gate >= names_.size()) return;
    auto& c = cells_[my_shard() * names_.size() + gate];
    constexpr auto rel = std::memory_order_relaxed;
    c.v[static_cast<std::size_t>(t.outcome)].fetch_add(1, rel);
    if (t.fail_open) c.v[slot_fail_open].fetch_add(1, rel);
    if (t.would_deny) c.v[slot_shadow].fetch_add(1, rel);
    if (t.outcome == gate_outcome::skipped) return;
    const double secs = std::chrono::duration<double>(t.duration).count();
    std::size_t b = 0;
    while (b < bucket_bounds.size() && secs > bucket_bounds[b]) ++b;
    c.v[slot_bucket0 + b].fetch_add(1, rel);
    c.v[slot_sum_ns].fetch_add(static_cast<std::uint64_t>(t.duration.count() < 0 ? 0 : t.duration.count()), rel);
    c.v[slot_timed].fetch_add(1, rel);
}

void pipeline_metrics::record_decision(bool allowed) noexcept {
    decisions_[allowed ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
}

std::size_t pipeline_metrics::index_of(std::string_view gate) const {
    for (std::size_t i = 0; i < names_.size(); ++i) {
        if (names_[i] == gate) return i;
    }
    throw std::out_of_range("pipeline_metrics: unknown gate '" + std::string(gate) + "'");
}

std::uint64_t pipeline_metrics::sum(std::size_t gate, std::size_t slot) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < shards; ++s)
        total += cells_[s * names_.size() + gate].v[slot].load(std::memory_order_relaxed);
    return total;
}

std::uint64_t pipeline_metrics::count(std::string_view gate, gate_outcome o) const {
    return sum(index_of(gate), static_cast<std::size_t>(o));
}
std::uint64_t pipeline_metrics::fail_open_count(std::string_view gate) const {
    return sum(index_of(gate), slot_fail_open);
}
std::uint64_t pipeline_metrics::shadow_denial_count(std::string_view gate) const {
    return sum(index_of(gate), slot_shadow);
}
std::uint64_t pipeline_metrics::decisions(bool allowed) const noexcept {
    return decisions_[allowed ? 1 : 0].load(std::memory_order_relaxed);
}

std::string pipeline_metrics::prometheus_text() const {
    std::string out;
    out += "# HELP preflight_gate_outcomes_total Gate results by outcome.\n";
    out += "# TYPE preflight_gate_outcomes_total counter\n";
    for (std::size_t g = 0; g < names_.size(); ++g) {
        for (std::size_t o = 0; o < gate_outcome_count; ++o) {
            out += "preflight_gate_outcomes_total{gate=\"" + escape_label(names_[g]) + "\",outcome=\"" +
                   std::string(to_string(static_cast<gate_outcome>(o))) + "\"} " + std::to_string(sum(g, o)) + "\n";
        }
    }
    out += "# HELP preflight_gate_fail_open_total Errors and timeouts counted as a pass by policy.\n";
    out += "# TYPE preflight_gate_fail_open_total counter\n";
    for (std::size_t g = 0; g < names_.size(); ++g) {
        out += "preflight_gate_fail_open_total{gate=\"" + escape_label(names_[g]) + "\"} " +
               std::to_string(sum(g, slot_fail_open)) + "\n";
    }
    out += "# HELP preflight_gate_shadow_denials_total Denials of gates in shadow mode (not enforced).\n";
    out += "# TYPE preflight_gate_shadow_denials_total counter\n";
    for (std::size_t g = 0; g < names_.size(); ++g) {
        out += "preflight_gate_shadow_denials_total{gate=\"" + escape_label(names_[g]) + "\"} " +
               std::to_string(sum(g, slot_shadow)) + "\n";
    }
    out += "# HELP preflight_gate_duration_seconds Time from a gate's start to its result.\n";
    out += "# TYPE preflight_gate_duration_seconds histogram\n";
    for (std::size_t g = 0; g < names_.size(); ++g) {
        const auto label = "gate=\"" + escape_label(names_[g]) + "\"";
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < n_buckets; ++b) {
            cumulative += sum(g, slot_bucket0 + b);
            const auto le = b < bucket_bounds.size() ? format_double(bucket_bounds[b]) : std::string("+Inf");
            out += "preflight_gate_duration_seconds_bucket{" + label + ",le=\"" + le + "\"} " +
                   std::to_string(cumulative) + "\n";
        }
        out += "preflight_gate_duration_seconds_sum{" + label + "} " +
               format_double(static_cast<double>(sum(g, slot_sum_ns)) / 1e9) + "\n";
        out += "preflight_gate_duration_seconds_count{" + label + "} " + std::to_string(sum(g, slot_timed)) + "\n";
    }
    out += "# HELP preflight_decisions_total Decisions by result.\n";
    out += "# TYPE preflight_decisions_total counter\n";
    out += "preflight_decisions_total{result=\"allow\"} " + std::to_string(decisions(true)) + "\n";
    out += "preflight_decisions_total{result=\"deny\"} " + std::to_string(decisions(false)) + "\n";
    return out;
}

}  // namespace preflight::gates
