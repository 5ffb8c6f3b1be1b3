#pragma once

#include <preflight/core/errc.hpp>
#include <preflight/gates/fact.hpp>
#include <preflight/gates/operation.hpp>
#include <preflight/gates/request.hpp>
#include <preflight/gates/verdict.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace preflight::gates {

/// Where a gate runs. Read-only gates run concurrently; stateful gates run in declaration order once every
/// read-only gate passed; the single commit gate runs last and may return a lease.
enum class phase { read_only, stateful, commit };

/// What an error or a timeout of the gate means.
enum class failure_policy {
    fail_open,    ///< counts as a pass; reported through the event hook and the metrics
    fail_closed,  ///< a 503 `gate_unavailable` denial naming the gate, at the gate's precedence
};

[[nodiscard]] std::string_view to_string(phase p) noexcept;
[[nodiscard]] std::string_view to_string(failure_policy p) noexcept;

/// A gate's check: pass, deny, or fail (error result or exception). Must honour terminal cancellation
/// (the pipeline cancels checks it no longer needs and checks over their time budget).
using check_function = std::function<boost::asio::awaitable<result<verdict>>(gate_context&)>;

/// Optional synchronous fast path of a check (e.g. a gate on an in-memory store, or a cache hit): the verdict
/// when it can be given without waiting, nullopt to fall back to the asynchronous `check`. It must not block.
/// A gate answered here costs no coroutine and no timer.
using try_check_function = std::function<std::optional<result<verdict>>(gate_context&)>;

/// Declares one gate. Aggregate with defaults; `name` and `check` are required.
struct gate_spec {
    std::string name;  ///< unique; letters, digits, '_', '-', '.', ':'
    gates::phase phase = phase::read_only;
    /// Operations the gate applies to. `resume` is never gated (rejected at build time); by default `cancel`
    /// and `read` are not gated either.
    std::vector<operation> operations{operation::execute, operation::execute_with_pause};
    std::chrono::milliseconds budget{1000};  ///< time budget of one check (> 0)
    failure_policy on_failure = failure_policy::fail_closed;
    bool shadow = false;             ///< run and record the would-be denial, but never enforce it
    std::vector<std::string> facts;  ///< names of the facts the check awaits (validated at build time)
    /// Non-empty: the gate is declared but off, for this reason (e.g. its store is missing). No run applies it; its
    /// trace entry is skipped with reason "off: <reason>". Such a gate needs no check.
    std::string off;
    check_function check;
    /// Optional synchronous fast path, tried before `check`. A stateful gate's check (or fast path) that consumes
    /// returns `verdict::pass_with_undo`: the pipeline runs that undo when a later gate denies.
    try_check_function try_check;
};

/// A pipeline declaration the builder rejects (thrown by `pipeline_builder::build`). The message names the
/// gate or fact at fault.
class pipeline_config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

}  // namespace preflight::gates
