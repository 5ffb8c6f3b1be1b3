#pragma once

// Helpers of the built-in gate tests: a run helper, a resolved configuration, a fixed wall clock, and
// scripted/failing stores.

#include <preflight/clients/facts/subject_facts.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/limits/window_refund.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace preflight::builtin_test {

namespace asio = boost::asio;
namespace g = preflight::gates;

/// Runs `aw` on `io` until it completes, then drains what it left (e.g. a slow provider call that outlived
/// its gate's budget).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> aw) {
    auto fut = asio::co_spawn(io, std::move(aw), asio::use_future);
    io.restart();
    // run_one until done, not run(): a Postgres pool keeps socket waits pending, so the context never runs
    // out of work. A coroutine that can never complete leaves nothing to run: run_one returns 0.
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (io.run_one() == 0) throw std::logic_error("builtin_test::run: the coroutine did not complete");
    }
    return fut.get();
}

/// A resolved configuration: the built-in keys with `overrides` as the file layer (dotted keys), no env/flags.
inline preflight::config make_config(const boost::json::object& overrides = {}) {
    preflight::config_registry reg;
    g::register_default_pipeline_config(reg);
    preflight::config_inputs in;
    in.file = boost::json::value(overrides);
    in.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    in.environment = std::vector<std::string>{};
    return preflight::config::resolve(reg, in);
}

inline std::chrono::system_clock::time_point fixed_wall_time() {
    using namespace std::chrono;
    return sys_days{year{2026} / November / 15} + hours{12};
}

/// A balance source that counts calls and answers by mode.
class scripted_balance final : public clients::balance_source {
public:
    /// `slow`: answers allowed after `delay` (honours cancellation); `deaf`: the same, ignoring cancellation (a
    /// client whose own time-out is not ours).
    enum class mode { allowed, blocked, fail, unknown, slow, deaf };
    explicit scripted_balance(mode m, std::chrono::milliseconds delay = std::chrono::milliseconds{250})
        : mode_(m), delay_(delay) {}

    asio::awaitable<result<clients::balance_outcome>> check(std::string org_id) override {
        calls.fetch_add(1);
        last_org = org_id;
        switch (mode_.load()) {
            case mode::allowed: co_return clients::balance_outcome{};
            case mode::blocked: {
                clients::balance_outcome o;
                o.allowed = false;
                o.remaining = 0;
                o.reason = "no executions left";
                co_return o;
            }
            case mode::fail: co_return make_error_code(errc::store_unavailable);
            case mode::unknown: co_return make_error_code(errc::not_found);
            case mode::slow: {
                asio::steady_timer t(co_await asio::this_coro::executor, delay_);
                co_await t.async_wait(asio::use_awaitable);
                co_return clients::balance_outcome{};
            }
            case mode::deaf: {
                asio::steady_timer t(co_await asio::this_coro::executor, delay_);
                co_await t.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
                finished.fetch_add(1);
                co_return clients::balance_outcome{};
            }
        }
        co_return make_error_code(errc::protocol_error);
    }

    void set(mode m) { mode_ = m; }

    std::atomic<int> calls{0};
    std::atomic<int> finished{0};  ///< deaf calls that ran to their end
    std::string last_org;

private:
    std::atomic<mode> mode_;
    std::chrono::milliseconds delay_;
};

/// A subscription store that forwards to another one and counts the lookups.
class counting_subscriptions final : public clients::subscription_store {
public:
    explicit counting_subscriptions(std::shared_ptr<clients::subscription_store> inner) : inner_(std::move(inner)) {}
    asio::awaitable<result<std::optional<clients::subscription>>> find_highest_priority(
        std::string user, std::string org
    ) override {
        calls.fetch_add(1);
        co_return co_await inner_->find_highest_priority(std::move(user), std::move(org));
    }
    std::atomic<int> calls{0};

private:
    std::shared_ptr<clients::subscription_store> inner_;
};

/// A subscription store that always fails.
class failing_subscriptions final : public clients::subscription_store {
public:
    asio::awaitable<result<std::optional<clients::subscription>>> find_highest_priority(std::string, std::string)
        override {
        co_return make_error_code(errc::store_unavailable);
    }
};

/// A usage store that always fails.
class failing_usage final : public clients::usage_store {
public:
    // Reads are what this double is about; recording is accepted and forgotten.
    asio::awaitable<result<bool>> record(std::string, std::string, std::string, clients::usage) override {
        co_return true;
    }
    asio::awaitable<result<clients::usage>> get(std::string, std::string) override {
        co_return make_error_code(errc::store_unavailable);
    }
};

/// A combined read (`store_set::subject_facts`) that always fails and claims to answer for any stores.
class failing_subject_facts final : public clients::subject_facts_source {
public:
    asio::awaitable<result<clients::subject_facts>> load(clients::subject_facts_query) override {
        calls.fetch_add(1);
        co_return make_error_code(errc::store_unavailable);
    }
    bool
    answers_for(const clients::ban_store&, const clients::subscription_store&, const clients::usage_store&, const clients::member_store&)
        const noexcept override {
        return true;
    }
    std::atomic<int> calls{0};
};

/// A rate-limit store that always fails (the shared store is unreachable), at once or after hanging for
/// `hang` (honouring cancellation).
class failing_rate_limits final : public limits::rate_limit_store {
public:
    explicit failing_rate_limits(std::chrono::milliseconds hang = std::chrono::milliseconds{0}) : hang_(hang) {}

    asio::awaitable<result<limits::acquire_result>> acquire(std::string, limits::bucket_limit, std::uint32_t) override {
        calls.fetch_add(1);
        if (hang_.count() > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor, hang_);
            co_await t.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
        }
        co_return make_error_code(errc::store_unavailable);
    }
    asio::awaitable<result<void>> refund(std::string, limits::bucket_limit, std::uint32_t) override {
        co_return make_error_code(errc::store_unavailable);
    }
    std::atomic<int> calls{0};

private:
    std::chrono::milliseconds hang_;
};

/// Collects the pipeline's events.
struct event_log {
    std::mutex m;
    std::vector<std::pair<std::string, std::string>> events;  // (kind:gate, reason)
    g::event_hook hook() {
        return [this](const g::gate_event& e) {
            std::lock_guard lock(m);
            events.emplace_back(std::string(g::to_string(e.kind)) + ":" + std::string(e.gate), std::string(e.reason));
        };
    }
    std::size_t count(const std::string& kind_gate) {
        std::lock_guard lock(m);
        std::size_t n = 0;
        for (const auto& [k, r] : events) n += k == kind_gate ? 1 : 0;
        return n;
    }
};

/// The standard seed: org_ok (pro, usage 10) with member user_ok; org_over (free, usage at the limit);
/// user_banned; org_capped with user_capped at its member cap.
inline const char* const standard_seed = R"({
  "bans": [{"subject_id": "user_banned", "reason": "abuse"}],
  "subscriptions": [
    {"owner_id": "org_ok", "plan": "pro", "status": "active", "seats": 5},
    {"owner_id": "org_over", "plan": "free", "status": "active", "seats": 1},
    {"owner_id": "org_capped", "plan": "team", "status": "active", "seats": 5}
  ],
  "usage": [
    {"subject_id": "org_ok", "period_start": "2026-11-01", "requests": 10, "tokens": 0},
    {"subject_id": "org_over", "period_start": "2026-11-01", "requests": 1000, "tokens": 0},
    {"subject_id": "org_over", "period_start": "2026-10-01", "requests": 0, "tokens": 0}
  ],
  "members": [
    {"org_id": "org_ok", "user_id": "user_ok", "role": "admin"},
    {"org_id": "org_capped", "user_id": "user_capped", "role": "member", "usage_cap": 5, "used": 5},
    {"org_id": "org_capped", "user_id": "user_free", "role": "member", "usage_cap": 5, "used": 4}
  ],
  "balances": [
    {"org_id": "org_ok", "remaining": 100},
    {"org_id": "org_over", "remaining": 100},
    {"org_id": "org_capped", "remaining": 100}
  ]
})";

}  // namespace preflight::builtin_test
