#pragma once

#include <preflight/gates/lease.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace preflight::gates {

/// What a limiter knows about its limit after this request: on a denial and on a pass alike (for the
/// RateLimit-Policy / RateLimit HTTP fields of draft-ietf-httpapi-ratelimit-headers, and the near-limit metric).
/// `window` 0: a quota that is not a rate over a time window (a concurrency or monthly limit): no RateLimit fields.
struct limiter_info {
    std::uint64_t limit = 0;         ///< quota units per window (`q`)
    std::uint64_t remaining = 0;     ///< units left now (`r`)
    std::chrono::seconds window{0};  ///< the policy window (`w`); 0: not a time-window policy
    std::chrono::seconds reset{0};   ///< until the quota is restored (`t`)
};

/// Why a gate refuses. `status` is an HTTP status (403 ban, 402 usage, 429 rate limit, 503 unavailable).
struct denial {
    int status = 403;
    std::string code;     ///< machine code, e.g. "rate_limited"
    std::string message;  ///< client-safe text
    std::optional<std::chrono::milliseconds> retry_after;
    std::optional<limiter_info> limiter;  ///< set by limiter gates
    /// Extra client-safe members of the error object, as strings (e.g. `banned_until`); never internal keys.
    std::vector<std::pair<std::string, std::string>> details{};
};

/// Gives back what a stateful gate's passing check consumed, when a later stateful gate or the commit denies (or the
/// caller cancels the run). Made by the check that consumed, so it knows exactly what to give back (key, limit,
/// quantity) without looking anything up again. Called at most once.
using undo_function = std::function<boost::asio::awaitable<result<void>>()>;

/// The answer of a gate's check: pass (a stateful gate may attach its undo, the commit gate a lease) or deny.
class verdict {
public:
    /// Pass (the default).
    verdict() = default;
    [[nodiscard]] static verdict pass() { return {}; }
    /// Pass and hand over a reservation; the pipeline wraps it in the decision's `lease`.
    /// `hooks` (optional): renewal, a synchronous release, usage recording (`lease_hooks`).
    [[nodiscard]] static verdict pass_with_lease(
        std::string lease_id, release_function release, lease_hooks hooks = {}
    ) {
        verdict v;
        v.lease_id_ = std::move(lease_id);
        v.release_ = std::move(release);
        v.hooks_ = std::move(hooks);
        return v;
    }
    /// Pass, with what undoes the consume (stateful gates; ignored from other phases). An empty `undo` is a plain pass.
    [[nodiscard]] static verdict pass_with_undo(undo_function undo) {
        verdict v;
        v.undo_ = std::move(undo);
        return v;
    }
    [[nodiscard]] static verdict deny(denial d) {
        verdict v;
        v.denial_ = std::move(d);
        return v;
    }

    /// The store key this gate counted under for the request (its trace entry shows it; never a denial message).
    void set_key(std::string key) { key_ = std::move(key); }
    /// A passing limiter's figures after this request (a denial carries its own in `denial::limiter`).
    void set_limiter(limiter_info l) noexcept { limiter_ = l; }

    [[nodiscard]] bool passed() const noexcept { return !denial_.has_value(); }
    [[nodiscard]] std::string& key() noexcept { return key_; }
    [[nodiscard]] const std::optional<limiter_info>& limiter() const noexcept { return limiter_; }
    [[nodiscard]] const std::optional<denial>& denied() const noexcept { return denial_; }
    [[nodiscard]] std::optional<denial>& denied() noexcept { return denial_; }
    [[nodiscard]] const std::string& lease_id() const noexcept { return lease_id_; }
    [[nodiscard]] std::string& lease_id() noexcept { return lease_id_; }
    [[nodiscard]] release_function& release() noexcept { return release_; }
    [[nodiscard]] undo_function& undo() noexcept { return undo_; }
    [[nodiscard]] lease_hooks& hooks() noexcept { return hooks_; }

private:
    std::optional<denial> denial_;
    std::string lease_id_;
    release_function release_;
    undo_function undo_;
    lease_hooks hooks_;
    std::string key_;
    std::optional<limiter_info> limiter_;
};

}  // namespace preflight::gates
