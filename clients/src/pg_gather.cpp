#include "pg_gather.hpp"

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
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace preflight::clients::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using item_handler = asio::any_completion_handler<void(error_code, shared_rows, std::size_t)>;
using wake_channel = asio::experimental::concurrent_channel<void(error_code)>;

// One item waiting for its call. `done` is guarded by the state's mutex; a call never sends an item that is done
// (cancelled), and never answers one.
struct pending {
    pending(gather_item i, item_handler h, asio::any_io_executor e)
        : item(std::move(i)), handler(std::move(h)), ex(std::move(e)) {}
    gather_item item;
    item_handler handler;
    asio::any_io_executor ex;  // the handler's (its coroutine's) executor
    bool done = false;
};
using pending_ptr = std::shared_ptr<pending>;
using pending_lists = std::vector<std::vector<pending_ptr>>;

// One statement's worth of items. Owned by its send coroutine (also while it waits for its turn).
struct call {
    explicit call(std::size_t kinds) : items(kinds) {}
    pending_lists items;
    bool claimed = false;                // guarded by the state's mutex: being sent, takes no more items
    std::unique_ptr<wake_channel> wake;  // while the call waits for one in flight to finish
};
using call_ptr = std::shared_ptr<call>;

// Hands the outcome to the item's coroutine on its executor (inline when allowed). `p->done` was set by the caller.
void complete(const pending_ptr& p, error_code ec, shared_rows rows, std::size_t row, bool inline_ok) {
    auto fn = [h = std::move(p->handler), ec, rows = std::move(rows), row]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(ec, std::move(rows), row);
    };
    if (inline_ok) {
        asio::dispatch(p->ex, std::move(fn));
    } else {
        asio::post(p->ex, std::move(fn));
    }
}

gather_lists view_of(const pending_lists& lists) {
    gather_lists out(lists.size());
    for (std::size_t k = 0; k < lists.size(); ++k) {
        for (const auto& p : lists[k]) out[k].push_back(&p->item);
    }
    return out;
}

}  // namespace

struct gather_state : std::enable_shared_from_this<gather_state> {
    gather_state(pg_pool& p, gather_spec s, pg_gather_options o) : pool(&p), spec(std::move(s)), opts(o) {}

    std::mutex mu;
    pg_pool* pool;  // null once the gatherer is destroyed
    const gather_spec spec;
    const pg_gather_options opts;
    // The call taking items: until its flush claims it, or, while `max_in_flight` calls are in flight, until one
    // of them finishes. Owned by its send coroutine (weak here): a call whose send is dropped with the io_context
    // goes with it, its waiting items too (a strong pointer would close a cycle through the items' coroutines,
    // which own the stores, which own this state).
    std::weak_ptr<call> open;
    std::deque<std::weak_ptr<call>> waiting;  // calls waiting for one in flight to finish, oldest first
    std::size_t in_flight = 0;
    bool last_shared = false;  // the last call sent carried more than one item (the load is there)
    pg_gather_stats stats;

    void add(gather_item item, item_handler h, asio::any_io_executor ex) {
        auto p = std::make_shared<pending>(std::move(item), std::move(h), std::move(ex));
        // Before the item joins a call: a cancellation can then only find it in one (or done).
        if (auto slot = asio::get_associated_cancellation_slot(p->handler); slot.is_connected()) {
            slot.assign([st = weak_from_this(), wp = std::weak_ptr<pending>(p)](asio::cancellation_type t) {
                if ((t & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                          asio::cancellation_type::total)) == asio::cancellation_type::none) {
                    return;
                }
                auto s = st.lock();
                auto p2 = wp.lock();
                if (s && p2) s->cancel(p2);
            });
        }
        call_ptr fresh;
        {
            std::lock_guard lk(mu);
            if (pool != nullptr) {
                auto c = open.lock();
                if (!c || c->claimed || !fits(*c, p->item)) {
                    c = std::make_shared<call>(spec.kinds);
                    open = c;
                    fresh = c;
                }
                c->items[p->item.kind].push_back(p);
            } else {
                p->done = true;
            }
        }
        if (p->done) {
            complete(p, errc::cancelled, nullptr, 0, false);
            return;
        }
        if (fresh) {
            // Every error is handed to the items; an exception escaping the send itself is rethrown, never dropped.
            asio::co_spawn(p->ex, send(shared_from_this(), std::move(fresh), p->ex), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        }
    }

    // Room for `it` in `c`: below max_per_call of its kind, and (when keys must be distinct) no item of its key nor one
    // in conflict with it.
    bool fits(const call& c, const gather_item& it) const {
        const auto& ps = c.items[it.kind];
        if (ps.size() >= opts.max_per_call) return false;
        if (spec.distinct_keys) {
            for (const auto& o : ps) {
                if (o->item.params[0] == it.params[0]) return false;
            }
        }
        if (spec.conflict) {
            for (const auto& o : ps) {
                if (spec.conflict(o->item, it)) return false;
            }
        }
        return true;
    }

    void cancel(const pending_ptr& p) {
        {
            std::lock_guard lk(mu);
            if (p->done) return;
            p->done = true;  // not sent yet: its call leaves it out; in flight: its result is discarded
        }
        complete(p, errc::cancelled, nullptr, 0, false);
    }

    // Claims `p` for its answer: false when it was cancelled meanwhile.
    bool take(pending& p) {
        std::lock_guard lk(mu);
        if (p.done) return false;
        p.done = true;
        return true;
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

    // The gatherer is going: calls not sent yet find no pool and fail their items themselves.
    void shut() {
        std::lock_guard lk(mu);
        pool = nullptr;
        open.reset();
        for (auto& wc : waiting) {
            if (auto c = wc.lock()) c->wake->try_send(error_code{});
        }
        waiting.clear();
    }

    // Runs one statement for `live`; the rows and each item's row, or the error.
    static asio::awaitable<result<std::pair<shared_rows, std::vector<std::vector<std::size_t>>>>> exec(
        gather_state& s, pg_pool& pool, const gather_lists& view
    ) {
        try {
            auto [st, params] = s.spec.build(view);
            auto r = co_await pool.exec(std::move(st), std::move(params));
            if (!r) co_return r.error();
            auto rows = std::make_shared<const pg_rows>(std::move(*r));
            auto where = s.spec.locate(view, *rows);
            if (!where) co_return where.error();
            co_return std::pair{std::move(rows), std::move(*where)};
        } catch (const std::exception&) {
            co_return errc::store_unavailable;  // e.g. allocation failure: each item still gets an answer
        }
    }

    // Flushes `c` once the current turn is over (the items submitted meanwhile joined it); when `max_in_flight`
    // calls are in flight, `c` keeps taking items until one of them finishes.
    static asio::awaitable<void> send(std::shared_ptr<gather_state> s, call_ptr c, asio::any_io_executor ex) {
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
            // Claimed by the finishing call (or the gatherer shut) before the wake-up is sent.
            co_await c->wake->async_receive(asio::as_tuple(asio::use_awaitable));
        }
        pending_lists live(s->spec.kinds);
        std::size_t n_live = 0;
        std::size_t widest = 0;
        pg_pool* pool = nullptr;
        {
            std::lock_guard lk(s->mu);
            pool = s->pool;
            for (std::size_t k = 0; k < live.size(); ++k) {
                for (auto& p : c->items[k]) {
                    if (p->done) continue;
                    if (pool == nullptr) p->done = true;
                    live[k].push_back(p);
                }
                n_live += live[k].size();
                widest = std::max(widest, live[k].size());
            }
            if (pool != nullptr && n_live == 0) s->finish_locked();  // every item was cancelled before the flush
            if (n_live > 0) s->last_shared = n_live > 1;
        }
        if (pool == nullptr) {
            for (auto& ps : live) {
                for (auto& p : ps) complete(p, errc::cancelled, nullptr, 0, false);
            }
            co_return;
        }
        if (n_live == 0) co_return;
        if (widest > 1 && s->spec.less) {
            for (auto& ps : live) {
                std::sort(ps.begin(), ps.end(), [&s](const pending_ptr& a, const pending_ptr& b) {
                    return s->spec.less(a->item, b->item);
                });
            }
        }
        const auto view = view_of(live);
        auto got = co_await exec(*s, *pool, view);
        {
            std::lock_guard lk(s->mu);
            s->finish_locked();
            ++s->stats.calls;
            s->stats.items += n_live;
            if (widest > 1) ++s->stats.many_calls;
        }
        if (!got && n_live > 1 && s->spec.retry_alone && s->spec.retry_alone(got.error())) {
            co_await retry_alone(s, *pool, std::move(live));
            co_return;
        }
        for (std::size_t k = 0; k < live.size(); ++k) {
            for (std::size_t i = 0; i < live[k].size(); ++i) {
                if (!s->take(*live[k][i])) continue;
                if (got) {
                    complete(live[k][i], {}, got->first, got->second[k][i], true);
                } else {
                    complete(live[k][i], got.error(), nullptr, 0, true);
                }
            }
        }
    }

    // After a shared call failed on the server: each item as its own call, one after another. A failure that the
    // spec would not retry (the server unreachable, say) fails the remaining items with it, untried.
    static asio::awaitable<void> retry_alone(std::shared_ptr<gather_state> s, pg_pool& pool, pending_lists live) {
        error_code stop;
        for (std::size_t k = 0; k < live.size(); ++k) {
            for (auto& p : live[k]) {
                {
                    std::lock_guard lk(s->mu);
                    if (p->done) continue;
                    ++s->stats.retried;
                }
                result<std::pair<shared_rows, std::vector<std::vector<std::size_t>>>> got{stop};
                if (!stop) {
                    gather_lists one(live.size());
                    one[k].push_back(&p->item);
                    got = co_await exec(*s, pool, one);
                    if (!got && !s->spec.retry_alone(got.error())) stop = got.error();
                }
                if (!s->take(*p)) continue;
                if (got) {
                    complete(p, {}, got->first, got->second[k][0], true);
                } else {
                    complete(p, got.error(), nullptr, 0, true);
                }
            }
        }
    }
};

namespace {

// A named initiation (not a lambda in the co_await expression: g++ 12 mishandles temporaries there).
struct submit_initiation {
    std::shared_ptr<gather_state> state;
    gather_item item;
    asio::any_io_executor fallback;

    template <class Handler>
    void operator()(Handler&& h) {
        auto ex = asio::get_associated_executor(h, fallback);  // before type erasure: an any_io_executor
        state->add(std::move(item), item_handler(std::forward<Handler>(h)), std::move(ex));
    }
};

}  // namespace

gatherer::gatherer(pg_pool& pool, gather_spec spec, pg_gather_options options) {
    if (options.max_in_flight < 1 || options.max_per_call < 1) {
        throw std::invalid_argument(
            "pg_gather_options: max_in_flight (" + std::to_string(options.max_in_flight) + ") and max_per_call (" +
            std::to_string(options.max_per_call) + ") must be at least 1"
        );
    }
    state_ = std::make_shared<gather_state>(pool, std::move(spec), options);
}

gatherer::~gatherer() {
    state_->shut();
}

pg_gather_stats gatherer::stats() const {
    std::lock_guard lk(state_->mu);
    return state_->stats;
}

asio::awaitable<result<std::pair<shared_rows, std::size_t>>> gatherer::submit(gather_item item) {
    if (state_->spec.at_once) {
        // No load (nothing of this gathering in flight, the pool idle, the last call not shared): this item is a
        // call of its own, sent from here at once.
        pg_pool* pool = nullptr;
        {
            std::lock_guard lk(state_->mu);
            if (state_->pool != nullptr && state_->in_flight == 0 && !state_->last_shared &&
                state_->pool->busy() == 0) {
                ++state_->in_flight;
                state_->last_shared = false;
                pool = state_->pool;
            }
        }
        if (pool != nullptr) {
            gather_lists view(state_->spec.kinds);
            view[item.kind].push_back(&item);
            auto got = co_await gather_state::exec(*state_, *pool, view);
            {
                std::lock_guard lk(state_->mu);
                state_->finish_locked();
                ++state_->stats.calls;
                ++state_->stats.items;
            }
            if (!got) co_return got.error();
            co_return std::pair{std::move(got->first), got->second[item.kind][0]};
        }
    }
    auto token = asio::as_tuple(asio::use_awaitable);
    submit_initiation init;
    init.state = state_;
    init.item = std::move(item);
    init.fallback = co_await asio::this_coro::executor;
    auto [ec, rows, row] = co_await asio::async_initiate<decltype(token), void(error_code, shared_rows, std::size_t)>(
        std::move(init), token
    );
    if (ec) co_return ec;
    co_return std::pair{std::move(rows), row};
}

std::string text_array_literal(const std::vector<std::string>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ',';
        out += '"';
        for (const char ch : items[i]) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    out += '}';
    return out;
}

std::string plain_array_literal(const std::vector<std::string>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ',';
        out += items[i];
    }
    out += '}';
    return out;
}

}  // namespace preflight::clients::detail
