#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/gates/decision.hpp>
#include <preflight/gates/detail/fact_box.hpp>
#include <preflight/gates/fact.hpp>
#include <preflight/gates/gate.hpp>
#include <preflight/gates/metrics.hpp>
#include <preflight/gates/request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::gates {

/// Something an operator should hear about, reported through `pipeline_config::on_event`.
enum class event_kind {
    fail_open,            ///< a gate's error/timeout was counted as a pass
    compensation_failed,  ///< a refund of an earlier stateful consume failed
    release_failed,       ///< a lease dropped without explicit release failed to release
    gate_off,             ///< a gate is declared but off (`gate_spec::off`), said once when the pipeline is built
    lease_lost,           ///< a dropped lease's release never ran (its io_context went first): not released
    shadow_denial,        ///< a gate in shadow mode would have denied (or failed closed); not enforced
};

[[nodiscard]] std::string_view to_string(event_kind k) noexcept;

struct gate_event {
    event_kind kind;
    std::string_view gate;    ///< the gate concerned (or the lease id for release_failed)
    std::string_view reason;  ///< error text
    boost::system::error_code code;
};

/// Called once per event, from whichever thread runs the run. Must be thread-safe and must not throw.
using event_hook = std::function<void(const gate_event&)>;

/// Options of a pipeline. Aggregate with defaults in every field.
struct pipeline_config {
    /// Source of the trace's timestamps and durations. Must outlive the pipeline.
    const preflight::clock* clock = &preflight::clock::steady();
    event_hook on_event;  ///< empty: events are only counted in the metrics
    bool metrics = true;  ///< maintain `pipeline::metrics()`
    /// Shadow mode for the whole pipeline: every gate runs and reports (trace `would_deny`, the metric
    /// `preflight_gate_shadow_denials_total`, an `event_kind::shadow_denial` event), none is enforced: every decision
    /// is allowed. Per gate: `gate_spec::shadow`.
    bool shadow = false;
    /// A limiter gate's pass counts in `preflight_gate_near_limit_total{gate}` when its remaining quota
    /// (`gate_trace::limiter`) is under this fraction of its limit. 0: never; at most 1.
    double near_limit_fraction = 0.1;
};

namespace detail {
struct pipeline_impl;
}  // namespace detail

class pipeline;

/// Declares facts and gates, then builds an immutable pipeline. Not thread-safe; use once.
class pipeline_builder {
public:
    explicit pipeline_builder(pipeline_config config = {});

    /// Registers fact `name`, loaded by `loader` at most once per run, eagerly when a run begins (for runs with
    /// a gate that declares it). The loader's error (or exception) becomes the error of every gate awaiting it.
    /// Lifetime: the loader is kept by the pipeline. Duplicate names are reported by `build()`.
    /// `try_loader` (optional) answers synchronously when it can; the loader runs otherwise.
    template <class T>
    fact_key<T> add_fact(std::string name, fact_loader<T> loader, fact_try_loader<T> try_loader = {}) {
        std::size_t index = facts_.size();
        detail::erased_loader erased = [loader = std::move(loader)](const request& r
                                       ) -> boost::asio::awaitable<detail::fact_box> {
            result<T> res = co_await loader(r);
            if (!res) co_return detail::fact_box::failure(res.error(), res.error().message());
            co_return detail::fact_box::of(std::move(*res));
        };
        detail::erased_try_loader erased_try;
        if (try_loader) {
            erased_try = [try_loader = std::move(try_loader)](const request& r, detail::fact_box& out) {
                std::optional<result<T>> res = try_loader(r);
                if (!res) return false;
                out = *res ? detail::fact_box::of(std::move(**res))
                           : detail::fact_box::failure(res->error(), res->error().message());
                return true;
            };
        }
        facts_.push_back(detail::fact_def{name, std::type_index(typeid(T)), std::move(erased), std::move(erased_try)});
        return fact_key<T>(std::move(name), index);
    }

    /// Adds a gate. Precedence among read-only gates (and order among stateful gates) is declaration order.
    pipeline_builder& add_gate(gate_spec spec);

    /// Validates and builds. Throws `pipeline_config_error` naming the culprit for: no gates; a gate without
    /// name or check; an invalid or duplicate gate name; a duplicate fact name; a gate that declares an
    /// unknown fact; a gate with no operations (an empty phase for that gate) or that gates `resume`; a budget
    /// <= 0; more than one commit gate; more than 64 read-only gates; a null clock.
    [[nodiscard]] pipeline build();

private:
    pipeline_config config_;
    std::vector<gate_spec> gates_;
    std::vector<detail::fact_def> facts_;
};

/// An immutable gate pipeline: cheap to copy (shared state), shared by all threads of a multi-threaded
/// io_context. Each run gets its own facts, traces and cancellation signals.
class pipeline {
public:
    /// Decides `r`. Read-only gates run concurrently (each check starts inline and continues on a per-run
    /// strand); the decision is what a sequential evaluation in declaration order would return. A denial that
    /// is final returns at once; the checks still running are cancelled (terminal) and finish in the
    /// background. Stateful gates then run in order, then the commit gate (whose lease the decision carries).
    /// `resume` runs no gate and is allowed.
    /// Cancellation: terminal cancellation of the awaiting coroutine cancels every running check and throws
    /// `boost::system::system_error(operation_aborted)`; consumes of passed stateful gates are then refunded.
    /// Lifetime: `r` is moved into the run's state when `run()` is called (the state comes from a per-pipeline
    /// pool of recycled run states and returns there when the run and its checks are gone, or when the returned
    /// awaitable is dropped unawaited); the pipeline's state is kept alive by the run.
    /// Thread safety: any number of concurrent runs from any threads.
    [[nodiscard]] boost::asio::awaitable<decision> run(request r) const;

    /// Completion-token edge for code that is not coroutine-based: callbacks
    /// (`void(std::exception_ptr, decision)`), `use_future`, `use_awaitable`, `deferred`. The run executes on `ex`.
    template <class Executor, class CompletionToken>
    auto async_run(Executor ex, request r, CompletionToken&& token) const {
        return boost::asio::co_spawn(std::move(ex), run(std::move(r)), std::forward<CompletionToken>(token));
    }

    /// The pipeline's metrics (counters and histograms). Throws std::logic_error when metrics are disabled.
    [[nodiscard]] const pipeline_metrics& metrics() const;

    /// Gate names in declaration order.
    [[nodiscard]] std::vector<std::string> gate_names() const;

private:
    friend class pipeline_builder;
    explicit pipeline(std::shared_ptr<const detail::pipeline_impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const detail::pipeline_impl> impl_;
};

}  // namespace preflight::gates
