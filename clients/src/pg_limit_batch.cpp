#include <preflight/clients/pg_limit_batch.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <deque>
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
using write_handler = asio::any_completion_handler<void(error_code, shared_rows, std::size_t)>;
using wake_channel = asio::experimental::concurrent_channel<void(error_code)>;

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

// The writes of several preflights: one array literal per parameter of each part (sql/005_limit_many.sql).
const pg_statement many_stmt{
    "preflight_limit_many",
    "SELECT * FROM preflight_limit_many($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"
    " $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::integer[], $11::bigint[])"};

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
    std::vector<std::string> params;  // params[0] is the key
    write_handler handler;
    asio::any_io_executor ex;  // the handler's (its coroutine's) executor
    bool done = false;
};
using write_ptr = std::shared_ptr<write>;

// One statement's worth of writes: up to `max_writes` of each part, with distinct keys within a part. Owned by its
// send coroutine (also while it waits for a turn to be sent).
struct call {
    std::array<std::vector<write_ptr>, n_parts> parts;
    bool claimed = false;                // guarded by the state's mutex: being sent, takes no more writes
    std::unique_ptr<wake_channel> wake;  // while the call waits for one in flight to finish
};
using call_ptr = std::shared_ptr<call>;

// Hands the outcome to the write's coroutine on its executor (inline when allowed). `w->done` was set by the caller.
void complete(const write_ptr& w, error_code ec, shared_rows rows, std::size_t row, bool inline_ok) {
    auto fn = [h = std::move(w->handler), ec, rows = std::move(rows), row]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(ec, std::move(rows), row);
    };
    if (inline_ok) {
        asio::dispatch(w->ex, std::move(fn));
    } else {
        asio::post(w->ex, std::move(fn));
    }
}

// Postgres array literal of text elements, each quoted ("" inside escaped), so any key survives.
std::string text_array(const std::vector<write_ptr>& ws, std::size_t param) {
    std::string out = "{";
    for (const auto& w : ws) {
        if (out.size() > 1) out += ',';
        out += '"';
        for (const char ch : w->params[param]) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    out += '}';
    return out;
}

// Array literal of numbers (already in the text form the server parses).
std::string number_array(const std::vector<write_ptr>& ws, std::size_t param) {
    std::string out = "{";
    for (const auto& w : ws) {
        if (out.size() > 1) out += ',';
        out += w->params[param];
    }
    out += '}';
    return out;
}

// preflight_limit_batch's parameters for at most one write of each part.
std::vector<std::string> single_params(const std::array<write_ptr, n_parts>& one) {
    std::vector<std::string> params;
    params.reserve(12);
    unsigned mask = 0;
    for (std::size_t i = 0; i < n_parts; ++i) {
        if (one[i]) {
            mask |= 1U << i;
            for (const auto& p : one[i]->params) params.push_back(p);
        } else {
            for (std::size_t k = 0; k < param_count[i]; ++k) params.emplace_back(placeholders[i][k]);
        }
    }
    params.push_back(std::to_string(mask));
    return params;
}

// preflight_limit_many's parameters: per part, one array per parameter.
std::vector<std::string> many_params(const std::array<std::vector<write_ptr>, n_parts>& live) {
    std::vector<std::string> params;
    params.reserve(11);
    for (std::size_t i = 0; i < n_parts; ++i) {
        params.push_back(text_array(live[i], 0));
        for (std::size_t k = 1; k < param_count[i]; ++k) params.push_back(number_array(live[i], k));
    }
    return params;
}

}  // namespace

struct limit_batch_state : std::enable_shared_from_this<limit_batch_state> {
    limit_batch_state(pg_pool& p, pg_limit_batch_options o) : pool(&p), opts(o) {}

    std::mutex mu;
    pg_pool* pool;  // null once the batch is destroyed
    const pg_limit_batch_options opts;
    // The call taking writes: until its flush claims it, or, while `max_in_flight` calls are in flight, until one
    // of them finishes. Owned by its send coroutine (weak here): a call whose send is dropped with the io_context
    // goes with it, its waiting writes too (a strong pointer would close a cycle through the writes' coroutines,
    // which own the stores, which own this state).
    std::weak_ptr<call> open;
    std::deque<std::weak_ptr<call>> waiting;  // calls waiting for a call in flight to finish, oldest first
    std::size_t in_flight = 0;
    pg_limit_batch_stats stats;

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
                if (!c || c->claimed || !fits(*c, *w)) {
                    c = std::make_shared<call>();
                    open = c;
                    fresh = c;
                }
                c->parts[part].push_back(w);
            } else {
                w->done = true;
            }
        }
        if (w->done) {
            complete(w, errc::cancelled, nullptr, 0, false);
            return;
        }
        if (fresh) {
            // Every error is handed to the writes; an exception escaping the send itself is rethrown, never dropped.
            asio::co_spawn(w->ex, send(shared_from_this(), std::move(fresh), w->ex), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        }
    }

    // Room for `w` in `c`: below max_writes of its part, and no write of the same key in that part.
    bool fits(const call& c, const write& w) const {
        const auto& ws = c.parts[w.part];
        if (ws.size() >= opts.max_writes) return false;
        for (const auto& o : ws) {
            if (o->params[0] == w.params[0]) return false;
        }
        return true;
    }

    void cancel(const write_ptr& w) {
        {
            std::lock_guard lk(mu);
            if (w->done) return;
            w->done = true;  // not sent yet: its call leaves it out; in flight: its result is discarded
        }
        complete(w, errc::cancelled, nullptr, 0, false);
    }

    // Marks `c` as being sent and counts it in flight. Under `mu`.
    void claim(call& c) {
        c.claimed = true;
        if (open.lock().get() == &c) open.reset();
        ++in_flight;
    }

    // A call in flight finished: the oldest waiting call (if any) goes next. Under `mu`.
    void finish_locked() {
        --in_flight;
        while (!waiting.empty()) {
            auto c = waiting.front().lock();
            waiting.pop_front();
            if (c) {
                claim(*c);
                c->wake->try_send(error_code{});
                return;
            }
        }
    }

    // The batch is going: calls not sent yet find no pool and fail their writes themselves.
    void shut() {
        std::lock_guard lk(mu);
        pool = nullptr;
        open.reset();
        for (auto& wc : waiting) {
            if (auto c = wc.lock()) c->wake->try_send(error_code{});
        }
        waiting.clear();
    }

    // Flushes `c` once the current turn is over (the writes submitted meanwhile joined it); when `max_in_flight`
    // calls are in flight, `c` keeps taking writes until one of them finishes.
    static asio::awaitable<void> send(std::shared_ptr<limit_batch_state> s, call_ptr c, asio::any_io_executor ex) {
        co_await asio::post(ex, asio::use_awaitable);
        bool wait = false;
        {
            std::lock_guard lk(s->mu);
            if (s->pool != nullptr && s->in_flight >= s->opts.max_in_flight) {
                c->wake = std::make_unique<wake_channel>(ex, 1);
                s->waiting.push_back(c);
                wait = true;
            } else if (s->pool != nullptr) {
                s->claim(*c);
            }
        }
        if (wait) {
            // Claimed by the finishing call (or the batch shut) before the wake-up is sent.
            co_await c->wake->async_receive(asio::as_tuple(asio::use_awaitable));
        }
        std::array<std::vector<write_ptr>, n_parts> live;
        std::size_t n_live = 0;
        std::size_t widest = 0;
        pg_pool* pool = nullptr;
        {
            std::lock_guard lk(s->mu);
            pool = s->pool;
            for (std::size_t i = 0; i < n_parts; ++i) {
                for (auto& w : c->parts[i]) {
                    if (w->done) continue;
                    if (pool == nullptr) w->done = true;
                    live[i].push_back(w);
                }
                n_live += live[i].size();
                widest = std::max(widest, live[i].size());
            }
            if (pool != nullptr && n_live == 0) s->finish_locked();  // every write was cancelled before the flush
        }
        if (pool == nullptr) {
            for (auto& ws : live) {
                for (auto& w : ws) complete(w, errc::cancelled, nullptr, 0, false);
            }
            co_return;
        }
        if (n_live == 0) co_return;
        if (widest > 1) {
            // Each kind in ascending key order (bytewise): preflight_limit_many takes its locks in array order, so
            // every call takes them in one global order and concurrent calls cannot wait for each other in a cycle.
            for (auto& ws : live) {
                std::sort(ws.begin(), ws.end(), [](const write_ptr& a, const write_ptr& b) {
                    return a->params[0] < b->params[0];
                });
            }
        }
        error_code ec;
        shared_rows rows;
        try {
            // Named operands: g++ 12 mishandles temporaries inside a co_await expression.
            const pg_statement& st = widest == 1 ? batch_stmt : many_stmt;
            auto params = widest == 1 ? single_params(first_of(live)) : many_params(live);
            auto r = co_await pool->exec(st, std::move(params));
            if (!r) {
                ec = r.error();
            } else if (r->size() != widest || r->columns() != n_columns) {
                ec = errc::protocol_error;  // not what the function returns: a schema mismatch
            } else {
                rows = std::make_shared<const pg_rows>(std::move(*r));
            }
        } catch (const std::exception&) {
            ec = errc::store_unavailable;  // e.g. allocation failure: each write still gets an answer
        }
        {
            std::lock_guard lk(s->mu);
            s->finish_locked();
            ++s->stats.calls;
            s->stats.writes += n_live;
            if (widest > 1) ++s->stats.many_calls;
        }
        if (ec && widest > 1 && (ec == errc::bad_input || ec == errc::store_unavailable)) {
            // The call rolled back as a whole: each write alone, so that a bad one fails by itself.
            co_await retry_alone(s, *pool, std::move(live));
            co_return;
        }
        for (auto& ws : live) {
            for (std::size_t k = 0; k < ws.size(); ++k) {
                if (take(*s, *ws[k])) complete(ws[k], ec, ec ? nullptr : rows, k, true);
            }
        }
    }

    static std::array<write_ptr, n_parts> first_of(const std::array<std::vector<write_ptr>, n_parts>& live) {
        std::array<write_ptr, n_parts> one;
        for (std::size_t i = 0; i < n_parts; ++i) {
            if (!live[i].empty()) one[i] = live[i].front();
        }
        return one;
    }

    // Claims `w` for its answer: false when it was cancelled meanwhile (its result is discarded).
    static bool take(limit_batch_state& s, write& w) {
        std::lock_guard lk(s.mu);
        if (w.done) return false;
        w.done = true;
        return true;
    }

    // After a call of several writes failed on the server: each write as its own call of preflight_limit_batch, one
    // after another. A failure other than a rejected parameter (the server unreachable, say) fails the remaining
    // writes with it, untried, rather than trying each against a server that is down.
    static asio::awaitable<void> retry_alone(
        std::shared_ptr<limit_batch_state> s, pg_pool& pool, std::array<std::vector<write_ptr>, n_parts> live
    ) {
        error_code stop;
        for (auto& ws : live) {
            for (auto& w : ws) {
                {
                    std::lock_guard lk(s->mu);
                    if (w->done) continue;
                    ++s->stats.retried;
                }
                error_code ec = stop;
                shared_rows rows;
                if (!ec) {
                    std::array<write_ptr, n_parts> one;
                    one[w->part] = w;
                    try {
                        auto params = single_params(one);
                        auto r = co_await pool.exec(batch_stmt, std::move(params));
                        if (!r) {
                            ec = r.error();
                        } else if (r->size() != 1 || r->columns() != n_columns) {
                            ec = errc::protocol_error;
                        } else {
                            rows = std::make_shared<const pg_rows>(std::move(*r));
                        }
                    } catch (const std::exception&) {
                        ec = errc::store_unavailable;
                    }
                    if (ec && ec != errc::bad_input) stop = ec;
                }
                if (take(*s, *w)) complete(w, ec, ec ? nullptr : rows, 0, true);
            }
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

pg_limit_batch::pg_limit_batch(pg_pool& pool, pg_limit_batch_options options) {
    if (options.max_in_flight < 1 || options.max_writes < 1) {
        throw std::invalid_argument(
            "pg_limit_batch: max_in_flight (" + std::to_string(options.max_in_flight) + ") and max_writes (" +
            std::to_string(options.max_writes) + ") must be at least 1"
        );
    }
    state_ = std::make_shared<detail::limit_batch_state>(pool, options);
}

pg_limit_batch::~pg_limit_batch() {
    state_->shut();
}

pg_limit_batch_stats pg_limit_batch::stats() const {
    std::lock_guard lk(state_->mu);
    return state_->stats;
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
    auto [ec, rows, row] =
        co_await asio::async_initiate<decltype(token), void(error_code, detail::shared_rows, std::size_t)>(
            std::move(init), token
        );
    if (ec) co_return ec;
    co_return pg_limit_batch_rows{std::move(rows), detail::first_column[i], row};
}

}  // namespace preflight::clients
