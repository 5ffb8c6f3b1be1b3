#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace preflight::gates {

/// Releases what a commit gate reserved (e.g. an admission slot). Called at most once per lease.
using release_function = std::function<boost::asio::awaitable<result<void>>()>;

/// Extends what a commit gate reserved by its ttl (the one lease ttl of its store's configuration). true: extended;
/// false: no longer live (expired or released).
using renew_function = std::function<boost::asio::awaitable<result<bool>>()>;

/// Releases without waiting (a store that answers at once, e.g. in memory): used when a dropped lease's release
/// could never run (its io_context was destroyed or shut down first).
using release_now_function = std::function<void()>;

/// Records the usage of the execution a lease admitted: once per lease (the store keys the record by the lease id, so a
/// repeated call adds nothing).
using usage_function =
    std::function<boost::asio::awaitable<result<void>>(std::uint64_t requests, std::uint64_t tokens)>;

/// What a commit gate's lease can do besides releasing. Aggregate; every member is optional.
struct lease_hooks {
    renew_function renew;              ///< extends the reservation by its ttl (`lease::renew`)
    release_now_function release_now;  ///< releases synchronously when the release could never run otherwise
    usage_function record_usage;       ///< records the execution's usage on release (`lease::release(requests)`)
};

/// Reports a failed release of a lease dropped without an explicit release (the destructor cannot return it).
/// `errc::cancelled`: the release never ran (its io_context went away first) and the lease has no synchronous
/// release, so it was not released at all (its store's ttl expires it).
using release_error_hook = std::function<void(const std::string& lease_id, boost::system::error_code)>;

/// The reservation a commit gate took for an admitted execution; the caller releases it when the execution
/// ends. Move-only. Release is idempotent: the commit gate's release function runs at most once, a second
/// release (explicit or by the destructor) does nothing. A lease held by a dead process is expired by its
/// store (ttl), not by this object.
/// Thread safety: `release()` may race with another `release()` or `release_detached()`; exactly one wins.
/// Lifetime: the store behind the release function (usually owned with the pipeline) and the io_context of
/// the lease's executor must outlive the lease (the destructor spawns the release there).
class lease {
public:
    lease() = default;
    /// A held lease. `ex` runs the release started by the destructor or `release_detached()`; `on_error`
    /// (may be empty) hears about failures of that release. `hooks`: `renew` (empty: `renew()` fails with
    /// `errc::bad_input`), `release_now` (used when `ex`'s io_context is destroyed before it ran the release),
    /// `record_usage` (called by every release first).
    lease(
        std::string id,
        release_function release,
        boost::asio::any_io_executor ex,
        release_error_hook on_error,
        lease_hooks hooks = {}
    );
    lease(lease&& other) noexcept;
    lease& operator=(lease&& other) noexcept;
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    /// Starts a detached release when still held (errors go to the error hook).
    ~lease();

    /// True until the first release.
    [[nodiscard]] bool held() const noexcept;
    /// The store's id of the reservation (empty for an empty lease).
    [[nodiscard]] const std::string& id() const noexcept { return id_; }

    /// Releases now and waits for the store. Returns success without doing anything when already released
    /// (so a double release is harmless). Cancellation: whatever the release function honours; the lease counts
    /// as released even when that call fails or is cancelled (the store's ttl is the backstop).
    /// With a usage hook, the execution's usage is recorded first: one request (`release()`), or what the caller
    /// says it used (`release(requests, tokens)`); the slot is released even when recording fails (its error is the
    /// answer then).
    boost::asio::awaitable<result<void>> release();
    boost::asio::awaitable<result<void>> release(std::uint64_t requests, std::uint64_t tokens = 0);

    /// Starts the release in the background on the lease's executor and returns at once. No-op when released.
    /// When that io_context is destroyed (or shut down) before it ran the release: releases synchronously if the
    /// lease can, else reports `errc::cancelled` to the error hook. Never silent. (A stopped io_context that is
    /// restarted runs the release as usual.)
    void release_detached();

    /// Extends the held lease by its store's ttl, so that an execution longer than the ttl keeps its slot. false:
    /// released, or no longer live in the store (expired: the slot may be someone else's now). Errors: the store's;
    /// `errc::bad_input` for a lease whose commit gate cannot renew.
    boost::asio::awaitable<result<bool>> renew();

    /// A copy of the lease's renew function (empty when it cannot renew), for a holder that renews from elsewhere
    /// (a registry that must not hold its lock across the store's answer). Empty for an empty lease.
    [[nodiscard]] renew_function renewer() const { return state_ ? state_->hooks.renew : renew_function{}; }

private:
    struct state {
        std::atomic<bool> released{false};
        release_function fn;
        boost::asio::any_io_executor ex;
        release_error_hook on_error;
        lease_hooks hooks;
    };
    std::string id_;
    std::unique_ptr<state> state_;
};

}  // namespace preflight::gates
