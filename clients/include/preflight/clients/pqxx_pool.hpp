#pragma once

#include <preflight/core/errc.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <pqxx/connection>
#include <pqxx/except>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace preflight::clients {

/// Settings of a `pqxx_pool`. Every field has a default except `url`.
struct pqxx_pool_params {
    std::string url;                                    ///< libpq connection string (URL or key/value form)
    std::size_t size = 2;                               ///< connections, and threads that run the work
    std::chrono::milliseconds connect_timeout{5000};    ///< libpq `connect_timeout` (rounded up to whole seconds)
    std::chrono::milliseconds statement_timeout{5000};  ///< server-side `statement_timeout`; 0 disables it
    std::chrono::milliseconds wait_timeout{2000};       ///< work that could not start within this fails (see `run`)
};

/// A pool of libpqxx connections for code that wants `pqxx::connection` itself (custom facts, admin queries,
/// anything written against libpqxx) from coroutines. libpqxx 6.4 calls block, so the work runs on the pool's own
/// threads, one connection per thread: awaiting `run` never blocks an io_context thread, and the coroutine resumes
/// on its own executor. The hot path of the built-in stores uses `pg_pool` (raw libpq in pipeline mode), which is
/// several times faster (docs/postgres.md); both take the same connection string.
///
/// Errors of `run` (as `result`): `store_unavailable` (cannot connect, or the server reported an error),
/// `connection_broken` (the connection broke while the work ran: its effect is unknown; the connection is replaced
/// on next use), `timeout` (statement_timeout), `pool_exhausted` (the work waited longer than wait_timeout for a
/// connection; reported when a pool thread frees up, so a caller waits at most wait_timeout plus the work ahead of
/// it, itself bounded by statement_timeout). Any other exception thrown by the work is rethrown to the awaiting
/// coroutine.
/// Cancellation: not supported; the work is bounded by statement_timeout. Lifetime: destruction waits for the work
/// already started. Thread safety: `run` may be called from any thread.
class pqxx_pool {
public:
    /// Creates the pool; connections open lazily on first use. Throws `std::invalid_argument` when `size` is 0.
    explicit pqxx_pool(pqxx_pool_params params);
    ~pqxx_pool();
    pqxx_pool(const pqxx_pool&) = delete;
    pqxx_pool& operator=(const pqxx_pool&) = delete;

    /// Runs `work(pqxx::connection&)` on a pool thread with a connection of its own and returns what it returned
    /// (a `void` work gives `result<void>`). See the class comment for errors, cancellation and threads.
    template <class Work, class R = std::invoke_result_t<Work&, pqxx::connection&>>
    boost::asio::awaitable<result<R>> run(Work work) {
        using signature = void(std::exception_ptr, result<R>);
        return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, signature>(
            [this](auto handler, Work w) {
                const auto queued = std::chrono::steady_clock::now();
                boost::asio::post(threads_, [this, queued, w = std::move(w), h = std::move(handler)]() mutable {
                    std::exception_ptr failure;
                    result<R> r = errc::cancelled;
                    try {
                        r = invoke<R>(w, queued);
                    } catch (...) {
                        failure = std::current_exception();
                    }
                    auto ex = boost::asio::get_associated_executor(h);
                    boost::asio::dispatch(ex, [h = std::move(h), failure, r = std::move(r)]() mutable {
                        std::move(h)(failure, std::move(r));
                    });
                });
            },
            boost::asio::use_awaitable,
            std::move(work)
        );
    }

    /// Connections opened so far (replacements included).
    [[nodiscard]] std::size_t connects() const noexcept;

private:
    struct slot;

    // Takes a free connection (opening it when needed), or an error; called on a pool thread.
    result<slot*> acquire(std::chrono::steady_clock::time_point queued);
    void give_back(slot* s, bool broken) noexcept;
    [[nodiscard]] std::string conninfo_with_timeout() const;
    static boost::system::error_code classify(const std::exception& e) noexcept;

    template <class R, class Work>
    result<R> invoke(Work& work, std::chrono::steady_clock::time_point queued) {
        auto s = acquire(queued);
        if (!s) return s.error();
        try {
            if constexpr (std::is_void_v<R>) {
                work(connection_of(**s));
                give_back(*s, false);
                return {};
            } else {
                R value = work(connection_of(**s));
                give_back(*s, false);
                return value;
            }
        } catch (const pqxx::broken_connection&) {
            give_back(*s, true);
            return errc::connection_broken;
        } catch (const pqxx::failure& e) {
            // A server error (sql_error: the connection stays usable) or another libpqxx failure.
            give_back(*s, !connection_of(**s).is_open());
            return classify(e);
        } catch (...) {
            give_back(*s, false);
            throw;
        }
    }

    static pqxx::connection& connection_of(slot& s) noexcept;

    pqxx_pool_params params_;
    std::vector<std::unique_ptr<slot>> slots_;
    mutable std::mutex mu_;
    std::size_t connects_ = 0;
    boost::asio::thread_pool threads_;
};

}  // namespace preflight::clients
