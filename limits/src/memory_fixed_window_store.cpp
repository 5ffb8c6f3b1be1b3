#include <preflight/limits/memory_fixed_window_store.hpp>

namespace preflight::limits {

memory_fixed_window_store::memory_fixed_window_store(const preflight::clock& c, fixed_window_params p)
    : counter_{c, p} {}

boost::asio::awaitable<result<window_result>> memory_fixed_window_store::consume(
    std::string key, window_limit limit, std::uint64_t n
) {
    if (limit.period.count() <= 0 || limit.max == 0) co_return errc::bad_input;
    co_return counter_.consume(key, limit, n);
}

boost::asio::awaitable<result<void>> memory_fixed_window_store::refund(
    std::string key, window_limit limit, std::uint64_t n
) {
    if (limit.period.count() <= 0 || limit.max == 0) co_return errc::bad_input;
    counter_.refund(key, limit, n);
    co_return result<void>{};
}

boost::asio::awaitable<result<std::uint64_t>> memory_fixed_window_store::purge_idle() {
    co_return static_cast<std::uint64_t>(counter_.purge_idle());
}

}  // namespace preflight::limits
