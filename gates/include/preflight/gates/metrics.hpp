#pragma once

#include <preflight/gates/decision.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace preflight::gates {

/// Appends the `# HELP` and `# TYPE` lines of one Prometheus metric (text exposition format 0.0.4).
void append_prometheus_header(std::string& out, std::string_view name, std::string_view type, std::string_view help);
/// Appends one sample line: `name{labels} value`, `labels` already formatted with its braces (or empty).
void append_prometheus_sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value);
/// A metric with one unlabelled sample: its header, then the sample.
void append_prometheus_metric(
    std::string& out, std::string_view name, std::string_view type, std::string_view help, std::uint64_t value
);

/// Counters per gate x outcome, fail-open and shadow-denial counters, and a latency histogram per gate;
/// exported as Prometheus text. Owned by a pipeline.
/// Thread safety: every member may be called concurrently (relaxed atomics in per-thread shards: the first
/// threads each own a shard and update it without locked instructions, later threads share one shard);
/// reads are approximate while runs are in flight.
class pipeline_metrics {
public:
    /// Upper bounds of the latency buckets, in seconds (plus +Inf).
    static constexpr std::array<double, 12> bucket_bounds{
        0.000001, 0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0};

    /// `near_limit_fraction`: a limiter's pass counts as near its limit when its remaining quota is under this
    /// fraction of the limit (`gate_trace::limiter`; 0: never).
    explicit pipeline_metrics(std::vector<std::string> gate_names, double near_limit_fraction = 0.1);
    ~pipeline_metrics();
    pipeline_metrics(const pipeline_metrics&) = delete;
    pipeline_metrics& operator=(const pipeline_metrics&) = delete;

    /// Records one gate result (skipped gates are counted but not timed).
    void record(std::size_t gate, const gate_trace& t) noexcept;
    void record_decision(bool allowed) noexcept;

    [[nodiscard]] std::uint64_t count(std::string_view gate, gate_outcome o) const;
    [[nodiscard]] std::uint64_t fail_open_count(std::string_view gate) const;
    [[nodiscard]] std::uint64_t shadow_denial_count(std::string_view gate) const;
    /// Passes of `gate` whose remaining quota was under the near-limit fraction of its limit.
    [[nodiscard]] std::uint64_t near_limit_count(std::string_view gate) const;
    [[nodiscard]] std::uint64_t decisions(bool allowed) const noexcept;
    /// A lease dropped whose release could never run (`event_kind::lease_lost`).
    void record_lease_lost() noexcept { leases_lost_.fetch_add(1, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t leases_lost() const noexcept { return leases_lost_.load(std::memory_order_relaxed); }

    /// Prometheus text exposition format 0.0.4: preflight_gate_outcomes_total{gate,outcome},
    /// preflight_gate_fail_open_total{gate}, preflight_gate_shadow_denials_total{gate},
    /// preflight_gate_near_limit_total{gate},
    /// preflight_gate_duration_seconds{gate} (histogram), preflight_decisions_total{result},
    /// preflight_leases_lost_total.
    [[nodiscard]] std::string prometheus_text() const;

private:
    struct cell;
    [[nodiscard]] std::size_t index_of(std::string_view gate) const;
    [[nodiscard]] std::uint64_t sum(std::size_t gate, std::size_t slot) const noexcept;

    std::vector<std::string> names_;
    std::unique_ptr<cell[]> cells_;  // shards x (gates + 1 decision cell)
    std::atomic<std::uint64_t> leases_lost_{0};
    double near_limit_fraction_;
};

}  // namespace preflight::gates
