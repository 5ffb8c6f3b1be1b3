#include <preflight/core/strand.hpp>
#include <preflight/gates/pipeline.hpp>
#include <preflight/gates/precedence.hpp>
#include <preflight/gates/with_timeout.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

namespace asio = boost::asio;

namespace preflight::gates {

std::string_view to_string(event_kind k) noexcept {
    switch (k) {
        case event_kind::fail_open: return "fail_open";
        case event_kind::compensation_failed: return "compensation_failed";
        case event_kind::release_failed: return "release_failed";
        case event_kind::gate_off: return "gate_off";
        case event_kind::lease_lost: return "lease_lost";
        case event_kind::shadow_denial: return "shadow_denial";
    }
    return "unknown";
}

namespace detail {
namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);
constexpr std::array<operation, 5> all_operations{
    operation::execute, operation::execute_with_pause, operation::resume, operation::cancel, operation::read};

/// An error of a check, a fact loader or a hook, from its exception.
struct failure {
    gate_outcome outcome = gate_outcome::error;
    boost::system::error_code ec;
    std::string reason;
};

failure classify(std::exception_ptr ep) {
    try {
        std::rethrow_exception(ep);
    } catch (const boost::system::system_error& e) {
        return {gate_outcome::error, e.code(), e.what()};
    } catch (const std::exception& e) {
        return {gate_outcome::error, make_error_code(errc::store_unavailable), e.what()};
    } catch (...) {
        return {gate_outcome::error, make_error_code(errc::store_unavailable), "unknown exception"};
    }
}

bool valid_name(std::string_view n) {
    if (n.empty()) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.' || c == ':';
    });
}

}  // namespace

struct gate_def {
    gate_spec spec;
};

/// Which gates run for one operation.
struct plan {
    std::vector<std::size_t> read_only;  // gate indexes in declaration order
    std::vector<std::size_t> stateful;
    std::optional<std::size_t> commit;
    std::vector<std::size_t> facts;     // facts declared by those gates, started eagerly
    std::vector<std::size_t> position;  // gate index -> position in read_only (npos otherwise)
    std::vector<bool> applies;          // gate index -> runs for this operation
    [[nodiscard]] bool empty() const noexcept { return read_only.empty() && stateful.empty() && !commit; }
};

class run_state;
class wake_registry;

/// Recycled run states (with their per-gate and per-fact blocks), so that a run costs no allocation for them.
/// Sharded by thread to keep lock contention low; bounded (`cap` per shard, the rest is freed).
class run_pool {
public:
    static constexpr std::size_t shards = 4;
    static constexpr std::size_t cap = 32;
    run_pool() = default;
    run_pool(const run_pool&) = delete;
    run_pool& operator=(const run_pool&) = delete;
    ~run_pool();
    /// A pooled state, or nullptr when the shard is empty.
    run_state* take() noexcept;
    /// Keeps `st` (scrubbed, holding no per-run data) or frees it when the shard is full.
    void give(run_state* st) noexcept;

private:
    struct alignas(64) shard {
        std::mutex m;
        std::vector<run_state*> free;
    };
    static std::size_t my_shard() noexcept;
    std::array<shard, shards> shards_;
};

struct pipeline_impl {
    pipeline_config config;
    std::vector<gate_def> gates;
    std::vector<fact_def> facts;
    std::array<plan, all_operations.size()> plans;
    std::unique_ptr<pipeline_metrics> metrics;
    mutable run_pool pool;

    void emit(event_kind kind, std::string_view gate, std::string_view reason, boost::system::error_code ec) const {
        if (!config.on_event) return;
        try {
            config.on_event(gate_event{kind, gate, reason, ec});
        } catch (...) {  // NOLINT(bugprone-empty-catch): a throwing hook must not break the run; documented
        }
    }
};

/// The state of one run. Every member is touched only on the run's strand.
class run_state : public std::enable_shared_from_this<run_state> {
public:
    struct child {
        gate_context ctx;
        asio::cancellation_signal signal;
        asio::steady_timer::time_point deadline{};  // end of the budget of a check that suspended
        bool timed = false;                         // `deadline` counts (the check suspended and is not finished)
        clock::time_point start{};
        bool started = false;
        bool finished = false;  // result recorded (done, timed out, or cancelled by the run)
        bool effective_deny = false;
        std::optional<denial> deny;
        verdict passed;  // stateful gate: carries its undo (run on a later denial); commit gate: the lease
    };
    struct fact_slot {
        enum class state { idle, loading, done } st = state::idle;
        fact_box box;
        asio::cancellation_signal signal;
        std::unique_ptr<asio::steady_timer> waiters;
    };

    /// The skeleton of a run of `impl` (per-gate and per-fact blocks); `begin` starts a run on it. Recycled
    /// through `impl.pool` (see `acquire`).
    explicit run_state(const pipeline_impl& impl)
        : clock_(impl.config.clock),
          n_gates_(impl.gates.size()),
          n_facts_(impl.facts.size()),
          facts_(std::make_unique<fact_slot[]>(impl.facts.size())),
          fsm_(0) {
        // One small allocation per child (not one array): keeps every allocation in malloc's fast path.
        children_.reserve(impl.gates.size());
        for (std::size_t i = 0; i < impl.gates.size(); ++i) {
            children_.emplace_back(std::make_unique<child>());
            init_child(impl, i);
        }
    }

    /// A run state for `r` (pooled when one is free), owned by the returned pointer: when the last copy goes,
    /// the state is scrubbed and returned to the pool.
    /// The executor is set before `start()` (`set_executor`).
    static std::shared_ptr<run_state> acquire(
        const std::shared_ptr<const pipeline_impl>& impl, request&& r, const plan& p
    ) {
        run_state* raw = impl->pool.take();
        if (raw == nullptr) raw = new run_state(*impl);
        std::shared_ptr<run_state> st(raw, recycle{});
        st->begin(impl, std::move(r), p);
        return st;
    }

    void set_executor(asio::any_io_executor ex) noexcept { ex_ = std::move(ex); }

    /// advance(), keeping the decision for take_result(): true when the run is decided.
    bool step() { return advance(); }
    decision take_result() { return std::move(*result_); }

    [[nodiscard]] const pipeline_impl& impl() const noexcept { return *impl_; }
    [[nodiscard]] const asio::any_io_executor& executor() const noexcept { return ex_; }
    [[nodiscard]] fact_slot& fact(std::size_t i) noexcept { return facts_[i]; }
    [[nodiscard]] bool spawned() const noexcept { return spawned_; }

    /// Starts the facts and the read-only gates (on the run's strand).
    void start();
    /// Moves the run forward as far as it can without waiting; the decision when the run is complete.
    /// Moves the run forward as far as it can without waiting; true when the run is decided (see take_result).
    bool advance();
    /// The rest of a run that has to wait (a check suspended) or compensate.
    asio::awaitable<decision> drive_slow();
    void start_fact(std::size_t fi);

private:
    /// Deleter of a run's shared_ptr: scrubs the state and returns it to its pipeline's pool.
    struct recycle {
        void operator()(run_state* st) const noexcept {
            std::shared_ptr<const pipeline_impl> impl = std::move(st->impl_);
            if (!impl) {  // begin() failed before taking the pipeline
                delete st;
                return;
            }
            st->scrub();
            impl->pool.give(st);  // the pool may be destroyed right after, with `impl`: it then frees `st`
        }
    };

    void init_child(const pipeline_impl& impl, std::size_t i) noexcept {
        auto& c = *children_[i];
        c.ctx.run_ = this;
        c.ctx.req_ = &req_;
        c.ctx.name_ = &impl.gates[i].spec.name;
    }

    void begin(const std::shared_ptr<const pipeline_impl>& impl, request&& r, const plan& p) {
        impl_ = impl;
        req_ = std::move(r);
        plan_ = &p;
        fsm_ = precedence_fsm(p.read_only.size());
        ro_decided_ = p.read_only.empty();
        trace_.resize(n_gates_);
        for (std::size_t i = 0; i < n_gates_; ++i) {
            const auto& spec = impl_->gates[i].spec;
            trace_[i].gate = spec.name;
            trace_[i].phase = spec.phase;
            trace_[i].shadow = spec.shadow;
        }
    }

    /// Drops everything of the finished run (the request, fact values, verdicts, timers bound to the run's
    /// executor), so that a pooled state holds no per-run data. Only the last owner calls it.
    void scrub() noexcept {
        for (std::size_t i = 0; i < n_gates_; ++i) {
            child& c = *children_[i];  // c.ctx points into this state and the pipeline: stays valid
            if (!c.started) continue;  // untouched by the run
            c.signal.slot().clear();   // drops the handler of a spawned check, if any
            c.timed = false;
            c.start = {};
            c.started = false;
            c.finished = false;
            c.effective_deny = false;
            c.deny.reset();
            if (c.passed.release() || c.passed.undo() || !c.passed.lease_id().empty() || c.passed.denied()) {
                c.passed = verdict{};
            }
        }
        for (std::size_t fi = 0; fi < n_facts_; ++fi) {
            auto& f = facts_[fi];
            if (f.st == fact_slot::state::idle) continue;
            f.st = fact_slot::state::idle;
            f.box = fact_box{};
            f.signal.slot().clear();
            f.waiters.reset();
        }
        waker_.reset();
        park_ctx_ = nullptr;  // the next run may be on another context (possibly at the same address)
        park_reg_ = nullptr;
        budget_.reset();  // bound to the run's executor
        budget_armed_ = false;
        timed_ = 0;
        trace_.clear();
        result_.reset();
        req_ = request{};
        ex_ = asio::any_io_executor{};
        plan_ = nullptr;
        t0_ = {};
        decider_.reset();
        stage_ = stage::read_only;
        next_stateful_ = 0;
        compensate_for_ = npos;
        driver_waiting_ = false;
        spawned_ = false;
        in_sync_answer_ = false;
        cursor_valid_ = false;
        notified_ = false;
        awaited_ = npos;
    }

    struct budget_expired {
        std::shared_ptr<run_state> st;
        void operator()(boost::system::error_code ec) const { st->on_budget_timer(ec); }
    };

    /// Completion of a spawned check/loader. Holds the run until the spawned coroutine has fully ended: its
    /// cancellation state lives in the run's cancellation_signal, and co_spawn touches it after our code returns.
    struct keep_alive {
        std::shared_ptr<run_state> st;
        void operator()(const std::exception_ptr& ep) const {
            if (ep) std::rethrow_exception(ep);  // only bad_alloc-like failures of the run's own bookkeeping
        }
    };

    static asio::awaitable<void> run_check(std::shared_ptr<run_state> st, std::size_t gi);
    static asio::awaitable<void> run_fact(std::shared_ptr<run_state> st, std::size_t fi);

    void launch(std::size_t gi);
    void on_check_done(std::size_t gi, std::exception_ptr ep, result<verdict>& r);
    void time_check(child& c, asio::steady_timer::time_point deadline);
    void untime_check(child& c);
    void stop_budget();
    void arm_budget(asio::steady_timer::time_point at);
    void on_budget_timer(boost::system::error_code ec);
    void on_budget_expired(std::size_t gi);
    void on_fact_done(std::size_t fi, std::exception_ptr ep, fact_box box);
    void finish_gate(std::size_t gi, gate_outcome o, std::string reason, boost::system::error_code ec, verdict* v);
    void cancel_running(std::string_view why);
    void cancel_facts();
    void notify();
    [[nodiscard]] bool ready() const noexcept;
    struct wake_initiation;
    asio::awaitable<bool> wait_wake();
    void resume_driver(bool queued);
    asio::awaitable<void> compensate(std::string why);
    lease make_lease(std::size_t gi);
    void finish(std::optional<std::size_t> decider, lease l);

    std::shared_ptr<const pipeline_impl> impl_;
    asio::any_io_executor ex_;
    request req_;
    const plan* plan_ = nullptr;
    const preflight::clock* clock_;
    std::size_t n_gates_;
    std::size_t n_facts_;
    clock::time_point t0_{};
    std::vector<std::unique_ptr<child>> children_;
    std::unique_ptr<fact_slot[]> facts_;
    std::vector<gate_trace> trace_;
    precedence_fsm fsm_;
    bool ro_decided_ = false;
    std::optional<std::size_t> decider_;
    std::optional<decision> result_;                             // the decision of a run decided by step()
    std::optional<asio::any_completion_handler<void()>> waker_;  // the driver waiting in wait_wake
    // Parking (wake_registry): the registry of the context of `ex_`, and this run's links in its list while parked.
    friend class wake_registry;
    asio::execution_context* park_ctx_ = nullptr;
    wake_registry* park_reg_ = nullptr;
    run_state* park_prev_ = nullptr;
    run_state* park_next_ = nullptr;
    bool parked_ = false;
    std::unique_ptr<asio::steady_timer> budget_;  // the run's budget timer (see time_check)
    asio::steady_timer::time_point budget_at_{};  // its expiry while armed
    bool budget_armed_ = false;
    std::size_t timed_ = 0;  // checks with a running budget
    enum class stage { read_only, stateful, commit, done } stage_ = stage::read_only;
    std::size_t next_stateful_ = 0;
    std::size_t compensate_for_ = npos;  // a stateful/commit gate denied: refund, then decide
    bool driver_waiting_ = false;
    bool spawned_ = false;  // a check or loader runs as its own coroutine
    bool in_sync_answer_ = false;
    bool cursor_valid_ = false;  // cursor_ is the end of a gate answered synchronously just before
    clock::time_point cursor_{};
    bool notified_ = false;
    std::size_t awaited_ = npos;
};

run_pool::~run_pool() {
    for (auto& sh : shards_) {
        for (run_state* st : sh.free) delete st;
    }
}

std::size_t run_pool::my_shard() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % shards;
    return shard;
}

run_state* run_pool::take() noexcept {
    auto& sh = shards_[my_shard()];
    std::lock_guard lock(sh.m);
    if (sh.free.empty()) return nullptr;
    run_state* st = sh.free.back();
    sh.free.pop_back();
    return st;
}

void run_pool::give(run_state* st) noexcept {
    auto& sh = shards_[my_shard()];
    {
        std::lock_guard lock(sh.m);
        if (sh.free.size() < cap) {
            if (sh.free.capacity() == 0) {
                try {
                    sh.free.reserve(cap);
                } catch (...) {  // NOLINT(bugprone-empty-catch): no memory for the pool: free the state below
                }
            }
            if (sh.free.capacity() > sh.free.size()) {
                sh.free.push_back(st);
                return;
            }
        }
    }
    delete st;
}

void run_state::start_fact(std::size_t fi) {
    auto& f = facts_[fi];
    if (f.st != fact_slot::state::idle) return;
    f.st = fact_slot::state::loading;
    if (const auto& try_load = impl_->facts[fi].try_load) {
        fact_box box;
        bool at_hand = false;
        std::exception_ptr ep;
        try {
            at_hand = try_load(req_, box);
        } catch (...) {
            ep = std::current_exception();
        }
        if (at_hand || ep) {
            on_fact_done(fi, ep, std::move(box));
            return;
        }
    }
    spawned_ = true;
    asio::co_spawn(
        ex_,
        run_fact(shared_from_this(), fi),
        asio::bind_cancellation_slot(f.signal.slot(), keep_alive{shared_from_this()})
    );
}

// The result is recorded from inside the spawned coroutine, as soon as the loader returns: co_spawn's own
// completion handler would be posted even when nothing suspended.
asio::awaitable<void> run_state::run_fact(std::shared_ptr<run_state> st, std::size_t fi) {
    std::exception_ptr ep;
    fact_box box;
    try {
        box = co_await st->impl_->facts[fi].load(st->req_);
    } catch (...) {
        ep = std::current_exception();
    }
    st->on_fact_done(fi, ep, std::move(box));
}

asio::awaitable<void> run_state::run_check(std::shared_ptr<run_state> st, std::size_t gi) {
    std::exception_ptr ep;
    std::optional<result<verdict>> r;
    try {
        r.emplace(co_await st->impl_->gates[gi].spec.check(st->children_[gi]->ctx));
    } catch (...) {
        ep = std::current_exception();
    }
    if (!r) r.emplace(verdict{});
    st->on_check_done(gi, ep, *r);
}

void run_state::on_fact_done(std::size_t fi, std::exception_ptr ep, fact_box box) {
    auto& f = facts_[fi];
    if (ep) {
        auto fl = classify(ep);
        box = fact_box::failure(fl.ec, fl.reason);
    }
    f.box = std::move(box);
    f.st = fact_slot::state::done;
    if (f.waiters) f.waiters->cancel();
}

void run_state::launch(std::size_t gi) {
    auto& c = *children_[gi];
    const auto& spec = impl_->gates[gi].spec;
    c.started = true;
    // Back-to-back synchronous gates share clock readings: a gate starts when the previous one (answered
    // synchronously, a moment ago in this same call chain) ended.
    c.start = cursor_valid_ ? cursor_ : clock_->now();
    cursor_valid_ = false;
    trace_[gi].started = c.start - t0_;
    if (spec.try_check) {
        std::exception_ptr ep;
        // Initialised from the call (no move of the verdict); an exception gives an engaged placeholder + ep.
        std::optional<result<verdict>> r = [&]() noexcept -> std::optional<result<verdict>> {
            try {
                return spec.try_check(c.ctx);
            } catch (...) {
                ep = std::current_exception();
                return std::optional<result<verdict>>(std::in_place, verdict{});
            }
        }();
        if (r) {
            in_sync_answer_ = true;
            on_check_done(gi, ep, *r);
            in_sync_answer_ = false;
            return;
        }
    }
    spawned_ = true;
    // Runs inline until the check first suspends (dispatch on the run's strand): checks that complete
    // synchronously never touch a timer.
    asio::co_spawn(
        ex_,
        run_check(shared_from_this(), gi),
        asio::bind_cancellation_slot(c.signal.slot(), keep_alive{shared_from_this()})
    );
    if (!c.finished) {
        time_check(c, asio::steady_timer::clock_type::now() + spec.budget);
    }
}

void run_state::on_check_done(std::size_t gi, std::exception_ptr ep, result<verdict>& r) {
    auto& c = *children_[gi];
    untime_check(c);
    if (c.finished) return;  // timed out or cancelled by the run: already recorded
    if (ep) {
        auto fl = classify(ep);
        finish_gate(gi, fl.outcome, std::move(fl.reason), fl.ec, nullptr);
    } else if (!r) {
        // A check that ran out of its own (shorter) time budget reports a time-out like the pipeline's.
        const auto o = r.error() == make_error_code(errc::timeout) ? gate_outcome::timeout : gate_outcome::error;
        finish_gate(gi, o, r.error().message(), r.error(), nullptr);
    } else if (r->passed()) {
        finish_gate(gi, gate_outcome::pass, {}, {}, &*r);
    } else {
        finish_gate(gi, gate_outcome::deny, {}, {}, &*r);
    }
}

// Budgets: one timer per run, armed for the earliest deadline of the checks that suspended (instead of one timer per
// check: fewer timer operations and timerfd updates per run). It stays armed between phases (a later phase's deadlines
// are later: no re-arm; firing early only re-arms it) and is cancelled when the run ends (`stop_budget`), so a pending
// wait never keeps a finished run alive for long.
void run_state::time_check(child& c, asio::steady_timer::time_point deadline) {
    c.deadline = deadline;
    c.timed = true;
    ++timed_;
    if (!budget_armed_ || deadline < budget_at_) arm_budget(deadline);
}

void run_state::untime_check(child& c) {
    if (!c.timed) return;
    c.timed = false;
    --timed_;
}

void run_state::stop_budget() {
    if (!budget_armed_) return;
    budget_armed_ = false;
    budget_->cancel();
}

void run_state::arm_budget(asio::steady_timer::time_point at) {
    if (!budget_) budget_ = std::make_unique<asio::steady_timer>(ex_);
    budget_armed_ = true;
    budget_at_ = at;
    budget_->expires_at(at);  // a pending wait ends with operation_aborted
    budget_->async_wait(budget_expired{shared_from_this()});
}

void run_state::on_budget_timer(boost::system::error_code ec) {
    if (ec || result_) return;  // cancelled, re-armed, or the run has ended
    budget_armed_ = false;
    const auto now = asio::steady_timer::clock_type::now();
    for (std::size_t gi = 0; gi < n_gates_; ++gi) {
        auto& c = *children_[gi];
        if (c.timed && c.deadline <= now) on_budget_expired(gi);
    }
    if (timed_ == 0 || budget_armed_) return;
    auto next = asio::steady_timer::time_point::max();
    for (std::size_t gi = 0; gi < n_gates_; ++gi) {
        const auto& c = *children_[gi];
        if (c.timed && c.deadline < next) next = c.deadline;
    }
    arm_budget(next);
}

void run_state::on_budget_expired(std::size_t gi) {
    auto& c = *children_[gi];
    untime_check(c);
    if (c.finished) return;
    const auto& spec = impl_->gates[gi].spec;
    finish_gate(
        gi,
        gate_outcome::timeout,
        "time budget of " + std::to_string(spec.budget.count()) + " ms exceeded",
        make_error_code(errc::timeout),
        nullptr
    );
    c.signal.emit(asio::cancellation_type::terminal);
}

void run_state::finish_gate(
    std::size_t gi, gate_outcome o, std::string reason, boost::system::error_code ec, verdict* v
) {
    auto& c = *children_[gi];
    auto& t = trace_[gi];
    const auto& spec = impl_->gates[gi].spec;
    c.finished = true;
    t.outcome = o;
    const auto now = clock_->now();
    t.duration = now - c.start;
    if (in_sync_answer_) {
        cursor_ = now;
        cursor_valid_ = true;
    }
    if (v != nullptr) {
        t.key = std::move(v->key());
        if (v->passed()) {
            t.limiter = v->limiter();
        } else {
            t.limiter = v->denied()->limiter;
        }
    }
    bool denied = false;
    switch (o) {
        case gate_outcome::pass:
            // A stateful gate's undo and the commit gate's lease; a read-only gate consumed nothing to undo.
            if (spec.phase != phase::read_only && v != nullptr) c.passed = std::move(*v);
            break;
        case gate_outcome::deny:
            t.reason = v->denied()->code;
            if (spec.shadow) {
                t.would_deny = true;
                impl_->emit(event_kind::shadow_denial, spec.name, t.reason, {});
            } else {
                denied = true;
                c.deny = std::move(*v->denied());
            }
            break;
        default:  // error, timeout (a check that reports cancellation by itself counts as an error)
            t.reason = std::move(reason);
            if (spec.shadow) {
                t.would_deny = spec.on_failure == failure_policy::fail_closed;
                if (t.would_deny) impl_->emit(event_kind::shadow_denial, spec.name, t.reason, ec);
            } else if (spec.on_failure == failure_policy::fail_open) {
                t.fail_open = true;
                impl_->emit(event_kind::fail_open, spec.name, t.reason, ec);
            } else {
                denied = true;
                c.deny = denial{
                    503,
                    "gate_unavailable",
                    "gate '" + spec.name + "' is unavailable (" + std::string(to_string(o)) + ")",
                    std::nullopt,
                    std::nullopt};
            }
            break;
    }
    c.effective_deny = denied;
    if (spec.phase == phase::read_only) {
        if (ro_decided_) return;
        auto step = fsm_.on_gate_done(plan_->position[gi], denied);
        if (step == precedence_step::keep_waiting) return;
        ro_decided_ = true;
        if (auto d = fsm_.deciding_gate()) {
            decider_ = plan_->read_only[*d];
            cancel_running("decided by '" + impl_->gates[*decider_].spec.name + "'");
            cancel_facts();
        }
        notify();
    } else if (awaited_ == gi) {
        notify();
    }
}

void run_state::cancel_running(std::string_view why) {
    for (std::size_t gi = 0; gi < impl_->gates.size(); ++gi) {
        auto& c = *children_[gi];
        if (!c.started || c.finished) continue;
        c.finished = true;
        trace_[gi].outcome = gate_outcome::cancelled;
        trace_[gi].duration = clock_->now() - c.start;
        trace_[gi].reason = std::string(why);
        untime_check(c);
        c.signal.emit(asio::cancellation_type::terminal);
    }
}

void run_state::cancel_facts() {
    for (std::size_t fi = 0; fi < impl_->facts.size(); ++fi) {
        if (facts_[fi].st == fact_slot::state::loading) facts_[fi].signal.emit(asio::cancellation_type::terminal);
    }
}

void run_state::notify() {
    if (driver_waiting_ && !notified_) {
        notified_ = true;
        resume_driver(false);
    }
}

/// Keeps track of the run drivers parked in wait_wake on one execution context. A parked driver's handler owns its
/// coroutine, which owns the run that holds the handler: when the context shuts down with a run still waiting (its
/// checks' operations are destroyed, never completed), this service destroys the parked handlers so that the pair does
/// not keep itself alive. Park/unpark are O(1) under a mutex (runs of several threads share the context).
class wake_registry final : public asio::execution_context::service {
public:
    using key_type = wake_registry;
    explicit wake_registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

    void park(run_state* st) {
        std::lock_guard lock(m_);
        st->park_prev_ = nullptr;
        st->park_next_ = head_;
        if (head_ != nullptr) head_->park_prev_ = st;
        head_ = st;
        st->parked_ = true;
    }

    void unpark(run_state* st) {
        std::lock_guard lock(m_);
        if (!st->parked_) return;
        if (st->park_prev_ != nullptr) {
            st->park_prev_->park_next_ = st->park_next_;
        } else {
            head_ = st->park_next_;
        }
        if (st->park_next_ != nullptr) st->park_next_->park_prev_ = st->park_prev_;
        st->park_prev_ = st->park_next_ = nullptr;
        st->parked_ = false;
    }

private:
    void shutdown() override {
        std::vector<asio::any_completion_handler<void()>> drop;
        {
            std::lock_guard lock(m_);
            for (run_state* st = head_; st != nullptr;) {
                run_state* next = st->park_next_;
                if (st->waker_) drop.emplace_back(std::move(*st->waker_));
                st->waker_.reset();
                st->park_prev_ = st->park_next_ = nullptr;
                st->parked_ = false;
                st = next;
            }
            head_ = nullptr;
        }
        drop.clear();  // destroys the drivers' coroutines, and with them their runs (outside the lock)
    }

    std::mutex m_;
    run_state* head_ = nullptr;
};

// The driver (drive_slow) waits here until notify(): its handler is kept in `waker_` and resumed by notify() right
// away, on the run's strand (no timer, no pass through the event loop). A cancellation of the caller resumes it
// queued, with `notified_` false. Every member is touched on the run's strand only (the registry has its own lock).
struct run_state::wake_initiation {
    run_state* st;
    template <class Handler>
    void operator()(Handler&& h) const {
        auto slot = asio::get_associated_cancellation_slot(h);
        auto& ctx = asio::query(st->ex_, asio::execution::context);
        if (st->park_ctx_ != &ctx) {
            st->park_reg_ = &asio::use_service<wake_registry>(ctx);
            st->park_ctx_ = &ctx;
        }
        st->waker_.emplace(std::forward<Handler>(h));  // constructed in place (see the any_completion_handler note)
        st->park_reg_->park(st);
        if (slot.is_connected()) {
            slot.assign([st = st](asio::cancellation_type) { st->resume_driver(true); });
        }
    }
};

asio::awaitable<bool> run_state::wait_wake() {
    notified_ = false;
    driver_waiting_ = true;
    cursor_valid_ = false;
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(wake_initiation{this}, asio::use_awaitable);
    driver_waiting_ = false;
    co_return notified_;
}

void run_state::resume_driver(bool queued) {
    if (!waker_) return;
    park_reg_->unpark(this);
    asio::any_completion_handler<void()> h(std::move(*waker_));
    waker_.reset();
    if (queued) {
        asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(); });
    } else {
        std::move(h)();
    }
}

bool run_state::ready() const noexcept {
    if (compensate_for_ != npos) return true;
    if (stage_ == stage::read_only) return ro_decided_;
    return awaited_ == npos || children_[awaited_]->finished;
}

// The stateful gates that passed with an undo (what they consumed), latest first, when a later gate denied or the
// caller cancelled the run. The commit gate is last: a run never reaches it and then compensates.
asio::awaitable<void> run_state::compensate(std::string why) {
    for (auto it = plan_->stateful.rbegin(); it != plan_->stateful.rend(); ++it) {
        auto& c = *children_[*it];
        const auto& spec = impl_->gates[*it].spec;
        if (!c.passed.undo()) continue;
        undo_function undo = std::move(c.passed.undo());
        c.passed = verdict{};
        result<void> r;
        std::string reason;
        try {
            r = co_await with_timeout(undo(), spec.budget);
        } catch (...) {
            auto fl = classify(std::current_exception());
            r = fl.ec;
            reason = fl.reason;
        }
        if (r) {
            trace_[*it].reason = "refunded: " + why;
            trace_[*it].compensated = true;
        } else {
            if (reason.empty()) reason = r.error().message();
            trace_[*it].reason = "refund failed: " + reason;
            impl_->emit(event_kind::compensation_failed, spec.name, reason, r.error());
        }
    }
}

void run_state::finish(std::optional<std::size_t> decider, lease l) {
    stop_budget();
    cancel_facts();
    const std::string_view op = to_string(req_.op);
    for (std::size_t gi = 0; gi < impl_->gates.size(); ++gi) {
        auto& t = trace_[gi];
        if (children_[gi]->started) continue;
        t.outcome = gate_outcome::skipped;
        if (!impl_->gates[gi].spec.off.empty()) {
            t.reason = "off: " + impl_->gates[gi].spec.off;
        } else if (!plan_->applies[gi]) {
            t.reason = "not applicable to ";
            t.reason += op;
        } else if (decider) {
            t.reason = "not needed: decided by '" + impl_->gates[*decider].spec.name + "'";
        }
    }
    decision& d = result_.emplace();
    if (decider) {
        auto& c = *children_[*decider];
        d.allowed = false;
        d.status = c.deny->status;
        d.code = std::move(c.deny->code);
        d.message = std::move(c.deny->message);
        d.gate = impl_->gates[*decider].spec.name;
        d.retry_after = c.deny->retry_after;
        d.limiter = c.deny->limiter;
        d.details = std::move(c.deny->details);
    }
    d.lease = std::move(l);
    if (impl_->metrics) {
        for (std::size_t gi = 0; gi < trace_.size(); ++gi) impl_->metrics->record(gi, trace_[gi]);
        impl_->metrics->record_decision(d.allowed);
    }
    d.trace = std::move(trace_);
}

void run_state::start() {
    t0_ = clock_->now();
    // Without facts to start first, the first gate starts with the run (one clock reading for both).
    cursor_ = t0_;
    cursor_valid_ = plan_->facts.empty();
    for (auto fi : plan_->facts) start_fact(fi);
    for (auto gi : plan_->read_only) {
        if (ro_decided_) break;
        launch(gi);
    }
}

bool run_state::advance() {
    if (stage_ == stage::read_only) {
        if (!ro_decided_) return false;
        if (decider_) {
            finish(decider_, {});
            return true;
        }
        stage_ = stage::stateful;
    }
    while (stage_ == stage::stateful) {
        if (next_stateful_ == plan_->stateful.size()) {
            stage_ = stage::commit;
            break;
        }
        const auto gi = plan_->stateful[next_stateful_];
        auto& c = *children_[gi];
        if (!c.started) launch(gi);
        if (!c.finished) {
            awaited_ = gi;
            return false;
        }
        awaited_ = npos;
        if (c.effective_deny) {
            compensate_for_ = gi;
            return false;
        }
        ++next_stateful_;
    }
    lease l;
    if (plan_->commit) {
        const auto gi = *plan_->commit;
        auto& c = *children_[gi];
        if (!c.started) launch(gi);
        if (!c.finished) {
            awaited_ = gi;
            return false;
        }
        awaited_ = npos;
        if (c.effective_deny) {
            compensate_for_ = gi;
            return false;
        }
        l = make_lease(gi);
    }
    stage_ = stage::done;
    finish(std::nullopt, std::move(l));
    return true;
}

lease run_state::make_lease(std::size_t gi) {
    auto& c = *children_[gi];
    if (!c.passed.release()) return {};
    release_error_hook hook;
    if (impl_->config.on_event || impl_->metrics) {
        hook = [impl = impl_, gi](const std::string& id, boost::system::error_code ec) {
            // cancelled: the release never ran (lease_lost); else the store failed it.
            const bool lost = ec == make_error_code(errc::cancelled);
            if (lost && impl->metrics) impl->metrics->record_lease_lost();
            impl->emit(
                lost ? event_kind::lease_lost : event_kind::release_failed, impl->gates[gi].spec.name, "lease " + id, ec
            );
        };
    }
    return lease(
        std::move(c.passed.lease_id()), std::move(c.passed.release()), ex_, std::move(hook), std::move(c.passed.hooks())
    );
}

asio::awaitable<decision> run_state::drive_slow() {
    auto self = shared_from_this();  // keeps the run alive while the driver waits
    for (;;) {
        if (compensate_for_ != npos) {
            co_await compensate("denied by '" + impl_->gates[compensate_for_].spec.name + "'");
            finish(compensate_for_, {});
            co_return take_result();
        }
        const bool woken = co_await wait_wake();
        if (!woken && !ready()) {
            cancel_running("run cancelled by its caller");
            cancel_facts();
            stop_budget();
            // The refunds must run although the caller cancelled: with the cancellation state left as it is,
            // every co_await below would throw operation_aborted before starting.
            co_await asio::this_coro::reset_cancellation_state();
            co_await compensate("run cancelled by its caller");
            throw boost::system::system_error(asio::error::operation_aborted, "preflight run cancelled");
        }
        if (advance()) co_return take_result();
    }
}

/// A run on the current strand: the synchronous fast path, then the waiting slow path if needed.
// The coroutines of a run keep their frames small (no request, no decision local): Asio recycles awaitable frames
// only up to about 1 KB, a larger frame costs an aligned allocation per run.

/// A run on the current strand: the synchronous fast path, then the waiting slow path if needed.
asio::awaitable<decision> run_here(std::shared_ptr<run_state> st) {
    st->start();
    if (!st->step()) co_return co_await st->drive_slow();
    // Every check ran inline, but co_spawn still posts the end of each spawned coroutine. Yield once behind
    // those posts so that they (and the run's memory) are gone before the caller starts its next run: a caller
    // that loops over run() without other I/O would otherwise pile them up without bound.
    if (st->spawned()) co_await asio::post(st->executor(), asio::use_awaitable);
    co_return st->take_result();
}

/// A run of a planned operation, its state acquired (request moved in) by `pipeline::run`.
asio::awaitable<decision> run_planned(std::shared_ptr<run_state> st) {
    auto ex = co_await asio::this_coro::executor;
    // A caller already on a strand of an io_context, or on an io_context that one thread runs
    // (`mark_single_threaded`), runs the whole run there (no hop); otherwise the run gets its own strand so that
    // its checks never run concurrently with each other.
    if (runs_serially(ex)) {
        // Same as run_here, without a nested coroutine frame.
        st->set_executor(std::move(ex));
        st->start();
        if (!st->step()) co_return co_await st->drive_slow();
        if (st->spawned()) co_await asio::post(st->executor(), asio::use_awaitable);
        co_return st->take_result();
    }
    st->set_executor(make_io_strand(ex));
    asio::any_io_executor strand = st->executor();
    co_return co_await asio::co_spawn(strand, run_here(std::move(st)), asio::use_awaitable);
}

/// `resume`, or an operation no gate applies to: allowed, every gate skipped.
asio::awaitable<decision> run_unplanned(std::shared_ptr<const pipeline_impl> impl, operation op) {
    decision d;
    d.trace.resize(impl->gates.size());
    for (std::size_t gi = 0; gi < impl->gates.size(); ++gi) {
        auto& t = d.trace[gi];
        t.gate = impl->gates[gi].spec.name;
        t.phase = impl->gates[gi].spec.phase;
        t.shadow = impl->gates[gi].spec.shadow;
        const auto& off = impl->gates[gi].spec.off;
        t.reason = off.empty() ? "not applicable to " + std::string(to_string(op)) : "off: " + off;
        if (impl->metrics) impl->metrics->record(gi, t);
    }
    if (impl->metrics) impl->metrics->record_decision(true);
    co_return d;
}

}  // namespace detail

asio::awaitable<const void*> gate_context::fact_erased(std::size_t index, std::type_index type) {
    auto& st = *run_;
    const auto& defs = st.impl().facts;
    if (index >= defs.size() || defs[index].type != type) {
        throw std::logic_error(
            "gate '" + *name_ + "': fact key does not belong to this pipeline or has the wrong type"
        );
    }
    auto& f = st.fact(index);
    if (f.st == detail::run_state::fact_slot::state::idle) st.start_fact(index);
    while (f.st == detail::run_state::fact_slot::state::loading) {
        if (!f.waiters)
            f.waiters = std::make_unique<asio::steady_timer>(st.executor(), asio::steady_timer::time_point::max());
        co_await f.waiters->async_wait(asio::as_tuple(asio::use_awaitable));
        if (f.st == detail::run_state::fact_slot::state::loading) {
            throw boost::system::system_error(
                asio::error::operation_aborted,
                "gate '" + *name_ + "' cancelled while awaiting fact '" + defs[index].name + "'"
            );
        }
    }
    if (!f.box.ok()) throw fact_error(defs[index].name, f.box.error(), f.box.message());
    co_return f.box.value();
}

const void* gate_context::try_fact_erased(std::size_t index, std::type_index type) {
    auto& st = *run_;
    const auto& defs = st.impl().facts;
    if (index >= defs.size() || defs[index].type != type) {
        throw std::logic_error(
            "gate '" + *name_ + "': fact key does not belong to this pipeline or has the wrong type"
        );
    }
    auto& f = st.fact(index);
    if (f.st == detail::run_state::fact_slot::state::idle) st.start_fact(index);
    if (f.st != detail::run_state::fact_slot::state::done) return nullptr;
    if (!f.box.ok()) throw fact_error(defs[index].name, f.box.error(), f.box.message());
    return f.box.value();
}

pipeline_builder::pipeline_builder(pipeline_config config) : config_(std::move(config)) {}

pipeline_builder& pipeline_builder::add_gate(gate_spec spec) {
    gates_.push_back(std::move(spec));
    return *this;
}

pipeline pipeline_builder::build() {
    using E = pipeline_config_error;
    if (config_.clock == nullptr) throw E("pipeline: config.clock is null");
    if (!(config_.near_limit_fraction >= 0.0 && config_.near_limit_fraction <= 1.0)) {
        throw E(
            "pipeline: config.near_limit_fraction " + std::to_string(config_.near_limit_fraction) +
            " is not within [0, 1]"
        );
    }
    if (gates_.empty()) throw E("pipeline: no gates declared");
    for (std::size_t i = 0; i < facts_.size(); ++i) {
        if (!detail::valid_name(facts_[i].name)) throw E("pipeline: invalid fact name '" + facts_[i].name + "'");
        for (std::size_t j = 0; j < i; ++j) {
            if (facts_[j].name == facts_[i].name) throw E("pipeline: duplicate fact '" + facts_[i].name + "'");
        }
        if (!facts_[i].load) throw E("pipeline: fact '" + facts_[i].name + "' has no loader");
    }
    if (config_.shadow) {
        for (auto& g : gates_) g.shadow = true;
    }
    auto impl = std::make_shared<detail::pipeline_impl>();
    std::size_t commits = 0;
    std::size_t read_only = 0;
    std::vector<std::vector<std::size_t>> gate_facts(gates_.size());
    for (std::size_t i = 0; i < gates_.size(); ++i) {
        const auto& g = gates_[i];
        const auto who = "gate '" + g.name + "'";
        if (!detail::valid_name(g.name)) {
            throw E("pipeline: invalid gate name '" + g.name + "' (use letters, digits, '_', '-', '.', ':')");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (gates_[j].name == g.name) throw E("pipeline: duplicate gate '" + g.name + "'");
        }
        if (!g.check && g.off.empty()) throw E(who + ": no check");
        if (g.operations.empty()) throw E(who + ": applies to no operation (empty phase for this gate)");
        for (auto op : g.operations) {
            if (op == operation::resume) throw E(who + ": resume is never gated");
        }
        if (g.budget.count() <= 0) throw E(who + ": time budget must be > 0 ms");
        if (g.phase == phase::commit) ++commits;
        if (g.phase == phase::read_only) ++read_only;
        for (const auto& fname : g.facts) {
            auto it = std::find_if(facts_.begin(), facts_.end(), [&](const auto& f) { return f.name == fname; });
            if (it == facts_.end()) throw E(who + ": unknown fact '" + fname + "'");
            gate_facts[i].push_back(static_cast<std::size_t>(it - facts_.begin()));
        }
    }
    if (commits > 1) throw E("pipeline: more than one commit gate");
    if (read_only > precedence_fsm::max_gates) throw E("pipeline: more than 64 read-only gates");

    impl->config = std::move(config_);
    impl->facts = std::move(facts_);
    std::vector<std::string> names;
    for (auto& g : gates_) {
        names.push_back(g.name);
        impl->gates.push_back(detail::gate_def{std::move(g)});
    }
    for (std::size_t o = 0; o < detail::all_operations.size(); ++o) {
        const auto op = detail::all_operations[o];
        auto& p = impl->plans[static_cast<std::size_t>(op)];
        p.position.assign(impl->gates.size(), detail::npos);
        p.applies.assign(impl->gates.size(), false);
        if (op == operation::resume) continue;
        for (std::size_t gi = 0; gi < impl->gates.size(); ++gi) {
            const auto& spec = impl->gates[gi].spec;
            if (!spec.off.empty()) continue;
            if (std::find(spec.operations.begin(), spec.operations.end(), op) == spec.operations.end()) continue;
            p.applies[gi] = true;
            switch (spec.phase) {
                case phase::read_only:
                    p.position[gi] = p.read_only.size();
                    p.read_only.push_back(gi);
                    break;
                case phase::stateful: p.stateful.push_back(gi); break;
                case phase::commit: p.commit = gi; break;
            }
            for (auto fi : gate_facts[gi]) {
                if (std::find(p.facts.begin(), p.facts.end(), fi) == p.facts.end()) p.facts.push_back(fi);
            }
        }
    }
    if (impl->config.metrics) {
        impl->metrics = std::make_unique<pipeline_metrics>(std::move(names), impl->config.near_limit_fraction);
    }
    gates_.clear();
    return pipeline(std::move(impl));
}

asio::awaitable<decision> pipeline::run(request r) const {
    const detail::plan& p = impl_->plans[static_cast<std::size_t>(r.op)];
    if (p.empty()) return detail::run_unplanned(impl_, r.op);
    return detail::run_planned(detail::run_state::acquire(impl_, std::move(r), p));
}

const pipeline_metrics& pipeline::metrics() const {
    if (!impl_->metrics) throw std::logic_error("pipeline: metrics are disabled (pipeline_config::metrics = false)");
    return *impl_->metrics;
}

std::vector<std::string> pipeline::gate_names() const {
    std::vector<std::string> out;
    for (const auto& g : impl_->gates) out.push_back(g.spec.name);
    return out;
}

}  // namespace preflight::gates
