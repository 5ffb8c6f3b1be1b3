#include <preflight/clients/periodic_purge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace preflight::clients {

namespace asio = boost::asio;
using boost::system::error_code;

struct periodic_purge::state {
    state(asio::any_io_executor ex, purge_fn p, std::chrono::milliseconds i, std::function<void(error_code)> e)
        : timer(asio::make_strand(std::move(ex))), purge(std::move(p)), interval(i), on_error(std::move(e)) {}

    asio::steady_timer timer;  // on a strand of the given executor: the loop and the destructor's cancel never race
    std::mutex mu;
    // Emptied by the destructor at once: whatever it owns (a store set, its pool) must not wait for the loop's end,
    // which may come only when the io_context goes (the pool must go before it).
    purge_fn purge;
    std::chrono::milliseconds interval;
    std::function<void(error_code)> on_error;
    std::atomic<bool> stopped{false};
    std::atomic<std::uint64_t> runs{0};
    std::atomic<std::uint64_t> removed{0};
    std::atomic<std::uint64_t> failures{0};

    void failed(error_code ec) {
        failures.fetch_add(1, std::memory_order_relaxed);
        runs.fetch_add(1, std::memory_order_relaxed);
        if (on_error) on_error(ec);
    }

    // The timer belongs to this loop only: waits, purges, again. The loop holds the state alive.
    static asio::awaitable<void> loop(std::shared_ptr<state> s) {
        for (;;) {
            s->timer.expires_after(s->interval);
            auto [ec] = co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec || s->stopped.load()) co_return;
            purge_fn run;  // this run's copy: released when the run ends
            {
                std::lock_guard lk(s->mu);
                run = s->purge;
            }
            if (!run) co_return;
            try {
                auto r = co_await run();
                if (s->stopped.load()) co_return;
                if (!r) {
                    s->failed(r.error());
                } else {
                    s->removed.fetch_add(*r, std::memory_order_relaxed);
                    s->runs.fetch_add(1, std::memory_order_relaxed);
                }
            } catch (const std::exception&) {
                if (s->stopped.load()) co_return;
                s->failed(errc::store_unavailable);  // a purge that throws is a failed run, reported like one
            }
        }
    }
};

periodic_purge::periodic_purge(
    asio::any_io_executor ex,
    purge_fn purge,
    std::chrono::milliseconds interval,
    std::function<void(error_code)> on_error
) {
    if (!purge) throw std::invalid_argument("periodic_purge: empty purge function");
    if (interval.count() < 1) {
        throw std::invalid_argument("periodic_purge: interval below 1 ms (" + std::to_string(interval.count()) + ")");
    }
    state_ = std::make_shared<state>(ex, std::move(purge), interval, std::move(on_error));
    asio::co_spawn(state_->timer.get_executor(), state::loop(state_), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // only the loop's own machinery can throw here: never dropped
    });
}

periodic_purge::~periodic_purge() {
    state_->stopped.store(true);
    purge_fn gone;
    {
        std::lock_guard lk(state_->mu);
        gone = std::move(state_->purge);
        state_->purge = nullptr;
    }
    // Cancels the wait on the timer's executor (the timer is not thread-safe).
    asio::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
}

purge_stats periodic_purge::stats() const noexcept {
    return {
        state_->runs.load(std::memory_order_relaxed),
        state_->removed.load(std::memory_order_relaxed),
        state_->failures.load(std::memory_order_relaxed),
    };
}

}  // namespace preflight::clients
