// Checks the conformance suites themselves: minimal exact-time reference models of the three store contracts
// (test doubles only, not the library's in-memory stores) must pass every case with tolerance 0 on a
// manual_clock. This also compiles memory_store_factory, which the in-memory instantiation uses.
#include "conformance/admission_store_conformance.hpp"
#include "conformance/fixed_window_store_conformance.hpp"
#include "conformance/memory_factory.hpp"
#include "conformance/rate_limit_store_conformance.hpp"
#include <preflight/core/clock.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

namespace {

using namespace std::chrono;
namespace lim = preflight::limits;

double ns_of(const preflight::clock& c) {
    return static_cast<double>(c.now().time_since_epoch().count());
}
nanoseconds to_ns(double v) {
    return nanoseconds{static_cast<long long>(std::llround(v))};
}

class ref_rate final : public lim::rate_limit_store {
public:
    explicit ref_rate(const preflight::clock& c) : c_(c) {}
    boost::asio::awaitable<preflight::result<lim::acquire_result>> acquire(
        std::string key, lim::bucket_limit l, std::uint32_t q
    ) override {
        std::lock_guard lock{m_};
        const double now = ns_of(c_);
        const double t = 1e9 / l.rate_per_s;
        const double tau = l.burst * t;
        auto it = tat_.find(key);
        const double base = std::max(it == tat_.end() ? now : it->second, now);
        lim::acquire_result r;
        const double need = (q == 0 ? 1 : q) * t;
        r.allowed = base + need - now <= tau;
        double after = base;
        if (q > 0 && r.allowed) {
            after = base + need;
            tat_[key] = after;
        }
        r.retry_after = r.allowed && q > 0 ? 0ns : to_ns(std::max(0.0, base + need - tau - now));
        r.remaining = std::max(0.0, std::floor((now + tau - after) / t + 1e-9));
        r.reset_after = to_ns(after - now);
        co_return r;
    }
    boost::asio::awaitable<preflight::result<void>> refund(std::string key, lim::bucket_limit l, std::uint32_t q)
        override {
        std::lock_guard lock{m_};
        if (auto it = tat_.find(key); it != tat_.end())
            it->second = std::max(it->second - q * 1e9 / l.rate_per_s, ns_of(c_));
        co_return preflight::result<void>{};
    }

private:
    const preflight::clock& c_;
    std::mutex m_;
    std::map<std::string, double> tat_;
};

class ref_window final : public lim::fixed_window_store {
public:
    explicit ref_window(const preflight::clock& c) : c_(c) {}
    boost::asio::awaitable<preflight::result<lim::window_result>> consume(
        std::string key, lim::window_limit l, std::uint64_t n
    ) override {
        std::lock_guard lock{m_};
        const double now = ns_of(c_);
        const double period = static_cast<double>(duration_cast<nanoseconds>(l.period).count());
        const double start = std::floor(now / period) * period;
        auto& w = w_[key];
        if (w.start != start || w.period != period) w = {start, period, 0};
        lim::window_result r;
        r.allowed = w.count + n <= l.max;
        if (r.allowed) w.count += n;
        r.count = w.count;
        r.max = l.max;
        r.reset_after = to_ns(start + period - now);
        co_return r;
    }
    boost::asio::awaitable<preflight::result<std::uint64_t>> purge_idle() override {
        std::lock_guard lock{m_};
        const double now = ns_of(c_);
        std::uint64_t n = 0;
        for (auto it = w_.begin(); it != w_.end();) {
            if (it->second.start + 2 * it->second.period <= now) {
                it = w_.erase(it);
                ++n;
            } else {
                ++it;
            }
        }
        co_return n;
    }

private:
    struct window {
        double start = -1;
        double period = 0;
        std::uint64_t count = 0;
    };
    const preflight::clock& c_;
    std::mutex m_;
    std::map<std::string, window> w_;
};

class ref_admission final : public lim::admission_store {
public:
    explicit ref_admission(const preflight::clock& c) : c_(c) {}
    boost::asio::awaitable<preflight::result<lim::lease_grant>> reserve(
        std::string key, std::uint32_t max, milliseconds ttl
    ) override {
        std::lock_guard lock{m_};
        const auto now = c_.now();
        std::uint32_t live = 0;
        for (const auto& [id, l] : leases_) live += (l.key == key && l.expires > now) ? 1 : 0;
        lim::lease_grant g;
        g.max = max;
        if (live < max) {
            g.admitted = true;
            g.lease_id = "lease-" + std::to_string(++next_);
            leases_[g.lease_id] = {key, now + ttl};
            ++live;
        }
        g.in_use = live;
        co_return g;
    }
    boost::asio::awaitable<preflight::result<bool>> release(std::string id) override {
        std::lock_guard lock{m_};
        auto it = leases_.find(id);
        const bool live = it != leases_.end() && it->second.expires > c_.now();
        if (it != leases_.end()) leases_.erase(it);
        co_return live;
    }
    boost::asio::awaitable<preflight::result<bool>> renew(std::string id, milliseconds ttl) override {
        std::lock_guard lock{m_};
        auto it = leases_.find(id);
        if (it == leases_.end() || it->second.expires <= c_.now()) co_return false;
        it->second.expires = c_.now() + ttl;
        co_return true;
    }

private:
    struct lease {
        std::string key;
        preflight::clock::time_point expires;
    };
    const preflight::clock& c_;
    std::mutex m_;
    std::map<std::string, lease> leases_;
    std::uint64_t next_ = 0;
};

}  // namespace

namespace preflight::conformance {
using ref_rate_factory = memory_store_factory<ref_rate>;
using ref_window_factory = memory_store_factory<ref_window>;
using ref_admission_factory = memory_store_factory<ref_admission>;
INSTANTIATE_TYPED_TEST_SUITE_P(reference, rate_limit_store_conformance, ref_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(reference, fixed_window_store_conformance, ref_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(reference, admission_store_conformance, ref_admission_factory);
}  // namespace preflight::conformance
