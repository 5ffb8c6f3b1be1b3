#pragma once

#include <atomic>
#include <chrono>

namespace preflight {

/// Source of monotonic time for limiters and caches. Inject a `manual_clock` in tests.
/// Thread safety: implementations must be safe to call from any thread.
class clock {
public:
    using duration = std::chrono::steady_clock::duration;
    using time_point = std::chrono::steady_clock::time_point;

    virtual ~clock() = default;
    [[nodiscard]] virtual time_point now() const noexcept = 0;

    /// The process-wide steady clock (never destroyed).
    static const clock& steady() noexcept;
};

/// A clock that moves only when told to. Thread-safe.
class manual_clock final : public clock {
public:
    explicit manual_clock(time_point start = time_point{} + std::chrono::hours{24}) noexcept
        : now_{start.time_since_epoch().count()} {}

    [[nodiscard]] time_point now() const noexcept override {
        return time_point{duration{now_.load(std::memory_order_acquire)}};
    }
    void advance(duration d) noexcept { now_.fetch_add(d.count(), std::memory_order_acq_rel); }
    void set(time_point t) noexcept { now_.store(t.time_since_epoch().count(), std::memory_order_release); }

private:
    std::atomic<duration::rep> now_;
};

}  // namespace preflight
