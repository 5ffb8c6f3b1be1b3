#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/redact.hpp>
#include <preflight/core/strand.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <libpq-fe.h>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <stdexcept>
#include <sys/socket.h>
#include <unordered_set>
#include <utility>

namespace preflight::clients {

namespace asio = boost::asio;
using boost::system::error_code;

// ---------------------------------------------------------------------------------------------------------------
// pg_statement, pg_rows

struct pg_statement::data {
    std::string name;
    std::string sql;
};

pg_statement::pg_statement(std::string name, std::string sql)
    : d_(std::make_shared<const data>(data{std::move(name), std::move(sql)})) {}

const std::string& pg_statement::name() const noexcept {
    return d_->name;
}
const std::string& pg_statement::sql() const noexcept {
    return d_->sql;
}

pg_rows::pg_rows(::pg_result* r) noexcept : r_(r) {}
pg_rows::pg_rows(pg_rows&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
pg_rows& pg_rows::operator=(pg_rows&& o) noexcept {
    if (this != &o) {
        if (r_ != nullptr) PQclear(r_);
        r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
}
pg_rows::~pg_rows() {
    if (r_ != nullptr) PQclear(r_);
}

std::size_t pg_rows::size() const noexcept {
    return r_ == nullptr ? 0 : static_cast<std::size_t>(PQntuples(r_));
}
std::size_t pg_rows::columns() const noexcept {
    return r_ == nullptr ? 0 : static_cast<std::size_t>(PQnfields(r_));
}
bool pg_rows::is_null(std::size_t row, std::size_t col) const noexcept {
    return r_ == nullptr || PQgetisnull(r_, static_cast<int>(row), static_cast<int>(col)) != 0;
}
std::string_view pg_rows::text(std::size_t row, std::size_t col) const noexcept {
    if (is_null(row, col)) return {};
    const int r = static_cast<int>(row);
    const int c = static_cast<int>(col);
    return {PQgetvalue(r_, r, c), static_cast<std::size_t>(PQgetlength(r_, r, c))};
}

namespace {
[[noreturn]] void bad_field(const ::pg_result* r, std::size_t col, std::string_view want) {
    const char* name = r == nullptr ? nullptr : PQfname(r, static_cast<int>(col));
    throw std::invalid_argument(
        "pg_rows: column '" + std::string(name == nullptr ? "?" : name) + "' is not a " + std::string(want)
    );
}
}  // namespace

std::int64_t pg_rows::as_int64(std::size_t row, std::size_t col) const {
    const auto t = text(row, col);
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size()) bad_field(r_, col, "bigint");
    return v;
}

double pg_rows::as_double(std::size_t row, std::size_t col) const {
    const auto t = text(row, col);
    double v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size()) bad_field(r_, col, "double");
    return v;
}

bool pg_rows::as_bool(std::size_t row, std::size_t col) const {
    const auto t = text(row, col);
    if (t == "t") return true;
    if (t == "f") return false;
    bad_field(r_, col, "boolean");
}

std::uint64_t pg_rows::affected() const noexcept {
    if (r_ == nullptr) return 0;
    const std::string_view t = PQcmdTuples(r_);
    std::uint64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

// ---------------------------------------------------------------------------------------------------------------
// the pool

namespace detail {

struct link;
struct request;
using request_ptr = std::shared_ptr<request>;

// One statement of a caller (or a PREPARE of the pool itself). The caller's completion handler lives in the derived
// `caller_request<Handler>` (one allocation for both; no type-erased handler).
struct request {
    explicit request(pg_statement s, std::vector<std::string> p = {}) : st(std::move(s)), params(std::move(p)) {}
    request(const request&) = delete;
    request& operator=(const request&) = delete;
    virtual ~request() = default;

    // Hands the outcome (`ec`, `rows`) to the caller on its executor: run inline when `inline_ok` and the caller's
    // executor allows it (dispatch), otherwise queued (post). Called once, on the pool's strand; `self` is this.
    virtual void deliver(const request_ptr& self, bool inline_ok) = 0;

    pg_statement st;
    std::vector<std::string> params;
    asio::cancellation_slot slot;
    std::optional<std::size_t> pinned;  // connect_all: this connection only
    bool internal = false;              // a PREPARE sent by the pool itself
    bool done = false;
    bool sent = false;
    std::uint64_t seq = 0;       // send order (statement events)
    std::size_t conn_index = 0;  // where it was sent
    std::weak_ptr<link> on;
    std::unique_ptr<asio::steady_timer> wait_timer;  // only while waiting for capacity
    error_code ec;
    std::string message;
    pg_rows rows;
};

// A PREPARE sent by the pool: nobody waits for it.
struct internal_request final : request {
    explicit internal_request(pg_statement s) : request(std::move(s)) { internal = true; }
    void deliver(const request_ptr&, bool) override {}
};

// A caller's statement with its completion handler. The handler's coroutine keeps its executor's work counted
// (co_spawn does), and the pool's socket waits count as work too, so no extra work guard is held here.
template <class Handler>
struct caller_request final : request {
    using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;

    caller_request(pg_statement s, std::vector<std::string> p, Handler&& h, const asio::any_io_executor& fallback)
        : request(std::move(s), std::move(p)), ex(asio::get_associated_executor(h, fallback)), handler(std::move(h)) {}

    void deliver(const request_ptr& self, bool inline_ok) override {
        auto fn = [me = std::static_pointer_cast<caller_request>(self)]() mutable {
            me->slot.clear();
            const error_code e = me->ec;
            pg_rows out = e ? pg_rows{} : std::move(me->rows);
            Handler h = std::move(me->handler);
            me.reset();
            std::move(h)(e, std::move(out));
        };
        if (inline_ok) {
            asio::dispatch(ex, std::move(fn));
        } else {
            asio::post(ex, std::move(fn));
        }
    }

    executor_type ex;
    Handler handler;
};

struct pg_conn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using pg_conn_ptr = std::unique_ptr<PGconn, pg_conn_deleter>;

// One open server connection in pipeline mode.
struct link {
    pg_conn_ptr pg;
    std::unique_ptr<asio::posix::stream_descriptor> sd;
    std::deque<request_ptr> inflight;
    std::unordered_set<std::string> prepared;
    bool alive = true;
    bool flushing = false;
    bool draining = false;         // a server-side cancel is under way: send nothing new
    bool cancel_call_done = true;  // the PQcancel call has returned
    bool flush_posted = false;     // coalescing: a flush of this turn's statements is queued on the strand
    std::size_t unflushed = 0;     // coalescing: statements queued since the last flush
    bool tcp = false;              // a TCP socket (TCP_CORK applies)
    bool corked = false;           // coalescing: TCP_CORK is set until this turn's flush

    // Holds (true) or releases (false) partial segments, so that the statements of one turn leave in one segment
    // although libpq 15's PQpipelineSync writes each of them at once. Best effort: a failure only costs segments.
    void cork(bool on) {
        const int v = on ? 1 : 0;
        if (::setsockopt(PQsocket(pg.get()), IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0) corked = on;
    }

    ~link() {
        if (sd) sd->release();  // libpq owns the socket
    }
};
using link_ptr = std::shared_ptr<link>;

struct slot_state {
    enum class state { idle, connecting, ready } st = state::idle;
    link_ptr conn;
    std::deque<request_ptr> pending;  // queued while connecting
};

struct blocking_runner {
    asio::thread_pool pool{2};
};

error_code translate_sqlstate(const char* sqlstate) {
    const std::string_view s = sqlstate == nullptr ? std::string_view{} : std::string_view{sqlstate};
    if (s == "57014") return errc::timeout;
    if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03") return errc::connection_broken;
    if (s.starts_with("22") || s == "54000") return errc::bad_input;
    return errc::store_unavailable;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

struct pool_impl;

// The pools of one execution context. A statement still queued in a pool (waiting for its connection to open, or for
// capacity) holds its caller's handler, and the caller's coroutine may own the pool: e.g. a balance lookup that the
// single-flight loader carries on after its gate was cancelled owns the store set, which owns the pool. When the
// context shuts down with such a statement queued, nothing will ever send it or fail it, and the pair would keep itself
// alive. At shutdown, this service drops the queued statements of every pool on the context, their handlers destroyed
// uncalled, as Asio does with its own pending operations (statements in flight go with their connection's reader: see
// `reader_exit`). A pool joins at construction and leaves at destruction: nothing per statement.
class pool_registry final : public asio::execution_context::service {
public:
    using key_type = pool_registry;
    // The list itself, shared with the pools: a pool leaves it safely even if it outlives the service.
    struct members {
        std::mutex m;
        pool_impl* head = nullptr;
    };
    explicit pool_registry(asio::execution_context& ctx)
        : asio::execution_context::service(ctx), members_(std::make_shared<members>()) {}

    [[nodiscard]] const std::shared_ptr<members>& list() const noexcept { return members_; }

private:
    void shutdown() override;
    std::shared_ptr<members> members_;
};

struct pool_impl : std::enable_shared_from_this<pool_impl> {
    pool_impl(asio::any_io_executor ex, pool_params p, asio::thread_pool::executor_type blocking)
        : inner(ex),
          strand(make_io_strand(ex)),
          params(std::move(p)),
          blocking_ex(blocking),
          slots(params.size),
          registry(asio::use_service<pool_registry>(asio::query(ex, asio::execution::context)).list()) {
        std::lock_guard lock(registry->m);
        reg_next = registry->head;
        if (reg_next != nullptr) reg_next->reg_prev = this;
        registry->head = this;
    }
    pool_impl(const pool_impl&) = delete;
    pool_impl& operator=(const pool_impl&) = delete;
    ~pool_impl() {
        std::lock_guard lock(registry->m);
        if (reg_prev != nullptr) {
            reg_prev->reg_next = reg_next;
        } else {
            registry->head = reg_next;
        }
        if (reg_next != nullptr) reg_next->reg_prev = reg_prev;
    }

    asio::any_io_executor inner;   // the executor given at construction
    asio::any_io_executor strand;  // a strand of `inner` (make_io_strand: no allocation per handler)
    pool_params params;
    asio::thread_pool::executor_type blocking_ex;
    std::vector<slot_state> slots;
    std::deque<request_ptr> waiters;
    std::atomic<bool> closed{false};

    std::atomic<std::uint64_t> n_statements{0};
    std::atomic<std::uint64_t> n_syncs{0};
    std::atomic<std::uint64_t> n_connects{0};
    std::atomic<std::uint64_t> n_failures{0};
    std::atomic<std::size_t> n_busy{0};  // callers' statements submitted and not answered yet
    std::uint64_t next_seq = 0;          // strand only
    link_ptr batching;                   // coalescing: the connection collecting this turn's statements
    // This pool's place in its context's pool_registry (guarded by the registry's mutex).
    std::shared_ptr<pool_registry::members> registry;
    pool_impl* reg_prev = nullptr;
    pool_impl* reg_next = nullptr;

    void statement_event(const request& r, pg_statement_event::kind what, error_code ec) {
        if (!params.on_statement) return;
        pg_statement_event e;
        e.what = what;
        e.id = r.seq;
        e.statement = r.st.name();
        e.internal = r.internal;
        e.connection = r.conn_index;
        e.error = ec;
        params.on_statement(e);
    }

    // ---- completion ------------------------------------------------------------------------------------------

    // Records the outcome of `r` and hands it to its caller: queued on the caller's executor, or, with `later`,
    // collected there for `deliver_later` (the reader delivers a batch of answers once its state is consistent).
    void complete(const request_ptr& r, error_code ec, std::string message, std::vector<request_ptr>* later = nullptr) {
        if (r->done) return;
        r->done = true;
        if (r->wait_timer) r->wait_timer->cancel();
        if (r->sent) statement_event(*r, pg_statement_event::kind::completed, ec);
        if (ec) {
            n_failures.fetch_add(1, std::memory_order_relaxed);
            if (params.on_error && ec != errc::cancelled) params.on_error(r->st.name(), ec, message);
        }
        if (r->internal) return;
        n_busy.fetch_sub(1, std::memory_order_relaxed);
        r->ec = ec;
        if (later != nullptr) {
            later->push_back(r);
        } else {
            r->deliver(r, false);
        }
    }

    // Delivers answers collected by `complete(..., later)`. Each caller resumes at once when its executor lets it
    // run here (dispatch): no extra pass through the event loop. A caller that resumes may submit statements (they
    // are sent inline) before this returns.
    static void deliver_later(std::vector<request_ptr>& later) {
        for (auto& r : later) r->deliver(r, true);
        later.clear();
    }

    // ---- connection management -------------------------------------------------------------------------------

    void start_connect(std::size_t index) {
        if (closed) return;
        slots[index].st = slot_state::state::connecting;
        std::vector<std::string> keys{"dbname", "connect_timeout", "application_name"};
        const auto secs = std::max<long long>(1, (params.connect_timeout.count() + 999) / 1000);
        std::vector<std::string> values{params.url, std::to_string(secs), params.application_name};
        if (params.statement_timeout.count() > 0) {
            keys.emplace_back("options");
            values.push_back("-c statement_timeout=" + std::to_string(params.statement_timeout.count()));
        }
        asio::post(
            blocking_ex,
            [w = weak_from_this(), strand_ex = strand, index, keys = std::move(keys), values = std::move(values)] {
                std::vector<const char*> k;
                std::vector<const char*> v;
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    k.push_back(keys[i].c_str());
                    v.push_back(values[i].c_str());
                }
                k.push_back(nullptr);
                v.push_back(nullptr);
                pg_conn_ptr pg{PQconnectdbParams(k.data(), v.data(), 1)};
                std::string err;
                if (!pg) {
                    err = "out of memory";
                } else if (PQstatus(pg.get()) != CONNECTION_OK) {
                    err = trim(PQerrorMessage(pg.get()));
                } else if (PQsetnonblocking(pg.get(), 1) != 0 || PQenterPipelineMode(pg.get()) != 1) {
                    err = "cannot enter pipeline mode: " + trim(PQerrorMessage(pg.get()));
                }
                if (!err.empty()) pg.reset();
                asio::post(strand_ex, [w, index, pg = std::move(pg), err = std::move(err)]() mutable {
                    if (auto self = w.lock()) self->on_connected(index, std::move(pg), std::move(err));
                });
            }
        );
    }

    void on_connected(std::size_t index, pg_conn_ptr pg, std::string err) {
        auto& s = slots[index];
        if (closed) {
            s.st = slot_state::state::idle;
            fail_all(s.pending, errc::cancelled, "pool closed");
            return;
        }
        if (!pg) {
            s.st = slot_state::state::idle;
            const std::string msg = "connect to " + redact_connection_string(params.url) + ": " + err;
            n_failures.fetch_add(1, std::memory_order_relaxed);
            if (params.on_error) params.on_error("connect", errc::store_unavailable, msg);
            fail_all(s.pending, errc::store_unavailable, msg);
            dispatch_waiters();
            return;
        }
        auto l = std::make_shared<link>();
        const int fd = PQsocket(pg.get());
        l->pg = std::move(pg);
        l->sd = std::make_unique<asio::posix::stream_descriptor>(strand, fd);
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            l->tcp = addr.ss_family == AF_INET || addr.ss_family == AF_INET6;
        }
        s.conn = l;
        s.st = slot_state::state::ready;
        n_connects.fetch_add(1, std::memory_order_relaxed);
        asio::co_spawn(strand, reader(shared_from_this(), l), asio::detached);
        auto pend = std::exchange(s.pending, {});
        for (auto& r : pend) {
            if (!r->done) send(index, r);
        }
        dispatch_waiters();
    }

    void fail_all(std::deque<request_ptr>& q, error_code ec, const std::string& msg) {
        auto items = std::exchange(q, {});
        for (auto& r : items) complete(r, ec, msg);
    }

    // Marks a connection broken: everything in flight fails (its effect is unknown); the slot reconnects on
    // next use.
    void break_link(const link_ptr& l, error_code ec, const std::string& msg) {
        if (!l->alive) return;
        l->alive = false;
        error_code ignored;
        l->sd->cancel(ignored);
        for (auto& s : slots) {
            if (s.conn == l) {
                s.conn.reset();
                s.st = slot_state::state::idle;
            }
        }
        fail_all(l->inflight, ec, msg);
        dispatch_waiters();
    }

    // Ends with the reader, however it ends. When its io_context shuts down with statements in flight, the reader's
    // frame is destroyed without resuming: nothing will read their answers any more, so they are dropped with it
    // (their handlers destroyed uncalled, as Asio does with every pending handler at shutdown). Otherwise a caller's
    // handler in flight that owns, through its coroutine, the owner of this pool would keep both alive.
    struct reader_exit {
        explicit reader_exit(link_ptr link) : l(std::move(link)) {}
        reader_exit(const reader_exit&) = delete;
        reader_exit& operator=(const reader_exit&) = delete;
        ~reader_exit() {
            auto dropped = std::move(l->inflight);
            l->inflight.clear();
        }
        link_ptr l;
    };

    static asio::awaitable<void> reader(std::shared_ptr<pool_impl> self, link_ptr l) {
        const reader_exit on_exit{l};
        std::vector<request_ptr> later;  // answers of one wake-up, delivered once the link's state is settled
        while (l->alive) {
            auto [ec] = co_await l->sd->async_wait(
                asio::posix::stream_descriptor::wait_read, asio::as_tuple(asio::use_awaitable)
            );
            if (!l->alive) co_return;
            if (ec) {
                self->break_link(l, errc::connection_broken, "wait on socket: " + ec.message());
                co_return;
            }
            if (PQconsumeInput(l->pg.get()) == 0) {
                self->break_link(l, errc::connection_broken, trim(PQerrorMessage(l->pg.get())));
                co_return;
            }
            self->process_results(l, later);
            if (l->alive && PQstatus(l->pg.get()) == CONNECTION_BAD) {
                self->break_link(l, errc::connection_broken, trim(PQerrorMessage(l->pg.get())));
            } else if (l->alive && !l->flushing && PQflush(l->pg.get()) == 1) {
                self->start_flusher(l);
            }
            deliver_later(later);
        }
    }

    void start_flusher(const link_ptr& l) {
        if (l->flushing) return;
        l->flushing = true;
        asio::co_spawn(strand, flusher(shared_from_this(), l), asio::detached);
    }

    static asio::awaitable<void> flusher(std::shared_ptr<pool_impl> self, link_ptr l) {
        for (;;) {
            auto [ec] = co_await l->sd->async_wait(
                asio::posix::stream_descriptor::wait_write, asio::as_tuple(asio::use_awaitable)
            );
            if (!l->alive) co_return;
            if (ec) {
                self->break_link(l, errc::connection_broken, "wait on socket: " + ec.message());
                co_return;
            }
            const int f = PQflush(l->pg.get());
            if (f == 0) break;
            if (f < 0) {
                self->break_link(l, errc::connection_broken, trim(PQerrorMessage(l->pg.get())));
                co_return;
            }
        }
        l->flushing = false;
    }

    // Takes every complete result off the connection; the answered statements go to `later`.
    void process_results(const link_ptr& l, std::vector<request_ptr>& later) {
        PGconn* pg = l->pg.get();
        int nulls = 0;
        while (l->alive && !l->inflight.empty() && PQisBusy(pg) == 0) {
            PGresult* res = PQgetResult(pg);
            if (res == nullptr) {
                if (++nulls > 1) break;  // end of one statement's results; its sync follows
                continue;
            }
            nulls = 0;
            const auto status = PQresultStatus(res);
            auto r = l->inflight.front();
            switch (status) {
                case PGRES_PIPELINE_SYNC: {
                    PQclear(res);
                    l->inflight.pop_front();
                    if (r->internal && r->ec) l->prepared.erase(r->st.name());
                    complete(r, r->ec, std::move(r->message), &later);
                    if (l->draining && r->done && l->cancel_call_done) {
                        l->draining = false;
                    }
                    dispatch_waiters();
                    break;
                }
                case PGRES_TUPLES_OK:
                case PGRES_COMMAND_OK: r->rows = pg_rows{res}; break;
                case PGRES_PIPELINE_ABORTED:
                    PQclear(res);
                    if (!r->ec) {
                        r->ec = errc::store_unavailable;
                        r->message = "statement " + r->st.name() + ": pipeline aborted";
                    }
                    break;
                case PGRES_FATAL_ERROR:
                default: {
                    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                    r->ec = translate_sqlstate(state);
                    r->message = "statement " + r->st.name() + ": " + trim(PQresultErrorMessage(res));
                    PQclear(res);
                    if (status == PGRES_FATAL_ERROR && r->ec == errc::connection_broken) {
                        // The server is closing this connection (e.g. shutdown): fail it as a whole.
                        l->inflight.pop_front();
                        complete(r, r->ec, r->message);
                        break_link(l, errc::connection_broken, r->message);
                        return;
                    }
                    break;
                }
            }
        }
    }

    // ---- dispatch ---------------------------------------------------------------------------------------------

    std::size_t load(const slot_state& s) const { return s.pending.size() + (s.conn ? s.conn->inflight.size() : 0); }

    // Picks a connection with capacity: an idle ready one, else a closed one (opened now), else the least
    // loaded ready or connecting one below the pipeline depth.
    std::optional<std::size_t> pick() {
        if (params.coalesce && batching && batching->alive && !batching->draining &&
            batching->unflushed < params.coalesce_max && batching->inflight.size() < params.max_in_flight) {
            for (std::size_t i = 0; i < slots.size(); ++i) {
                if (slots[i].conn == batching) return i;
            }
        }
        std::optional<std::size_t> best;
        std::size_t best_load = params.max_in_flight;
        std::optional<std::size_t> closed_slot;
        for (std::size_t i = 0; i < slots.size(); ++i) {
            const auto& s = slots[i];
            if (s.st == slot_state::state::idle) {
                if (!closed_slot) closed_slot = i;
                continue;
            }
            if (s.st == slot_state::state::ready && s.conn->draining) continue;
            const auto ld = load(s);
            if (ld == 0 && s.st == slot_state::state::ready) return i;
            if (ld < best_load) {
                best = i;
                best_load = ld;
            }
        }
        if (closed_slot) {
            start_connect(*closed_slot);
            return closed_slot;
        }
        return best;
    }

    void assign(std::size_t index, const request_ptr& r) {
        auto& s = slots[index];
        if (s.st == slot_state::state::idle) start_connect(index);
        if (s.st == slot_state::state::ready) {
            send(index, r);
        } else {
            s.pending.push_back(r);
        }
    }

    void submit(const request_ptr& r) {
        if (r->done) return;
        if (closed) {
            complete(r, errc::cancelled, "pool closed");
            return;
        }
        if (r->pinned) {
            assign(*r->pinned, r);
            return;
        }
        if (waiters.empty()) {
            if (auto i = pick()) {
                assign(*i, r);
                return;
            }
        }
        waiters.push_back(r);
        r->wait_timer = std::make_unique<asio::steady_timer>(strand, params.wait_timeout);
        r->wait_timer->async_wait([w = weak_from_this(), wr = std::weak_ptr<request>(r)](error_code ec) {
            if (ec) return;
            auto self = w.lock();
            auto req = wr.lock();
            if (self && req && !req->sent) {
                self->complete(
                    req,
                    errc::pool_exhausted,
                    "statement " + req->st.name() + ": no pool capacity within " +
                        std::to_string(self->params.wait_timeout.count()) + " ms"
                );
            }
        });
    }

    void dispatch_waiters() {
        while (!waiters.empty() && !closed) {
            auto& r = waiters.front();
            if (r->done) {
                waiters.pop_front();
                continue;
            }
            auto i = pick();
            if (!i) break;
            auto req = std::move(r);
            waiters.pop_front();
            if (req->wait_timer) req->wait_timer->cancel();
            assign(*i, req);
        }
    }

    void send(std::size_t index, const request_ptr& r) {
        auto l = slots[index].conn;
        PGconn* pg = l->pg.get();
        // A second statement in this turn on this connection: hold the segments until the turn's flush.
        if (params.coalesce && params.tcp_cork && l->tcp && l->flush_posted && !l->corked) l->cork(true);
        const auto& name = r->st.name();
        if (!l->prepared.contains(name)) {
            auto prep = std::make_shared<internal_request>(r->st);
            if (PQsendPrepare(pg, name.c_str(), r->st.sql().c_str(), 0, nullptr) != 1 || PQpipelineSync(pg) != 1) {
                complete(r, errc::connection_broken, "statement " + name + ": " + trim(PQerrorMessage(pg)));
                break_link(l, errc::connection_broken, trim(PQerrorMessage(pg)));
                return;
            }
            n_statements.fetch_add(1, std::memory_order_relaxed);
            n_syncs.fetch_add(1, std::memory_order_relaxed);
            prep->sent = true;
            prep->seq = next_seq++;
            prep->conn_index = index;
            statement_event(*prep, pg_statement_event::kind::sent, {});
            l->inflight.push_back(std::move(prep));
            l->prepared.insert(name);
        }
        // Parameter pointers on the stack for the usual handful of parameters.
        constexpr std::size_t inline_params = 16;
        std::array<const char*, inline_params> small{};
        std::vector<const char*> large;
        const char** values = small.data();
        if (r->params.size() > inline_params) {
            large.resize(r->params.size());
            values = large.data();
        }
        for (std::size_t i = 0; i < r->params.size(); ++i) values[i] = r->params[i].c_str();
        if (PQsendQueryPrepared(pg, name.c_str(), static_cast<int>(r->params.size()), values, nullptr, nullptr, 0) !=
                1 ||
            PQpipelineSync(pg) != 1) {
            const std::string msg = trim(PQerrorMessage(pg));
            complete(r, errc::connection_broken, "statement " + name + ": " + msg);
            break_link(l, errc::connection_broken, msg);
            return;
        }
        n_statements.fetch_add(1, std::memory_order_relaxed);
        n_syncs.fetch_add(1, std::memory_order_relaxed);
        r->sent = true;
        r->on = l;
        r->seq = next_seq++;
        r->conn_index = index;
        l->inflight.push_back(r);
        statement_event(*r, pg_statement_event::kind::sent, {});
        if (!params.coalesce) {
            flush(l);
            return;
        }
        // Coalescing: the statements submitted in this strand turn are flushed together by one queued flush.
        ++l->unflushed;
        batching = l;
        if (!l->flush_posted) {
            l->flush_posted = true;
            // Queued behind whatever is already queued on the io_context (not on the strand, which would then stay
            // busy and queue the next callers' submissions behind this flush): callers queued meanwhile join the turn.
            asio::post(inner, [w = weak_from_this(), l] {
                auto self = w.lock();
                if (!self) return;
                asio::dispatch(self->strand, [self, l] {
                    l->flush_posted = false;
                    if (self->batching == l) self->batching.reset();
                    if (l->alive) self->flush(l);
                });
            });
        }
    }

    void flush(const link_ptr& l) {
        l->unflushed = 0;
        PGconn* pg = l->pg.get();
        const int f = l->flushing ? 1 : PQflush(pg);  // while the flusher runs, it sends the rest
        if (l->corked) l->cork(false);                // the held segments leave now
        if (f == 1) start_flusher(l);
        if (f < 0) break_link(l, errc::connection_broken, trim(PQerrorMessage(pg)));
    }

    // Called on the strand when the caller's cancellation slot fires.
    void cancel(const request_ptr& r) {
        if (r->done) return;
        auto l = r->on.lock();
        complete(r, errc::cancelled, "statement " + r->st.name() + ": cancelled by the caller");
        if (!r->sent || !l || !l->alive) return;
        // In flight: cancel server-side only when it is the sole statement on its connection, and send
        // nothing else there until both the cancel call returned and the statement's sync arrived, so the
        // cancel can never hit another caller's statement.
        if (l->inflight.size() == 1 && l->inflight.front() == r && !l->draining) {
            PGcancel* pc = PQgetCancel(l->pg.get());
            if (pc == nullptr) return;
            l->draining = true;
            l->cancel_call_done = false;
            asio::post(blocking_ex, [pc, w = weak_from_this(), wl = std::weak_ptr<link>(l), strand_ex = strand] {
                char buf[256];
                PQcancel(pc, buf, sizeof buf);
                PQfreeCancel(pc);
                asio::post(strand_ex, [w, wl] {
                    auto self = w.lock();
                    auto lk = wl.lock();
                    if (!self || !lk) return;
                    lk->cancel_call_done = true;
                    if (lk->inflight.empty()) lk->draining = false;
                    self->dispatch_waiters();
                });
            });
        }
    }

    // Its context is shutting down (pool_registry): nothing will run on it again. Moves the statements still queued to
    // `out` (the caller destroys them, and their handlers with them, uncalled); accepts nothing new. Called with no
    // handler of the context running, so off the strand.
    void drop_queued(std::vector<request_ptr>& out) {
        closed = true;
        for (auto& s : slots) {
            for (auto& r : s.pending) out.push_back(std::move(r));
            s.pending.clear();
        }
        for (auto& r : waiters) out.push_back(std::move(r));
        waiters.clear();
    }

    void close() {
        closed = true;
        for (auto& s : slots) {
            fail_all(s.pending, errc::cancelled, "pool closed");
            if (s.conn) {
                auto l = s.conn;
                l->alive = false;
                error_code ignored;
                l->sd->cancel(ignored);
                fail_all(l->inflight, errc::cancelled, "pool closed");
                s.conn.reset();
            }
            s.st = slot_state::state::idle;
        }
        fail_all(waiters, errc::cancelled, "pool closed");
    }
};

void pool_registry::shutdown() {
    std::vector<std::shared_ptr<pool_impl>> pools;
    {
        std::lock_guard lock(members_->m);
        for (pool_impl* p = members_->head; p != nullptr; p = p->reg_next) {
            if (auto sp = p->weak_from_this().lock()) pools.push_back(std::move(sp));
        }
    }
    std::vector<request_ptr> dropped;
    for (auto& p : pools) p->drop_queued(dropped);
    dropped.clear();  // destroys the callers' handlers, and with them possibly the pools' owners (outside the lock)
}

struct exec_initiation {
    std::shared_ptr<pool_impl> impl;
    pg_statement st;
    std::vector<std::string> params;
    std::optional<std::size_t> pinned;

    template <class Handler>
    void operator()(Handler&& h) {
        using req_t = caller_request<std::decay_t<Handler>>;
        auto r = std::make_shared<req_t>(std::move(st), std::move(params), std::forward<Handler>(h), impl->strand);
        r->pinned = pinned;
        r->slot = asio::get_associated_cancellation_slot(r->handler);
        if (r->slot.is_connected()) {
            r->slot.assign([w = std::weak_ptr<pool_impl>(impl),
                            wr = std::weak_ptr<request>(r)](asio::cancellation_type t) {
                if ((t & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                          asio::cancellation_type::total)) == asio::cancellation_type::none) {
                    return;
                }
                auto self = w.lock();
                if (!self) return;
                asio::post(self->strand, [self, wr] {
                    if (auto req = wr.lock()) self->cancel(req);
                });
            });
        }
        impl->n_busy.fetch_add(1, std::memory_order_relaxed);
        // Straight onto the pool's strand: inline when it is free and we are on its io_context's thread (the usual
        // case), queued otherwise. Answers are never handed back inline from here (see `complete`).
        asio::dispatch(impl->strand, [impl = impl, r = request_ptr(std::move(r))] { impl->submit(r); });
    }
};

asio::awaitable<result<pg_rows>> exec_impl(
    std::shared_ptr<pool_impl> impl, pg_statement st, std::vector<std::string> params, std::optional<std::size_t> pin
) {
    auto token = asio::as_tuple(asio::use_awaitable);
    // Aggregate-initialised: every member from the arguments, nothing built only to be replaced.
    exec_initiation init{std::move(impl), std::move(st), std::move(params), pin};
    auto [ec, rows] = co_await asio::async_initiate<decltype(token), void(error_code, pg_rows)>(std::move(init), token);
    if (ec) co_return ec;
    co_return std::move(rows);
}

}  // namespace detail

pg_pool::pg_pool(asio::any_io_executor ex, pool_params params) {
    if (params.size == 0) throw std::invalid_argument("pool_params.size must be at least 1");
    if (params.max_in_flight == 0) throw std::invalid_argument("pool_params.max_in_flight must be at least 1");
    blocking_ = std::make_unique<detail::blocking_runner>();
    impl_ = std::make_shared<detail::pool_impl>(std::move(ex), std::move(params), blocking_->pool.get_executor());
}

pg_pool::~pg_pool() {
    impl_->closed = true;
    asio::post(impl_->strand, [impl = impl_] { impl->close(); });
    blocking_->pool.join();
}

asio::awaitable<result<pg_rows>> pg_pool::exec(pg_statement st, std::vector<std::string> params) {
    return detail::exec_impl(impl_, std::move(st), std::move(params), std::nullopt);
}

asio::awaitable<result<void>> pg_pool::connect_all() {
    static const pg_statement ping{"preflight_ping", "SELECT 1"};
    auto ex = co_await asio::this_coro::executor;
    using op_t = decltype(asio::co_spawn(ex, detail::exec_impl(impl_, ping, {}, 0), asio::deferred));
    std::vector<op_t> ops;
    for (std::size_t i = 0; i < impl_->params.size; ++i) {
        ops.push_back(asio::co_spawn(ex, detail::exec_impl(impl_, ping, {}, i), asio::deferred));
    }
    auto [order, exceptions, results] = co_await asio::experimental::make_parallel_group(std::move(ops))
                                            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (exceptions[i]) std::rethrow_exception(exceptions[i]);
        if (!results[i]) co_return results[i].error();
    }
    co_return result<void>{};
}

pool_stats pg_pool::stats() const noexcept {
    return {
        impl_->n_statements.load(std::memory_order_relaxed),
        impl_->n_syncs.load(std::memory_order_relaxed),
        impl_->n_connects.load(std::memory_order_relaxed),
        impl_->n_failures.load(std::memory_order_relaxed),
    };
}

std::size_t pg_pool::busy() const noexcept {
    return impl_->n_busy.load(std::memory_order_relaxed);
}

std::size_t pg_pool::size() const noexcept {
    return impl_->params.size;
}

}  // namespace preflight::clients
