#include <preflight/limits/coarse_clock.hpp>

#include <time.h>

namespace preflight::limits {
namespace {

class coarse_clock_source final : public preflight::clock {
public:
    [[nodiscard]] time_point now() const noexcept override {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return time_point{std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec}};
    }
};

}  // namespace

const preflight::clock& coarse_steady_clock() noexcept {
    static const coarse_clock_source instance;
    return instance;
}

preflight::clock::duration coarse_clock_resolution() noexcept {
    timespec ts{};
    ::clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::duration_cast<preflight::clock::duration>(
        std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec}
    );
}

}  // namespace preflight::limits
