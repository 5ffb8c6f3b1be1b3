#include <preflight/clients/pg_limit_batch.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace preflight::clients {

namespace asio = boost::asio;
using boost::system::error_code;

namespace detail {

namespace {

using shared_rows = std::shared_ptr<const pg_rows>;
using write_handler = asio::any_completion_handler<void(error_code, shared_rows)>;

constexpr std::size_t n_parts = 3;
constexpr std::array<std::size_t, n_parts> param_count{4, 4, 3};
constexpr std::array<std::size_t, n_parts> first_column{0, 3, 6};
constexpr std::size_t n_columns = 8;

// $1-$4 window, $5-$8 bucket, $9-$11 admission, $12 the parts present (bit 0 window, 1 bucket, 2 admission). The
// pool sends text parameters only (no NULL): an absent part's key becomes NULL here, its other parameters are
// placeholders of the right types.
const pg_statement batch_stmt{
    "preflight_limit_batch",
    "SELECT * FROM preflight_limit_batch("
    "CASE WHEN $12::integer & 1 <> 0 THEN $1::text END, $2::bigint, $3::bigint, $4::bigint,"
    " CASE WHEN $12::integer & 2 <> 0 THEN $5::text END, $6::float8, $7::float8, $8::float8,"
    " CASE WHEN $12::integer & 4 <> 0 THEN $9::text END, $10::integer, $11::bigint)"};

const std::array<std::array<const char*, 4>, n_parts> placeholders{{
    {"", "0", "1", "0"},
    {"", "1", "1", "0"},
    {"", "0", "0", ""},
}};

// One write waiting for its call. `done` is guarded by the state's mutex; a call never sends a write that is done
// (cancelled), and never answers one.
struct write {
    write(std::size_t p, std::vector<std::string> prm, write_handler h, asio::any_io_executor e)
        : part(p), params(std::move(prm)), handler(std::move(h)), ex(std::move(e)) {}
    std::size_t part;
    std::vector<std::string> params;
    write_handler handler;
    asio::any_io_executor ex;  // the handler's (its coroutine's) executor
    bool done = false;
};
using write_ptr = std::shared_ptr<write>;

// One statement's worth of writes: at most one per part.
struct call {
    std::array<write_ptr, n_parts> parts;
};
using call_ptr = std::shared_ptr<call>;

// Hands the outcome to the write's coroutine on its executor (inline when allowed). `w->done` was set by the caller.
void complete(const write_ptr& w, error_code ec, shared_rows rows, bool inline_ok) {
    auto fn = [h = std::move(w->handler), ec, rows = std::move(rows)]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(ec, std::move(rows));
    };
    if (inline_ok) {
        asio::dispatch(w->ex, std::move(fn));
    } else {
        asio::post(w->ex, std::move(fn));
    }
}

}  // namespace

struct limit_batch_state : std::enable_shared_from_this<limit_batch_state> {
    explicit limit_batch_state(pg_pool& p) : pool(&p) {}

    std::mutex mu;
    pg_pool* pool;  // null once the batch is destroyed
    // The current turn's call: takes writes until its flush runs. Owned by its queued send (weak here): a call whose
    // send is dropped with the io_context goes with it, its waiting writes too (a strong pointer would close a cycle
    // through the writes' coroutines, which own the stores, which own this state).
    std::weak_ptr<call> open;

    void add(std::size_t part, std::vector<std::string> params, write_handler h, asio::any_io_executor ex) {
        auto w = std::make_shared<write>(part, std::move(params), std::move(h), std::move(ex));
        // Before the write joins a call: a cancellation can then only find it in one (or done).
        if (auto slot = asio::get_associated_cancellation_slot(w->handler); slot.is_connected()) {
            slot.assign([st = weak_from_this(), ww = std::weak_ptr<write>(w)](asio::cancellation_type t) {
                if ((t & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                          asio::cancellation_type::total)) == asio::cancellation_type::none) {
                    return;
                }
                auto s = st.lock();
                auto w2 = ww.lock();
                if (s && w2) s->cancel(w2);
            });
        }
        call_ptr fresh;
        {
            std::lock_guard lk(mu);
            if (pool != nullptr) {
                auto c = open.lock();
                if (!c || c->parts[part]) {
                    c = std::make_shared<call>();
                    open = c;
                    fresh = c;
                }
                c->parts[part] = w;
            } else {
                w->done = true;
            }
        }
        if (w->done) {
            complete(w, errc::cancelled, nullptr, false);
            return;
        }
        if (fresh) {
            // Every error is handed to the writes; an exception escaping the send itself is rethrown, never dropped.
            asio::co_spawn(w->ex, send(shared_from_this(), std::move(fresh), w->ex), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        }
    }

    void cancel(const write_ptr& w) {
        {
            std::lock_guard lk(mu);
            if (w->done) return;
            w->done = true;  // not sent yet: its call leaves it out; in flight: its result is discarded
        }
        complete(w, errc::cancelled, nullptr, false);
    }

    // The batch is going: a call whose send is still queued finds no pool and fails its writes itself.
    void shut() {
        std::lock_guard lk(mu);
        pool = nullptr;
        open.reset();
    }

    // Flushes `c` once the current turn is over: the writes submitted meanwhile joined it.
    static asio::awaitable<void> send(std::shared_ptr<limit_batch_state> s, call_ptr c, asio::any_io_executor ex) {
        co_await asio::post(ex, asio::use_awaitable);
        std::array<write_ptr, n_parts> live;
        pg_pool* pool = nullptr;
        {
            std::lock_guard lk(s->mu);
            if (s->open.lock() == c) s->open.reset();
            pool = s->pool;
            for (std::size_t i = 0; i < n_parts; ++i) {
                if (c->parts[i] && !c->parts[i]->done) {
                    live[i] = c->parts[i];
                    if (pool == nullptr) live[i]->done = true;
                }
            }
        }
        if (pool == nullptr) {
            for (auto& w : live) {
                if (w) complete(w, errc::cancelled, nullptr, false);
            }
            co_return;
        }
        std::vector<std::string> params;
        params.reserve(12);
        unsigned mask = 0;
        for (std::size_t i = 0; i < n_parts; ++i) {
            if (live[i]) {
                mask |= 1U << i;
                for (auto& p : live[i]->params) params.push_back(std::move(p));
            } else {
                for (std::size_t k = 0; k < param_count[i]; ++k) params.emplace_back(placeholders[i][k]);
            }
        }
        if (mask == 0) co_return;  // every write was cancelled before the flush
        params.push_back(std::to_string(mask));
        error_code ec;
        shared_rows rows;
        try {
            auto r = co_await pool->exec(batch_stmt, std::move(params));
            if (!r) {
                ec = r.error();
            } else if (r->size() != 1 || r->columns() != n_columns) {
                ec = errc::protocol_error;  // not what preflight_limit_batch returns: a schema mismatch
            } else {
                rows = std::make_shared<const pg_rows>(std::move(*r));
            }
        } catch (const std::exception&) {
            ec = errc::store_unavailable;  // e.g. allocation failure: each write still gets an answer
        }
        for (auto& w : live) {
            if (!w) continue;
            {
                std::lock_guard lk(s->mu);
                if (w->done) continue;  // cancelled while in flight: its result is discarded
                w->done = true;
            }
            complete(w, ec, ec ? nullptr : rows, true);
        }
    }
};

// A named initiation (not a lambda in the co_await expression: g++ 12 mishandles temporaries there).
struct submit_initiation {
    std::shared_ptr<limit_batch_state> state;
    std::size_t part = 0;
    std::vector<std::string> params;
    asio::any_io_executor fallback;

    template <class Handler>
    void operator()(Handler&& h) {
        auto ex = asio::get_associated_executor(h, fallback);  // before type erasure: an any_io_executor
        state->add(part, std::move(params), write_handler(std::forward<Handler>(h)), std::move(ex));
    }
};

}  // namespace detail

pg_limit_batch::pg_limit_batch(pg_pool& pool) : state_(std::make_shared<detail::limit_batch_state>(pool)) {}

pg_limit_batch::~pg_limit_batch() {
    state_->shut();
}

asio::awaitable<result<pg_limit_batch_rows>> pg_limit_batch::submit(part p, std::vector<std::string> params) {
    const auto i = static_cast<std::size_t>(p);
    if (i >= detail::n_parts || params.size() != detail::param_count[i]) {
        throw std::invalid_argument(
            "pg_limit_batch::submit: part " + std::to_string(i) + " takes " +
            (i < detail::n_parts ? std::to_string(detail::param_count[i]) : std::string("no")) + " parameters, got " +
            std::to_string(params.size())
        );
    }
    auto token = asio::as_tuple(asio::use_awaitable);
    detail::submit_initiation init;
    init.state = state_;
    init.part = i;
    init.params = std::move(params);
    init.fallback = co_await asio::this_coro::executor;
    auto [ec, rows] =
        co_await asio::async_initiate<decltype(token), void(error_code, detail::shared_rows)>(std::move(init), token);
    if (ec) co_return ec;
    co_return pg_limit_batch_rows{std::move(rows), detail::first_column[i]};
}

}  // namespace preflight::clients
