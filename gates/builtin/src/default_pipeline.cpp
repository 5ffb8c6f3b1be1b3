#include <preflight/cache/outcome_cache.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/gates/builtin/limiter_keys.hpp>
#include <preflight/gates/with_timeout.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>
#include <preflight/limits/run_budget.hpp>
#include <preflight/limits/window_refund.hpp>

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preflight::gates {

namespace {

namespace asio = boost::asio;
using clients::plan_tier;
using sub_fact = std::optional<clients::subscription>;

/// The usage of a run's subject (its org, else its user) in the current period, loaded eagerly with the
/// subscription so that the usage gate costs no round trip after the subscription's. Empty subject: no usage to
/// check (`used` stays zero).
struct usage_fact {
    std::string subject;
    std::string period;
    clients::usage used;
};

/// The read-only facts of a run in one lookup (`store_set::subject_facts`): what the ban, usage and member-cap
/// gates and the subscription would otherwise look up one by one.
struct read_facts {
    std::optional<clients::ban> ban;
    sub_fact subscription;
    usage_fact usage;  ///< empty subject: usage not looked up
    std::optional<clients::member> membership;
};

/// One run's ordered stateful call (`limits::limit_chain`): made by the first stateful gate that runs, read by the
/// later ones. The stateful gates run one after another, so a later gate finds it answered (or abandoned: the first
/// gate ran out of time, and the later ones fail by their policy).
struct chain_slot {
    bool started = false;
    std::optional<result<limits::chain_result>> outcome;
};

/// Everything the gates share for the lifetime of the pipeline.
struct state {
    clients::store_set stores;
    default_pipeline_settings s;
    const preflight::clock* clock = nullptr;
    clients::wall_clock_fn wall;
    std::optional<fact_key<sub_fact>> sub_key;
    /// Registered only when some plan tier has a usage limit (otherwise the usage gate never reads usage).
    std::optional<fact_key<usage_fact>> usage_key;
    /// Registered instead of `sub_key` and `usage_key` when the store set has a `subject_facts` source.
    std::optional<fact_key<read_facts>> reads_key;
    bool reads_usage = false;                          // some plan tier has a usage limit
    clients::memory_usage_store* mem_usage = nullptr;  // synchronous usage fast path (null unless in-memory)
    std::unique_ptr<cache::outcome_cache<clients::balance_outcome>> balance_cache;
    /// The fallback limiter used while the shared rate-limit store fails (limit ÷ fleet.size).
    std::unique_ptr<limits::memory_rate_limit_store> local_limiter;
    /// Decisions of the fallback limiter (default_pipeline_stats).
    mutable std::atomic<std::uint64_t> fallback_allowed{0};
    mutable std::atomic<std::uint64_t> fallback_denied{0};
    // Synchronous fast paths when the limit stores are the in-memory ones (null otherwise).
    limits::memory_rate_limit_store* mem_rate = nullptr;
    limits::memory_fixed_window_store* mem_window = nullptr;
    limits::memory_admission_store* mem_admission = nullptr;
    limits::memory_run_budget_store* mem_run_budgets = nullptr;
    /// The window store's refund capability (null when it has none: the backstop is then never refunded).
    limits::window_refund* window_refund = nullptr;
    /// Set when the stateful gates reach their stores through one ordered call (`pipeline.stateful_call`): the run's
    /// slot for that call's outcome, shared by the three gates.
    std::optional<fact_key<std::shared_ptr<chain_slot>>> chain_key;

    [[nodiscard]] std::chrono::system_clock::time_point wall_now() const {
        return wall ? wall() : std::chrono::system_clock::now();
    }
};

using state_ptr = std::shared_ptr<state>;

plan_tier tier_of(const sub_fact& f) noexcept {
    return f && f->counts() ? f->plan : plan_tier::free;
}

std::size_t tier_index(plan_tier t) noexcept {
    return static_cast<std::size_t>(t);
}

std::chrono::milliseconds ceil_ms(std::chrono::nanoseconds d) {
    return std::chrono::ceil<std::chrono::milliseconds>(std::max(d, std::chrono::nanoseconds::zero()));
}

std::chrono::seconds ceil_s(std::chrono::nanoseconds d) {
    return std::chrono::ceil<std::chrono::seconds>(std::max(d, std::chrono::nanoseconds::zero()));
}

/// The subject a limiter counts, for client-safe messages (the store key stays in the trace): the first present of
/// org, user, API key, IP.
std::string subject_phrase(const request& r) {
    const auto& s = r.subject;
    if (!s.org.empty()) return "org '" + s.org + "'";
    if (!s.user.empty()) return "user '" + s.user + "'";
    if (!s.api_key_id.empty()) return "API key '" + s.api_key_id + "'";
    return "IP '" + s.ip + "'";
}

/// `t` as an RFC 3339 UTC timestamp, to the second ("2026-12-07T13:05:00Z").
std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t);
    const auto days = std::chrono::floor<std::chrono::days>(secs);
    const std::chrono::year_month_day ymd{days};
    const std::chrono::hh_mm_ss hms{secs - days};
    char buf[32];
    std::snprintf(
        buf,
        sizeof buf,
        "%04d-%02u-%02uT%02d:%02d:%02dZ",
        static_cast<int>(ymd.year()),
        static_cast<unsigned>(ymd.month()),
        static_cast<unsigned>(ymd.day()),
        static_cast<int>(hms.hours().count()),
        static_cast<int>(hms.minutes().count()),
        static_cast<int>(hms.seconds().count())
    );
    return buf;
}

/// A quota's figures for the trace and the near-limit metric (no time window: no RateLimit fields).
limiter_info quota_info(std::uint64_t limit, std::uint64_t used) noexcept {
    limiter_info info;
    info.limit = limit;
    info.remaining = used >= limit ? 0 : limit - used;
    return info;
}

/// `v` (pass or deny) with the store key it counted under, for the trace.
template <class V>
V keyed(V v, std::string key) {
    if (v) v->set_key(std::move(key));
    return v;
}

denial make_denial(int status, std::string code, std::string message) {
    denial d;
    d.status = status;
    d.code = std::move(code);
    d.message = std::move(message);
    return d;
}

// ---- subscription fact ----------------------------------------------------------------------------------------

asio::awaitable<result<sub_fact>> load_subscription(state_ptr st, std::string user, std::string org) {
    if (user.empty() && org.empty()) {
        sub_fact none;
        co_return none;
    }
    auto r = co_await st->stores.subscriptions->find_highest_priority(std::move(user), std::move(org));
    if (!r) co_return r.error();
    sub_fact f = std::move(*r);
    co_return f;
}

denial subscription_unavailable(const std::string& fact, const boost::system::error_code& ec) {
    return make_denial(
        503, "gate_unavailable", "subscription unavailable: fact '" + fact + "' failed (" + ec.message() + ")"
    );
}

/// The run's subscription fact, from the combined read when there is one. Throws `fact_error` when it failed.
asio::awaitable<const sub_fact*> subscription_of(const state& st, gate_context& c) {
    if (st.reads_key) {
        const read_facts& f = co_await c.fact(*st.reads_key);
        co_return &f.subscription;
    }
    const sub_fact& f = co_await c.fact(*st.sub_key);
    co_return &f;
}

/// `subscription_of` for `try_check`: nullptr while the fact is still loading.
const sub_fact* try_subscription(const state& st, gate_context& c) {
    if (st.reads_key) {
        const read_facts* f = c.try_fact(*st.reads_key);
        return f == nullptr ? nullptr : &f->subscription;
    }
    return c.try_fact(*st.sub_key);
}

// ---- combined read ----------------------------------------------------------------------------------------------

bool ban_applies(operation op) noexcept {
    return op == operation::execute || op == operation::execute_with_pause || op == operation::read;
}

bool is_execution(operation op) noexcept {
    return op == operation::execute || op == operation::execute_with_pause;
}

/// The usage subject of a request: its org, else its user ("" = nothing to check).
const std::string& usage_subject(const request& r) noexcept {
    return r.subject.org.empty() ? r.subject.user : r.subject.org;
}

/// Calls `f` with each subject the ban gate checks, in order: user, org, IP, API key (the empty ones left out).
template <class F>
void for_each_ban_subject(const request& r, F&& f) {
    const auto& s = r.subject;
    for (const std::string* id : {&s.user, &s.org, &s.ip, &s.api_key_id}) {
        if (!id->empty()) f(*id);
    }
}

std::vector<std::string> ban_subjects(const request& r) {
    std::vector<std::string> ids;
    for_each_ban_subject(r, [&](const std::string& id) { ids.push_back(id); });
    return ids;
}

asio::awaitable<result<read_facts>> load_read_facts(state_ptr st, clients::subject_facts_query q) {
    std::string subject = q.usage_subject;
    std::string period = q.usage_period;
    auto r = co_await st->stores.subject_facts->load(std::move(q));
    if (!r) co_return r.error();
    read_facts f;
    f.ban = std::move(r->active_ban);
    f.subscription = std::move(r->highest_subscription);
    f.usage.subject = std::move(subject);
    f.usage.period = std::move(period);
    f.usage.used = r->period_usage;
    f.membership = std::move(r->membership);
    co_return f;
}

/// What the gates that apply to `r` read, as one query.
clients::subject_facts_query read_query(const state& st, const request& r) {
    clients::subject_facts_query q;
    const auto& s = r.subject;
    if (ban_applies(r.op)) q.ban_subjects = ban_subjects(r);
    q.user_id = s.user;
    q.org_id = s.org;
    if (is_execution(r.op)) {
        if (st.reads_usage && !usage_subject(r).empty()) {
            q.usage_subject = usage_subject(r);
            q.usage_period = usage_period_start(st.wall_now());
        }
        q.membership = !s.org.empty() && !s.user.empty();
    }
    return q;
}

// ---- ban --------------------------------------------------------------------------------------------------------

/// The ban gate's verdict on the active ban found (if any).
result<verdict> ban_verdict(const state& st, const std::optional<clients::ban>& found) {
    if (!found) return verdict::pass();
    const clients::ban& b = *found;
    denial d = make_denial(403, "banned", "subject '" + b.subject_id + "' is banned");
    // No retry-after: a 403 carries none (RFC 9110). When the ban ends is said only when configured to.
    if (b.until && st.s.ban_expose_until) d.details.emplace_back("banned_until", rfc3339_utc(*b.until));
    return verdict::deny(std::move(d));
}

asio::awaitable<result<verdict>> ban_check(state_ptr st, gate_context& c) {
    const auto& s = c.req().subject;
    if (s.user.empty() && s.org.empty() && s.ip.empty() && s.api_key_id.empty()) co_return verdict::pass();
    std::optional<clients::ban> found;
    if (st->reads_key) {
        const read_facts& f = co_await c.fact(*st->reads_key);
        found = f.ban;
    } else {
        std::vector<std::string> ids = ban_subjects(c.req());
        auto r = co_await st->stores.bans->find_active(std::move(ids));
        if (!r) co_return r.error();
        found = std::move(*r);
    }
    co_return ban_verdict(*st, found);
}

/// `ban_check` without a coroutine, when the ban store answers at once (`ban_store::try_find_active`).
std::optional<result<verdict>> ban_try(const state& st, gate_context& c) {
    const auto& s = c.req().subject;
    if (s.user.empty() && s.org.empty() && s.ip.empty() && s.api_key_id.empty()) return verdict::pass();
    if (st.reads_key) return std::nullopt;  // the combined read: `ban_check` waits for it
    std::array<std::string_view, 4> ids{};
    std::size_t n = 0;
    for_each_ban_subject(c.req(), [&](const std::string& id) { ids[n++] = id; });
    auto r = st.stores.bans->try_find_active(std::span<const std::string_view>(ids.data(), n));
    if (!r) return std::nullopt;
    if (!*r) return r->error();
    return ban_verdict(st, **r);
}

// ---- usage ------------------------------------------------------------------------------------------------------

asio::awaitable<result<usage_fact>> load_usage(state_ptr st, std::string subject) {
    usage_fact f;
    if (subject.empty()) co_return f;
    f.period = usage_period_start(st->wall_now());
    std::string subject_arg = subject;
    std::string period_arg = f.period;
    auto r = co_await st->stores.usage->get(std::move(subject_arg), std::move(period_arg));
    if (!r) co_return r.error();
    f.subject = std::move(subject);
    f.used = *r;
    co_return f;
}

std::optional<result<usage_fact>> load_usage_now(const state& st, const request& r) {
    usage_fact f;
    const std::string& subject = usage_subject(r);
    if (subject.empty()) return f;
    f.period = usage_period_start(st.wall_now());
    f.used = st.mem_usage->get_now(subject, f.period);
    f.subject = subject;
    return f;
}

/// The usage gate's verdict on the period's usage `u` under `limit` (> 0) of `tier`.
result<verdict> usage_verdict(std::uint64_t limit, plan_tier tier, const usage_fact& u) {
    if (u.subject.empty()) return verdict::pass();
    if (u.used.requests < limit) {
        verdict v = verdict::pass();
        v.set_limiter(quota_info(limit, u.used.requests + 1));  // this execution included
        return v;
    }
    return verdict::deny(make_denial(
        402,
        "usage_limit_exceeded",
        "'" + u.subject + "' used " + std::to_string(u.used.requests) + " of " + std::to_string(limit) +
            " requests of the " + std::string(clients::to_string(tier)) + " plan in the period starting " + u.period
    ));
}

/// The usage gate's answer when the subscription alone decides (it failed, `tier` empty: the gate's policy; an
/// unlimited tier: pass); nullopt when the period's usage decides, against `limit` (then set).
std::optional<result<verdict>> usage_by_tier(
    const state& st,
    const std::optional<plan_tier>& tier,
    const boost::system::error_code& fact_failure,
    const std::string& failed_fact,
    std::uint64_t& limit
) {
    if (!tier) {
        // The gate's policy applies: fail-open passes (event, trace), fail-closed is the 503 naming the fact.
        if (st.s.usage_fail_open) return result<verdict>(fact_failure);
        return verdict::deny(subscription_unavailable(failed_fact, fact_failure));
    }
    limit = st.s.usage_limits[tier_index(*tier)];
    if (limit == 0 || !st.reads_usage) return verdict::pass();  // unlimited
    return std::nullopt;
}

asio::awaitable<result<verdict>> usage_check(state_ptr st, gate_context& c) {
    std::optional<plan_tier> tier;
    boost::system::error_code fact_failure;
    std::string failed_fact;
    try {
        tier = tier_of(*co_await subscription_of(*st, c));
    } catch (const fact_error& e) {
        fact_failure = e.code();
        failed_fact = e.fact();
    }
    std::uint64_t limit = 0;
    if (auto decided = usage_by_tier(*st, tier, fact_failure, failed_fact, limit)) co_return std::move(*decided);
    // The usage fact started with the run (its failure is this gate's error: the gate's policy applies).
    const usage_fact* used = nullptr;
    if (st->reads_key) {
        const read_facts& f = co_await c.fact(*st->reads_key);
        used = &f.usage;
    } else {
        const usage_fact& f = co_await c.fact(*st->usage_key);
        used = &f;
    }
    co_return usage_verdict(limit, *tier, *used);
}

/// `usage_check` without a coroutine, when both of its facts are already there (loaded at once at the run's start).
std::optional<result<verdict>> usage_try(const state& st, gate_context& c) {
    if (st.reads_key) return std::nullopt;
    std::optional<plan_tier> tier;
    boost::system::error_code fact_failure;
    std::string failed_fact;
    try {
        const sub_fact* f = c.try_fact(*st.sub_key);
        if (f == nullptr) return std::nullopt;
        tier = tier_of(*f);
    } catch (const fact_error& e) {
        fact_failure = e.code();
        failed_fact = e.fact();
    }
    std::uint64_t limit = 0;
    if (auto decided = usage_by_tier(st, tier, fact_failure, failed_fact, limit)) return decided;
    const usage_fact* used = c.try_fact(*st.usage_key);  // a failed usage fact throws: the gate's error
    if (used == nullptr) return std::nullopt;
    return usage_verdict(limit, *tier, *used);
}

// ---- org member cap ---------------------------------------------------------------------------------------------

/// The member cap's verdict on the membership found (if any).
result<verdict> member_cap_verdict(const std::optional<clients::member>& found) {
    if (!found || !found->usage_cap) return verdict::pass();  // not a member, or uncapped
    const clients::member& m = *found;
    if (m.used < *m.usage_cap) return verdict::pass();
    return verdict::deny(make_denial(
        402,
        "member_usage_cap_exceeded",
        "user '" + m.user_id + "' used " + std::to_string(m.used) + " of the member cap of " +
            std::to_string(*m.usage_cap) + " in org '" + m.org_id + "'"
    ));
}

asio::awaitable<result<verdict>> member_cap_check(state_ptr st, gate_context& c) {
    const auto& s = c.req().subject;
    if (s.org.empty() || s.user.empty()) co_return verdict::pass();
    std::optional<clients::member> found;
    if (st->reads_key) {
        const read_facts& f = co_await c.fact(*st->reads_key);
        found = f.membership;
    } else {
        std::string org = s.org;
        std::string user = s.user;
        auto r = co_await st->stores.members->find(std::move(org), std::move(user));
        if (!r) co_return r.error();
        found = std::move(*r);
    }
    co_return member_cap_verdict(found);
}

/// `member_cap_check` without a coroutine, when the member store answers at once (`member_store::try_find`).
std::optional<result<verdict>> member_cap_try(const state& st, gate_context& c) {
    const auto& s = c.req().subject;
    if (s.org.empty() || s.user.empty()) return verdict::pass();
    if (st.reads_key) return std::nullopt;  // the combined read: `member_cap_check` waits for it
    auto r = st.stores.members->try_find(s.org, s.user);
    if (!r) return std::nullopt;
    if (!*r) return r->error();
    return member_cap_verdict(**r);
}

// ---- balance ----------------------------------------------------------------------------------------------------

verdict balance_verdict(const std::string& org, const clients::balance_outcome& o) {
    if (o.allowed) return verdict::pass();
    std::string msg = "org '" + org + "' has no plan executions left";
    if (!o.reason.empty()) msg += " (" + o.reason + ")";
    return verdict::deny(make_denial(402, "plan_executions_exhausted", std::move(msg)));
}

asio::awaitable<result<clients::balance_outcome>> ask_balance(
    std::shared_ptr<clients::balance_source> src, std::string org
) {
    co_return co_await src->check(std::move(org));
}

asio::awaitable<result<verdict>> balance_check(state_ptr st, gate_context& c) {
    const std::string& org = c.req().subject.org;
    if (org.empty()) co_return verdict::pass();
    auto src = st->stores.balance;
    // The provider call itself is bounded by the gate's budget and abandoned when it runs out (whatever the source's
    // own time-outs): the checks that joined it fail open together, and the next check calls the source again.
    auto ask = [src, org, budget = st->s.balance_budget]() { return abandon_after(ask_balance(src, org), budget); };
    std::string key = org;
    auto r = co_await st->balance_cache->get_or_check(std::move(key), std::move(ask));
    if (!r) co_return r.error();  // never cached; the gate fails open
    co_return balance_verdict(org, *r->outcome);
}

std::optional<result<verdict>> balance_try(const state& st, gate_context& c) {
    const std::string& org = c.req().subject.org;
    if (org.empty()) return verdict::pass();
    auto hit = st.balance_cache->peek(org);
    if (!hit) return std::nullopt;
    return balance_verdict(org, *hit);
}

// ---- run budget -------------------------------------------------------------------------------------------------

result<verdict> run_budget_verdict(const state& st, const std::string& run, const result<limits::run_charge>& r) {
    if (!r) return r.error();
    if (r->allowed) {
        verdict v = verdict::pass_with_undo([store = st.stores.run_budgets, run]() { return store->refund(run, 1); });
        v.set_limiter(quota_info(r->max, r->used));
        v.set_key(run);
        return v;
    }
    denial d = make_denial(429, "run_budget_exhausted", limits::run_budget_message(r->used, r->max));
    d.limiter = quota_info(r->max, r->max);
    verdict v = verdict::deny(std::move(d));
    v.set_key(run);
    return v;
}

asio::awaitable<result<verdict>> run_budget_check(state_ptr st, gate_context& c) {
    const std::string& run = c.req().subject.run_id;
    if (run.empty()) co_return verdict::pass();  // not part of a flow run
    std::string id = run;
    auto r = co_await st->stores.run_budgets->charge(
        std::move(id),
        st->s.run_budget_max,
        1,
        std::chrono::duration_cast<std::chrono::milliseconds>(st->s.run_budget_ttl)
    );
    co_return run_budget_verdict(*st, run, r);
}

std::optional<result<verdict>> run_budget_try(const state& st, gate_context& c) {
    const std::string& run = c.req().subject.run_id;
    if (run.empty()) return verdict::pass();
    auto r = st.mem_run_budgets->charge_now(
        run, st.s.run_budget_max, 1, std::chrono::duration_cast<std::chrono::milliseconds>(st.s.run_budget_ttl)
    );
    return run_budget_verdict(st, run, r);
}

// ---- backstop ---------------------------------------------------------------------------------------------------

result<verdict> backstop_verdict(const state& st, const std::string& org, const result<limits::window_result>& r) {
    if (!r) return r.error();
    limiter_info info;
    info.limit = r->max;
    info.remaining = r->count >= r->max ? 0 : r->max - r->count;
    info.window = st.s.backstop.period;
    info.reset = ceil_s(r->reset_after);
    if (r->allowed) {
        verdict v = verdict::pass();
        v.set_limiter(info);
        return v;
    }
    denial d = make_denial(
        429,
        "execution_backstop",
        "org '" + org + "' reached " + std::to_string(r->max) + " executions in " +
            std::to_string(st.s.backstop.period.count()) + " s"
    );
    d.retry_after = ceil_ms(r->reset_after);
    info.remaining = 0;
    d.limiter = info;
    return verdict::deny(std::move(d));
}

/// A passed backstop, with what gives its count back when a later stateful gate or the admission denies (nothing
/// when the window store cannot refund).
verdict backstop_pass(const state& st, std::string key, const verdict& passed) {
    verdict v;
    if (st.window_refund != nullptr) {
        v = verdict::pass_with_undo(
            [windows = st.stores.windows, refund = st.window_refund, key, limit = st.s.backstop]() {
                return refund->refund(key, limit, 1);
            }
        );
    }
    if (passed.limiter()) v.set_limiter(*passed.limiter());
    v.set_key(std::move(key));
    return v;
}

asio::awaitable<result<verdict>> backstop_check(state_ptr st, gate_context& c) {
    std::string key = backstop_key(c.req());
    if (key.empty()) co_return verdict::pass();
    std::string key_arg = key;
    auto r = co_await st->stores.windows->consume(std::move(key_arg), st->s.backstop, 1);
    auto v = backstop_verdict(*st, c.req().subject.org, r);
    if (v && v->passed()) co_return backstop_pass(*st, std::move(key), *v);
    co_return keyed(std::move(v), std::move(key));
}

std::optional<result<verdict>> backstop_try(const state& st, gate_context& c) {
    std::string key = backstop_key(c.req());
    if (key.empty()) return verdict::pass();
    result<limits::window_result> r = st.mem_window->counter().consume(key, st.s.backstop, 1);
    auto v = backstop_verdict(st, c.req().subject.org, r);
    if (v && v->passed()) return backstop_pass(st, std::move(key), *v);
    return keyed(std::move(v), std::move(key));
}

// ---- rate limit -------------------------------------------------------------------------------------------------

limits::bucket_limit rate_limit_of(const state& st, plan_tier tier, operation op) {
    const auto& t = st.s.rate_limits[tier_index(tier)];
    return op == operation::read ? t.read : t.write;  // cancel (when not exempt) draws from write
}

result<verdict> rate_verdict(
    const state& st,
    const request& req,
    const std::string& key,
    limits::bucket_limit limit,
    const result<limits::acquire_result>& r
) {
    limits::acquire_result a;
    bool degraded = false;
    if (r) {
        a = *r;
    } else {
        // The shared store failed: decide with this process's share of the limit instead of admitting everything.
        auto local = st.local_limiter->try_acquire(key, local_share(limit, st.s.fleet_size), 1);
        if (!local) return local.error();
        (local->allowed ? st.fallback_allowed : st.fallback_denied).fetch_add(1, std::memory_order_relaxed);
        if (local->allowed) return make_error_code(builtin_errc::rate_limit_degraded);
        a = *local;
        degraded = true;
        limit = local_share(limit, st.s.fleet_size);
    }
    limiter_info info;
    info.limit = static_cast<std::uint64_t>(limit.burst);
    info.remaining = static_cast<std::uint64_t>(std::max(0.0, a.remaining));
    info.window = std::chrono::seconds{static_cast<std::int64_t>(std::ceil(limit.burst / limit.rate_per_s))};
    info.reset = ceil_s(a.reset_after);
    if (a.allowed) {
        // What gives the token back when a later gate denies: the store that took it, with the key and limit used.
        verdict v = verdict::pass_with_undo([store = st.stores.rate_limits, key, limit]() {
            return store->refund(key, limit, 1);
        });
        v.set_limiter(info);
        v.set_key(key);
        return v;
    }
    const std::string what = "rate limit exceeded for " + subject_phrase(req) +
                             (req.op == operation::read ? " (read requests)" : " (write requests)");
    denial d = make_denial(
        429, "rate_limited", degraded ? what + " (local fallback limiter: shared store unavailable)" : what
    );
    d.retry_after = ceil_ms(a.retry_after);
    d.limiter = info;
    verdict v = verdict::deny(std::move(d));
    v.set_key(key);
    return v;
}

asio::awaitable<result<verdict>> rate_limit_check(state_ptr st, gate_context& c) {
    std::string key = rate_limit_key(c.req());
    if (key.empty()) co_return verdict::pass();
    plan_tier tier = plan_tier::free;
    try {
        tier = tier_of(*co_await subscription_of(*st, c));
    } catch (const fact_error&) {
        // Only reachable for operations the usage gate does not cover (read, cancel): the usage gate fails
        // closed on it otherwise. Use the free tier, the strictest limits.
        tier = plan_tier::free;
    }
    const auto limit = rate_limit_of(*st, tier, c.req().op);
    std::string key_arg = key;
    // The shared store gets 3/4 of the gate's budget, so that a store that hangs (not only one that errors)
    // still leaves time to decide with the local fallback limiter.
    const auto store_budget = std::max(std::chrono::milliseconds{1}, st->s.rate_limit_budget * 3 / 4);
    auto r = co_await with_timeout(st->stores.rate_limits->acquire(std::move(key_arg), limit, 1), store_budget);
    if (!r && r.error() == make_error_code(errc::cancelled)) co_return r.error();  // the run cancelled us
    co_return rate_verdict(*st, c.req(), key, limit, r);
}

std::optional<result<verdict>> rate_limit_try(const state& st, gate_context& c) {
    std::string key = rate_limit_key(c.req());
    if (key.empty()) return verdict::pass();
    plan_tier tier = plan_tier::free;
    try {
        const sub_fact* f = try_subscription(st, c);
        if (f == nullptr) return std::nullopt;
        tier = tier_of(*f);
    } catch (const fact_error&) {
        tier = plan_tier::free;  // see rate_limit_check
    }
    const auto limit = rate_limit_of(st, tier, c.req().op);
    auto r = st.mem_rate->try_acquire(key, limit, 1);
    return rate_verdict(st, c.req(), key, limit, r);
}

// ---- admission --------------------------------------------------------------------------------------------------

asio::awaitable<result<void>> release_admission(std::shared_ptr<limits::admission_store> store, std::string id) {
    auto r = co_await store->release(std::move(id));
    if (!r) co_return r.error();
    co_return result<void>{};  // false (already expired or released) is harmless
}

/// Records an admitted execution's usage once, keyed by its lease id (`usage_store::record`).
asio::awaitable<result<void>> record_execution(
    std::shared_ptr<clients::usage_store> store,
    std::string lease_id,
    std::string subject,
    std::string period,
    std::uint64_t requests,
    std::uint64_t tokens
) {
    auto r = co_await store->record(std::move(lease_id), std::move(subject), std::move(period), {requests, tokens});
    if (!r) co_return r.error();
    co_return result<void>{};  // false: recorded before (a repeated release)
}

result<verdict> admission_verdict(
    const state& st, const request& req, const std::string& key, const result<limits::lease_grant>& r
) {
    if (!r) return r.error();
    if (!r->admitted) {
        denial d = make_denial(
            429,
            "too_many_concurrent_executions",
            subject_phrase(req) + " has " + std::to_string(r->in_use) + " of " + std::to_string(r->max) +
                " concurrent executions running"
        );
        d.limiter = quota_info(r->max, r->max);  // a concurrency limit: no time window, no RateLimit fields
        verdict v = verdict::deny(std::move(d));
        v.set_key(key);
        return v;
    }
    auto store = st.stores.admissions;
    const auto ttl = st.s.admission_lease_ttl;  // the one lease ttl: reserve and renew alike
    lease_hooks hooks;
    hooks.renew = [store, id = r->lease_id, ttl]() { return store->renew(id, ttl); };
    if (st.mem_admission != nullptr) {
        hooks.release_now = [store, mem = st.mem_admission, id = r->lease_id]() { (void)mem->release_now(id); };
    }
    // The execution's usage, in the period it started, recorded once when its lease is released.
    if (st.s.usage_record && !usage_subject(req).empty()) {
        hooks.record_usage = [usage = st.stores.usage,
                              id = r->lease_id,
                              subject = usage_subject(req),
                              period = usage_period_start(st.wall_now())](
                                 std::uint64_t requests, std::uint64_t tokens
                             ) { return record_execution(usage, id, subject, period, requests, tokens); };
    }
    verdict v = verdict::pass_with_lease(
        r->lease_id, [store, id = r->lease_id]() { return release_admission(store, id); }, std::move(hooks)
    );
    v.set_limiter(quota_info(r->max, r->in_use));
    v.set_key(key);
    return v;
}

asio::awaitable<result<verdict>> admission_check(state_ptr st, gate_context& c) {
    std::string key = admission_key(c.req());
    if (key.empty()) co_return verdict::pass();
    std::string key_arg = key;
    auto r = co_await st->stores.admissions->reserve(
        std::move(key_arg), st->s.admission_max_concurrent, st->s.admission_lease_ttl
    );
    co_return admission_verdict(*st, c.req(), key, r);
}

std::optional<result<verdict>> admission_try(const state& st, gate_context& c) {
    std::string key = admission_key(c.req());
    if (key.empty()) return verdict::pass();
    auto r = st.mem_admission->reserve_now(key, st.s.admission_max_concurrent, st.s.admission_lease_ttl);
    return admission_verdict(st, c.req(), key, r);
}

// ---- the ordered stateful call -----------------------------------------------------------------------------------
// With `pipeline.stateful_call` auto and a store set that offers a `limits::limit_chain`, the first stateful gate
// that runs sends the parts of every stateful gate from its own on as ONE call, which applies them in order and stops
// at the first denial (nothing of a later part written; the earlier ones given back). Each gate then reads its own
// part: the pipeline still runs them one after another, with their own traces, verdicts and failure policies.

bool rate_applies(const state& st, operation op) noexcept {
    return op == operation::execute || op == operation::execute_with_pause || op == operation::read ||
           (op == operation::cancel && !st.s.cancel_exempt);
}

/// The rate limit of a request's tier (the free tier, the strictest, when the subscription failed: the usage gate
/// fails closed on that for executions).
asio::awaitable<limits::bucket_limit> rate_limit_for(const state& st, gate_context& c) {
    plan_tier tier = plan_tier::free;
    try {
        tier = tier_of(*co_await subscription_of(st, c));
    } catch (const fact_error&) {
        tier = plan_tier::free;
    }
    co_return rate_limit_of(st, tier, c.req().op);
}

/// The stateful parts of `c`'s request from gate `from` on (the gates before it have run: none of them applied).
asio::awaitable<limits::chain_request> chain_request_for(const state& st, gate_context& c, limits::chain_part from) {
    const request& r = c.req();
    limits::chain_request q;
    if (from == limits::chain_part::window && st.stores.windows && is_execution(r.op)) {
        std::string key = backstop_key(r);
        if (!key.empty()) q.window = limits::chain_request::window_part{std::move(key), st.s.backstop, 1};
    }
    if (from != limits::chain_part::admission && rate_applies(st, r.op)) {
        std::string key = rate_limit_key(r);
        if (!key.empty()) {
            const auto limit = co_await rate_limit_for(st, c);
            q.bucket = limits::chain_request::bucket_part{std::move(key), limit, 1};
        }
    }
    if (st.s.admission_enabled && is_execution(r.op)) {
        std::string key = admission_key(r);
        if (!key.empty()) {
            q.admission = limits::chain_request::admission_part{
                std::move(key), st.s.admission_max_concurrent, st.s.admission_lease_ttl};
        }
    }
    co_return q;
}

/// The run's ordered call: made here when no gate before made it, else its recorded outcome. `errc::timeout` when the
/// gate that made it ran out of time before the answer (the call may still take effect; a lease it took expires).
asio::awaitable<result<limits::chain_result>> chain_outcome(
    state_ptr st, gate_context& c, limits::chain_part from, std::chrono::milliseconds budget
) {
    const std::shared_ptr<chain_slot> slot = *c.try_fact(*st->chain_key);  // at hand: made synchronously
    if (!slot->started) {
        slot->started = true;
        auto q = co_await chain_request_for(*st, c, from);
        // 3/4 of the gate's budget, so that the call's time-out is recorded for the gates after it.
        const auto call_budget = std::max(std::chrono::milliseconds{1}, budget * 3 / 4);
        slot->outcome.emplace(co_await with_timeout(st->stores.limit_chain->apply(std::move(q)), call_budget));
    }
    if (!slot->outcome) co_return make_error_code(errc::timeout);
    co_return *slot->outcome;
}

asio::awaitable<result<verdict>> backstop_chain_check(state_ptr st, gate_context& c) {
    std::string key = backstop_key(c.req());
    if (key.empty()) co_return verdict::pass();
    const auto r = co_await chain_outcome(st, c, limits::chain_part::window, st->s.backstop_budget);
    if (!r) co_return r.error();
    if (!r->window) co_return verdict::pass();  // not asked: nothing counted
    auto v = backstop_verdict(*st, c.req().subject.org, *r->window);
    // Passed and kept (the chain passed): undone only when the run is cancelled later.
    if (v && v->passed() && r->allowed()) co_return backstop_pass(*st, std::move(key), *v);
    co_return keyed(std::move(v), std::move(key));
}

asio::awaitable<result<verdict>> rate_limit_chain_check(state_ptr st, gate_context& c) {
    std::string key = rate_limit_key(c.req());
    if (key.empty()) co_return verdict::pass();
    const auto limit = co_await rate_limit_for(*st, c);
    const auto r = co_await chain_outcome(st, c, limits::chain_part::bucket, st->s.rate_limit_budget);
    if (r && !r->bucket) co_return verdict::pass();  // not asked: nothing taken
    const result<limits::acquire_result> a = r ? result<limits::acquire_result>(*r->bucket) : r.error();
    auto v = rate_verdict(*st, c.req(), key, limit, a);  // a failed call: the local fallback limiter decides
    if (v && v->passed() && r && !r->allowed()) co_return keyed(result<verdict>(verdict::pass()), std::move(key));
    co_return v;
}

asio::awaitable<result<verdict>> admission_chain_check(state_ptr st, gate_context& c) {
    std::string key = admission_key(c.req());
    if (key.empty()) co_return verdict::pass();
    const auto r = co_await chain_outcome(st, c, limits::chain_part::admission, st->s.admission_budget);
    if (!r) co_return r.error();
    if (!r->admission) co_return verdict::pass();  // not asked
    co_return admission_verdict(*st, c.req(), key, *r->admission);
}

// ---- assembly ---------------------------------------------------------------------------------------------------

failure_policy policy(bool fail_open) {
    return fail_open ? failure_policy::fail_open : failure_policy::fail_closed;
}

template <class Store>
void require(const std::shared_ptr<Store>& p, const char* name) {
    if (!p) throw pipeline_config_error(std::string("default_pipeline: store_set.") + name + " is null");
}

default_pipeline_stats stats_of(const std::shared_ptr<const state>& st) {
    default_pipeline_stats out;
    if (!st) return out;
    if (st->balance_cache) out.balance_cache = st->balance_cache->stats();
    out.fallback_limiter_keys = st->local_limiter->size();
    out.fallback_allowed = st->fallback_allowed.load(std::memory_order_relaxed);
    out.fallback_denied = st->fallback_denied.load(std::memory_order_relaxed);
    return out;
}

}  // namespace

default_pipeline_stats default_pipeline_monitor::read() const {
    std::function<default_pipeline_stats()> source;
    {
        std::lock_guard lk(mu_);
        source = source_;
    }
    return source ? source() : default_pipeline_stats{};
}

void default_pipeline_monitor::attach(std::function<default_pipeline_stats()> source) {
    std::lock_guard lk(mu_);
    source_ = std::move(source);
}

std::string default_pipeline_metrics(const default_pipeline_stats& s) {
    std::string out;
    const auto& bc = s.balance_cache;
    append_prometheus_metric(
        out, "preflight_balance_cache_entries", "gauge", "Balance outcomes cached per org (expired included).", bc.size
    );
    append_prometheus_metric(
        out, "preflight_balance_cache_hits_total", "counter", "Balance checks answered from the cache.", bc.hits
    );
    append_prometheus_metric(
        out, "preflight_balance_cache_misses_total", "counter", "Balance checks not answered from the cache.", bc.misses
    );
    append_prometheus_metric(
        out, "preflight_balance_cache_evictions_total", "counter", "Live balance outcomes evicted.", bc.evictions
    );
    append_prometheus_metric(
        out,
        "preflight_rate_limit_fallback_keys",
        "gauge",
        "Keys held by the local fallback rate limiter.",
        s.fallback_limiter_keys
    );
    const std::string_view decisions = "preflight_rate_limit_fallback_decisions_total";
    append_prometheus_header(
        out, decisions, "counter", "Rate-limit decisions of the local fallback limiter while the shared store failed."
    );
    append_prometheus_sample(out, decisions, "{result=\"allowed\"}", s.fallback_allowed);
    append_prometheus_sample(out, decisions, "{result=\"denied\"}", s.fallback_denied);
    return out;
}

pipeline default_pipeline(const config& cfg, default_pipeline_deps deps) {
    return default_pipeline_with_options(cfg, std::move(deps), default_pipeline_options{});
}

pipeline default_pipeline_with_options(const config& cfg, default_pipeline_deps deps, default_pipeline_options opts) {
    if (deps.stores.clock != nullptr && deps.clock != nullptr && deps.clock != deps.stores.clock) {
        throw pipeline_config_error(
            "default_pipeline: deps.clock is not the store set's clock (store_set.clock): one clock for the pipeline "
            "and its stores (leave deps.clock null to take the store set's)"
        );
    }
    if (deps.clock == nullptr)
        deps.clock = deps.stores.clock != nullptr ? deps.stores.clock : &preflight::clock::steady();
    const auto& stores = deps.stores;
    require(stores.bans, "bans");
    require(stores.subscriptions, "subscriptions");
    require(stores.usage, "usage");
    require(stores.members, "members");
    require(stores.rate_limits, "rate_limits");

    auto st = std::make_shared<state>();
    st->s = default_settings_from(cfg);
    if (st->s.admission_enabled) require(stores.admissions, "admissions");
    st->stores = std::move(deps.stores);
    st->clock = deps.clock;
    st->wall = std::move(opts.wall_clock);
    limits::memory_rate_limit_store_params local_params;
    local_params.max_keys = st->s.rate_limit_max_keys;
    st->local_limiter = std::make_unique<limits::memory_rate_limit_store>(*deps.clock, local_params);
    st->mem_rate = dynamic_cast<limits::memory_rate_limit_store*>(st->stores.rate_limits.get());
    st->mem_window = dynamic_cast<limits::memory_fixed_window_store*>(st->stores.windows.get());
    st->mem_admission = dynamic_cast<limits::memory_admission_store*>(st->stores.admissions.get());
    st->mem_run_budgets = dynamic_cast<limits::memory_run_budget_store*>(st->stores.run_budgets.get());
    st->mem_usage = dynamic_cast<clients::memory_usage_store*>(st->stores.usage.get());
    st->window_refund = dynamic_cast<limits::window_refund*>(st->stores.windows.get());
    const bool with_balance = st->s.balance_enabled && st->stores.balance != nullptr;
    if (with_balance) {
        cache::outcome_cache_params cp;
        cp.ttl = st->s.balance_cache_ttl;
        cp.stale_if_error = st->s.balance_stale_if_error;
        cp.capacity = st->s.balance_cache_capacity;
        st->balance_cache = std::make_unique<cache::outcome_cache<clients::balance_outcome>>(cp, *deps.clock);
    }
    if (opts.monitor) opts.monitor->attach([w = std::weak_ptr<const state>(st)] { return stats_of(w.lock()); });

    pipeline_config pc;
    pc.clock = deps.clock;
    pc.on_event = std::move(deps.on_event);
    pc.shadow = st->s.shadow_all;
    pc.near_limit_fraction = st->s.near_limit_fraction;
    if (!st->stores.windows && pc.on_event) {
        // Said once, here; every trace then shows the gate off.
        pc.on_event(gate_event{
            event_kind::gate_off,
            "backstop",
            "store_set.windows is null: running without the backstop",
            make_error_code(errc::store_unavailable)});
    }
    pipeline_builder b{std::move(pc)};
    // One ordered call when the chain writes where the three stores do (a replaced store falls back to one call per
    // gate).
    const auto& ls = st->stores;
    const bool chained = ls.limit_chain && ls.admissions && st->s.stateful == stateful_call::automatic &&
                         ls.limit_chain->answers_for(ls.windows.get(), *ls.rate_limits, *ls.admissions);
    if (chained) {
        st->chain_key = b.add_fact<std::shared_ptr<chain_slot>>(
            "stateful_call",
            [](const request&) -> asio::awaitable<result<std::shared_ptr<chain_slot>>> {
                co_return std::make_shared<chain_slot>();
            },
            [](const request&) -> std::optional<result<std::shared_ptr<chain_slot>>> {
                return std::make_shared<chain_slot>();
            }
        );
    }
    st->reads_usage =
        std::any_of(st->s.usage_limits.begin(), st->s.usage_limits.end(), [](std::uint64_t l) { return l != 0; });
    // The read-only lookups: one combined fact when the store set can answer them at once, else a subscription
    // fact, a usage fact and the ban and member lookups of their gates (all started when the run begins).
    const char* sub_fact_name = "subscription";
    const auto& fs = st->stores;
    if (fs.subject_facts && fs.subject_facts->answers_for(*fs.bans, *fs.subscriptions, *fs.usage, *fs.members)) {
        sub_fact_name = "subject_facts";
        st->reads_key = b.add_fact<read_facts>(sub_fact_name, [st](const request& r) {
            return load_read_facts(st, read_query(*st, r));
        });
    } else {
        st->sub_key = b.add_fact<sub_fact>(
            sub_fact_name,
            [st](const request& r) { return load_subscription(st, r.subject.user, r.subject.org); },
            [st](const request& r) -> std::optional<result<sub_fact>> {
                // At once when the store can (`subscription_store::try_find_highest_priority`).
                if (r.subject.user.empty() && r.subject.org.empty()) return sub_fact{};
                return st->stores.subscriptions->try_find_highest_priority(r.subject.user, r.subject.org);
            }
        );
    }
    if (st->reads_usage && !st->reads_key) {
        fact_try_loader<usage_fact> usage_now;
        if (st->mem_usage != nullptr) usage_now = [st](const request& r) { return load_usage_now(*st, r); };
        st->usage_key = b.add_fact<usage_fact>(
            "period_usage", [st](const request& r) { return load_usage(st, usage_subject(r)); }, std::move(usage_now)
        );
    }

    const std::vector<operation> exec_ops{operation::execute, operation::execute_with_pause};
    const auto& s = st->s;
    // Every built-in gate is added through here: its `<gate>.shadow` key applies.
    const auto add = [&b, &s](gate_spec g) {
        const auto* it = std::find(default_gate_names.begin(), default_gate_names.end(), g.name);
        if (it != default_gate_names.end())
            g.shadow = s.shadow[static_cast<std::size_t>(it - default_gate_names.begin())];
        b.add_gate(std::move(g));
    };

    gate_spec ban;
    ban.name = "ban";
    ban.operations = {operation::execute, operation::execute_with_pause, operation::read};
    ban.budget = s.ban_budget;
    ban.on_failure = policy(s.ban_fail_open);
    if (st->reads_key) ban.facts = {sub_fact_name};
    ban.check = [st](gate_context& c) { return ban_check(st, c); };
    ban.try_check = [st](gate_context& c) { return ban_try(*st, c); };
    add(std::move(ban));

    gate_spec usage;
    usage.name = "usage";
    usage.operations = exec_ops;
    usage.budget = s.usage_budget;
    usage.on_failure = policy(s.usage_fail_open);
    usage.facts = {sub_fact_name};
    if (st->usage_key) usage.facts.emplace_back("period_usage");
    usage.check = [st](gate_context& c) { return usage_check(st, c); };
    usage.try_check = [st](gate_context& c) { return usage_try(*st, c); };
    add(std::move(usage));

    gate_spec member_cap;
    member_cap.name = "member_cap";
    member_cap.operations = exec_ops;
    member_cap.budget = s.member_cap_budget;
    member_cap.on_failure = policy(s.member_cap_fail_open);
    if (st->reads_key) member_cap.facts = {sub_fact_name};
    member_cap.check = [st](gate_context& c) { return member_cap_check(st, c); };
    member_cap.try_check = [st](gate_context& c) { return member_cap_try(*st, c); };
    add(std::move(member_cap));

    if (with_balance) {
        gate_spec balance;
        balance.name = "balance";
        balance.operations = exec_ops;
        balance.budget = s.balance_budget;
        balance.on_failure = failure_policy::fail_open;
        balance.check = [st](gate_context& c) { return balance_check(st, c); };
        balance.try_check = [st](gate_context& c) { return balance_try(*st, c); };
        add(std::move(balance));
    }

    // Before the ordered call of the others (a separate call when a request carries a run id): a request over its
    // run's budget writes nothing else, and a later denial gives the run's call back.
    gate_spec run_budget;
    run_budget.name = "run_budget";
    run_budget.phase = phase::stateful;
    run_budget.operations = exec_ops;
    run_budget.budget = s.run_budget_budget;
    run_budget.on_failure = policy(s.run_budget_fail_open);
    if (!st->stores.run_budgets) {
        run_budget.off = "no run budget store (store_set.run_budgets is null)";
    } else {
        run_budget.check = [st](gate_context& c) { return run_budget_check(st, c); };
        if (st->mem_run_budgets != nullptr) {
            run_budget.try_check = [st](gate_context& c) { return run_budget_try(*st, c); };
        }
    }
    add(std::move(run_budget));

    gate_spec backstop;
    backstop.name = "backstop";
    backstop.phase = phase::stateful;
    backstop.operations = exec_ops;
    backstop.budget = s.backstop_budget;
    backstop.on_failure = failure_policy::fail_open;
    if (!st->stores.windows) {
        backstop.off = "no window store (store_set.windows is null)";
    } else if (chained) {
        backstop.check = [st](gate_context& c) { return backstop_chain_check(st, c); };
    } else {
        backstop.check = [st](gate_context& c) { return backstop_check(st, c); };
        if (st->mem_window != nullptr) backstop.try_check = [st](gate_context& c) { return backstop_try(*st, c); };
    }
    add(std::move(backstop));

    gate_spec rate;
    rate.name = "rate_limit";
    rate.phase = phase::stateful;
    rate.operations = {operation::execute, operation::execute_with_pause, operation::read};
    if (!s.cancel_exempt) rate.operations.push_back(operation::cancel);
    rate.budget = s.rate_limit_budget;
    rate.on_failure = failure_policy::fail_open;
    rate.facts = {sub_fact_name};
    if (chained) {
        rate.check = [st](gate_context& c) { return rate_limit_chain_check(st, c); };
    } else {
        rate.check = [st](gate_context& c) { return rate_limit_check(st, c); };
        if (st->mem_rate != nullptr) rate.try_check = [st](gate_context& c) { return rate_limit_try(*st, c); };
    }
    add(std::move(rate));

    gate_spec admission;
    admission.name = "admission";
    admission.phase = phase::commit;
    admission.operations = exec_ops;
    admission.budget = s.admission_budget;
    admission.on_failure = policy(s.admission_fail_open);
    if (!s.admission_enabled) {
        admission.off = "admission.enabled is false";
    } else if (chained) {
        admission.check = [st](gate_context& c) { return admission_chain_check(st, c); };
    } else {
        admission.check = [st](gate_context& c) { return admission_check(st, c); };
        if (st->mem_admission != nullptr) {
            admission.try_check = [st](gate_context& c) { return admission_try(*st, c); };
        }
    }
    add(std::move(admission));

    return b.build();
}

}  // namespace preflight::gates
