#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace preflight::gates {

/// Releases what a commit gate reserved (e.g. an admission slot). Called at most once per lease.
using release_function = std::function<boost::asio::awaitable<result<void>>()>;

/// Reports a failed release of a lease dropped without an explicit release (the destructor cannot return it).
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
    /// (may be empty) hears about failures of that release.
    lease(std::string id, release_function release, boost::asio::any_io_executor ex, release_error_hook on_error);
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
    boost::asio::awaitable<result<void>> release();

    /// Starts the release in the background on the lease's executor and returns at once. No-op when released.
    void release_detached();

private:
    struct state {
        std::atomic<bool> released{false};
        release_function fn;
        boost::asio::any_io_executor ex;
        release_error_hook on_error;
    };
    std::string id_;
    std::unique_ptr<state> state_;
};

}  // namespace preflight::gates
