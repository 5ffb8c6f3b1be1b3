#include <preflight/gates/metrics.hpp>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace preflight::gates {
namespace {

constexpr std::size_t shards = 8;
constexpr std::size_t n_buckets = pipeline_metrics::bucket_bounds.size() + 1;  // + Inf
// Slots of a cell: outcomes, fail_open, shadow denials, near-limit passes, buckets, sum (ns), timed count.
constexpr std::size_t slot_fail_open = gate_outcome_count;
constexpr std::size_t slot_shadow = slot_fail_open + 1;
constexpr std::size_t slot_near_limit = slot_shadow + 1;
constexpr std::size_t slot_bucket0 = slot_near_limit + 1;
constexpr std::size_t slot_sum_ns = slot_bucket0 + n_buckets;
constexpr std::size_t slot_timed = slot_sum_ns + 1;
constexpr std::size_t n_slots = slot_timed + 1;

// Shards 0 .. shards-2 are owned by one thread each (process-wide: a thread keeps its shard in every
// pipeline_metrics until it exits, then the shard goes back to a free list). The owner updates its cells with a
// relaxed load + store, no locked instruction. Threads beyond that share the last shard and use fetch_add.
constexpr std::size_t shared_shard = shards - 1;

struct shard_registry {
    std::mutex m;
    std::vector<std::size_t> free;
    std::size_t next = 0;
};

shard_registry& registry() {
    static shard_registry r;  // never destroyed before the threads that use it (function-local static)
    return r;
}

struct thread_shard {
    std::size_t index = shared_shard;
    thread_shard() {
        auto& r = registry();
        std::lock_guard lock(r.m);
        if (!r.free.empty()) {
            index = r.free.back();
            r.free.pop_back();
        } else if (r.next < shared_shard) {
            index = r.next++;
        }
    }
    ~thread_shard() {
        if (index == shared_shard) return;
        auto& r = registry();
        std::lock_guard lock(r.m);
        try {
            r.free.push_back(index);  // the mutex orders this thread's last updates before the next owner's
        } catch (...) {               // NOLINT(bugprone-empty-catch): the shard is lost for reuse, nothing else
        }
    }
    thread_shard(const thread_shard&) = delete;
    thread_shard& operator=(const thread_shard&) = delete;
};

std::size_t my_shard() noexcept {
    thread_local const thread_shard shard;
    return shard.index;
}

/// Adds `v` to a counter of shard `shard`: plain load + store for the owner of an exclusive shard.
inline void bump(std::atomic<std::uint64_t>& a, std::uint64_t v, std::size_t shard) noexcept {
    if (shard == shared_shard) {
        a.fetch_add(v, std::memory_order_relaxed);
    } else {
        a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    }
}

constexpr auto bucket_bounds_ns = [] {
    std::array<std::int64_t, pipeline_metrics::bucket_bounds.size()> out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::int64_t>(pipeline_metrics::bucket_bounds[i] * 1e9 + 0.5);
    }
    return out;
}();

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

void append_prometheus_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void append_prometheus_sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value) {
    out.append(name).append(labels).append(" ").append(std::to_string(value)).append("\n");
}

void append_prometheus_metric(
    std::string& out, std::string_view name, std::string_view type, std::string_view help, std::uint64_t value
) {
    append_prometheus_header(out, name, type, help);
    append_prometheus_sample(out, name, {}, value);
}

struct alignas(64) pipeline_metrics::cell {
    std::array<std::atomic<std::uint64_t>, n_slots> v{};
};

// Per shard: one cell per gate, then one cell for the decisions (slots 0 = deny, 1 = allow).
pipeline_metrics::pipeline_metrics(std::vector<std::string> gate_names, double near_limit_fraction)
    : names_(std::move(gate_names)),
      cells_(std::make_unique<cell[]>(shards * (names_.size() + 1))),
      near_limit_fraction_(near_limit_fraction) {}

pipeline_metrics::~pipeline_metrics() = default;

void pipeline_metrics::record(std::size_t gate, const gate_trace& t) noexcept {
    if (gate >= names_.size()) return;
    const std::size_t shard = my_shard();
    auto& c = cells_[shard * (names_.size() + 1) + gate];
    bump(c.v[static_cast<std::size_t>(t.outcome)], 1, shard);
    if (t.fail_open) bump(c.v[slot_fail_open], 1, shard);
    if (t.would_deny) bump(c.v[slot_shadow], 1, shard);
    if (t.outcome == gate_outcome::pass && t.limiter && t.limiter->limit > 0 &&
        static_cast<double>(t.limiter->remaining) < near_limit_fraction_ * static_cast<double>(t.limiter->limit)) {
        bump(c.v[slot_near_limit], 1, shard);
    }
    if (t.outcome == gate_outcome::skipped) return;
    const std::int64_t ns = t.duration.count() < 0 ? 0 : static_cast<std::int64_t>(t.duration.count());
    std::size_t b = 0;
    while (b < bucket_bounds_ns.size() && ns > bucket_bounds_ns[b]) ++b;
    bump(c.v[slot_bucket0 + b], 1, shard);
    bump(c.v[slot_sum_ns], static_cast<std::uint64_t>(ns), shard);
    bump(c.v[slot_timed], 1, shard);
}

void pipeline_metrics::record_decision(bool allowed) noexcept {
    const std::size_t shard = my_shard();
    bump(cells_[shard * (names_.size() + 1) + names_.size()].v[allowed ? 1 : 0], 1, shard);
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
        total += cells_[s * (names_.size() + 1) + gate].v[slot].load(std::memory_order_relaxed);
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
std::uint64_t pipeline_metrics::near_limit_count(std::string_view gate) const {
    return sum(index_of(gate), slot_near_limit);
}
std::uint64_t pipeline_metrics::decisions(bool allowed) const noexcept {
    return sum(names_.size(), allowed ? 1 : 0);
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
    out +=
        "# HELP preflight_gate_near_limit_total Passes of a limiter whose remaining quota fell under the "
        "near-limit fraction of its limit.\n";
    out += "# TYPE preflight_gate_near_limit_total counter\n";
    for (std::size_t g = 0; g < names_.size(); ++g) {
        out += "preflight_gate_near_limit_total{gate=\"" + escape_label(names_[g]) + "\"} " +
               std::to_string(sum(g, slot_near_limit)) + "\n";
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
    append_prometheus_metric(
        out,
        "preflight_leases_lost_total",
        "counter",
        "Dropped leases whose release never ran (their io_context went first; the store's ttl expires them).",
        leases_lost()
    );
    return out;
}

}  // namespace preflight::gates
