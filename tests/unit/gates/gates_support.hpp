#pragma once
// Scripted gates for the pipeline tests: each check optionally waits on an Asio timer, then passes, denies,
// fails, or hangs until cancelled, and records what it saw.

#include <preflight/gates/pipeline.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <string>

namespace preflight::test {

namespace asio = boost::asio;
namespace g = preflight::gates;
using namespace std::chrono_literals;

enum class act { pass, deny, error, hang };

/// What a scripted check observed. Shared with the check (the pipeline may outlive the test's locals).
struct probe {
    std::atomic<int> calls{0};
    std::atomic<int> cancelled{0};  ///< saw cancellation while waiting
    std::atomic<int> finished{0};   ///< reached its scripted result
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::time_point ended{};
};

inline asio::awaitable<result<g::verdict>> scripted(
    std::shared_ptr<probe> p, std::chrono::milliseconds latency, act a, int status
) {
    p->calls++;
    p->started = std::chrono::steady_clock::now();
    if (latency.count() > 0 || a == act::hang) {
        asio::steady_timer t(co_await asio::this_coro::executor, a == act::hang ? std::chrono::hours(1) : latency);
        auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            p->cancelled++;
            co_return make_error_code(errc::cancelled);
        }
    }
    p->finished++;
    p->ended = std::chrono::steady_clock::now();
    switch (a) {
        case act::pass: co_return g::verdict::pass();
        case act::deny:
            co_return g::verdict::deny(g::denial{
                status, "denied_" + std::to_string(status), "no", std::nullopt, std::nullopt});
        default: co_return make_error_code(errc::store_unavailable);
    }
}

/// A read-only gate running `scripted`.
inline g::gate_spec scripted_gate(
    std::string name,
    std::shared_ptr<probe> p,
    std::chrono::milliseconds latency,
    act a,
    int status = 403,
    g::failure_policy policy = g::failure_policy::fail_closed
) {
    g::gate_spec s;
    s.name = std::move(name);
    s.on_failure = policy;
    s.check = [p, latency, a, status](g::gate_context&) { return scripted(p, latency, a, status); };
    return s;
}

/// How a run started by `spawn_cancellable` ended.
struct spawned_run {
    bool completed = false;
    std::exception_ptr error;
};

/// An execute request for `org` (user "user_1"): the request most pipeline tests run.
inline g::request exec_request(std::string org = "org_1") {
    g::request r;
    r.op = g::operation::execute;
    r.subject.org = std::move(org);
    r.subject.user = "user_1";
    return r;
}

/// What a sequential oracle says a run decides: the property tests compare the pipeline with it.
struct expected {
    bool allowed = true;
    std::string gate;
    int status = 200;
};

/// Starts `p.run(r)` on `ctx` with `sig` as its cancellation slot; `out` records its completion. `p`, `sig` and
/// `out` must outlive the run.
inline void spawn_cancellable(
    asio::io_context& ctx, const g::pipeline& p, g::request r, asio::cancellation_signal& sig, spawned_run& out
) {
    asio::co_spawn(
        ctx,
        p.run(std::move(r)),
        asio::bind_cancellation_slot(
            sig.slot(),
            [&out](std::exception_ptr ep, g::decision) {
                out.error = ep;
                out.completed = true;
            }
        )
    );
}

}  // namespace preflight::test
