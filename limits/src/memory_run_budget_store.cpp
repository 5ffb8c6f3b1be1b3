#include <preflight/limits/run_budget_store.hpp>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

namespace preflight::limits {

namespace {

struct run_entry {
    std::uint64_t used = 0;
    clock::time_point expires{};
};

struct run_id_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct memory_run_budget_store::impl {
    const preflight::clock* clock;
    memory_run_budget_store_params params;
    mutable std::mutex mu;
    std::unordered_map<std::string, run_entry, run_id_hash, std::equal_to<>> runs;

    // Makes room for one more run: forgotten runs first, else the one idle longest. Under `mu`.
    void make_room(clock::time_point now) {
        if (runs.size() < params.max_runs) return;
        std::erase_if(runs, [now](const auto& kv) { return kv.second.expires <= now; });
        if (runs.size() < params.max_runs) return;
        auto oldest = std::min_element(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
            return a.second.expires < b.second.expires;
        });
        runs.erase(oldest);
    }
};

memory_run_budget_store::memory_run_budget_store(const preflight::clock& c, memory_run_budget_store_params p)
    : impl_(std::make_unique<impl>()) {
    impl_->clock = &c;
    impl_->params = p;
    impl_->params.max_runs = std::max<std::size_t>(1, p.max_runs);
}

memory_run_budget_store::~memory_run_budget_store() = default;

result<run_charge> memory_run_budget_store::charge_now(
    std::string_view run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
) {
    if (max == 0 || ttl.count() <= 0) return errc::bad_input;
    const auto now = impl_->clock->now();
    std::lock_guard lock(impl_->mu);
    auto it = impl_->runs.find(run_id);
    if (it == impl_->runs.end()) {
        if (n > max) return run_charge{false, 0, max};
        impl_->make_room(now);
        it = impl_->runs.emplace(std::string(run_id), run_entry{}).first;
    } else if (it->second.expires <= now) {
        it->second.used = 0;  // forgotten: a new life
    }
    run_entry& e = it->second;
    if (n > max - std::min(max, e.used)) return run_charge{false, e.used, max};
    e.used += n;
    e.expires = now + ttl;
    return run_charge{true, e.used, max};
}

void memory_run_budget_store::refund_now(std::string_view run_id, std::uint64_t n) {
    const auto now = impl_->clock->now();
    std::lock_guard lock(impl_->mu);
    auto it = impl_->runs.find(run_id);
    if (it == impl_->runs.end() || it->second.expires <= now) return;
    it->second.used -= std::min(n, it->second.used);
}

boost::asio::awaitable<result<run_charge>> memory_run_budget_store::charge(
    std::string run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
) {
    co_return charge_now(run_id, max, n, ttl);
}

boost::asio::awaitable<result<void>> memory_run_budget_store::refund(std::string run_id, std::uint64_t n) {
    refund_now(run_id, n);
    co_return result<void>{};
}

std::size_t memory_run_budget_store::size() const {
    std::lock_guard lock(impl_->mu);
    return impl_->runs.size();
}

}  // namespace preflight::limits
