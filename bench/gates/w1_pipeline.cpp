// W1 — pipeline overhead (in-memory), ../../shared/BENCHMARKS.md: six gates, all passing:
// 4 read-only (ban, usage, org member, balance: each a hash lookup), one subscription fact shared by usage and
// balance, 1 stateful (limits::memory_rate_limit_store consume, effectively infinite limit), 1 commit
// (limits::memory_admission_store slot reserve + release).
// Closed loop: N workers share one operation counter; operation i uses key j = (i * 7919) mod 10000.
// 1 and 2 threads; 1,000,000 decisions per round; 1 warm-up + 3 measured rounds; the median round is reported.
//
// Usage: bench_gates_w1 [decisions_per_round] [--plain-executor] [--default-pipeline]
//   --default-pipeline: also runs the library's default pipeline (gates/builtin) on the in-memory store set.
//   --plain-executor: workers run on the io_context's executor instead of a strand, so every run makes its own
//   strand (the path of callers that are not on a strand).
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/gates/pipeline.hpp>
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unlimited_config.hpp>
#include <unordered_map>
#include <vector>
#include <workload.hpp>

namespace asio = boost::asio;
namespace g = preflight::gates;
namespace limits = preflight::limits;
using preflight::result;

namespace {

constexpr std::size_t n_keys = 10000;
/// An effectively infinite limit: every consume is allowed.
constexpr limits::bucket_limit infinite_bucket{1e12, 1e15};

struct subscription {
    std::string plan;
    bool active = true;
};

struct world {
    std::unordered_map<std::string, bool> bans;            // user -> banned
    std::unordered_map<std::string, long> usage;           // org -> requests this month
    std::unordered_map<std::string, std::string> members;  // org -> member user
    std::unordered_map<std::string, long> balance;         // org -> balance
    std::unordered_map<std::string, subscription> subs;    // org -> subscription
    // The real in-memory limit stores (limits/), used through their synchronous fast paths like the default
    // pipeline does.
    limits::memory_rate_limit_store bucket;
    limits::memory_admission_store slots;
    std::vector<g::request> requests;  // by key index
};

g::denial deny(int status, const char* code) {
    return g::denial{status, code, code, std::nullopt, std::nullopt};
}

/// Gate bodies are synchronous (in-memory stores): each gate exposes them as `try_check` (the fast path) and,
/// wrapped in a coroutine, as `check`.
using sync_check = std::function<result<g::verdict>(g::gate_context&)>;

void set_checks(g::gate_spec& spec, sync_check body) {
    spec.try_check = [body](g::gate_context& c) -> std::optional<result<g::verdict>> { return body(c); };
    spec.check = [body](g::gate_context& c) -> asio::awaitable<result<g::verdict>> { co_return body(c); };
}

g::pipeline build_pipeline(world& w) {
    g::pipeline_builder b;
    auto lookup_sub = [&w](const g::request& r) -> result<subscription> {
        auto it = w.subs.find(r.subject.org);
        if (it == w.subs.end()) return make_error_code(preflight::errc::not_found);
        return it->second;
    };
    auto sub = b.add_fact<subscription>(
        "subscription",
        [lookup_sub](const g::request& r) -> asio::awaitable<result<subscription>> { co_return lookup_sub(r); },
        [lookup_sub](const g::request& r) -> std::optional<result<subscription>> { return lookup_sub(r); }
    );
    g::gate_spec ban;
    ban.name = "ban";
    set_checks(ban, [&w](g::gate_context& c) -> result<g::verdict> {
        auto it = w.bans.find(c.req().subject.user);
        return (it != w.bans.end() && it->second) ? g::verdict::deny(deny(403, "banned")) : g::verdict::pass();
    });
    g::gate_spec usage;
    usage.name = "usage";
    usage.facts = {"subscription"};
    usage.try_check = [&w, sub](g::gate_context& c) -> std::optional<result<g::verdict>> {
        const subscription* s = c.try_fact(sub);
        if (s == nullptr) return std::nullopt;
        auto it = w.usage.find(c.req().subject.org);
        const long limit = s->plan == "free" ? 1'000'000'000L : 1'000'000'000'000L;
        return (it == w.usage.end() || it->second < limit) ? g::verdict::pass() : g::verdict::deny(deny(402, "usage"));
    };
    usage.check = [&w, sub](g::gate_context& c) -> asio::awaitable<result<g::verdict>> {
        const subscription& s = co_await c.fact(sub);
        auto it = w.usage.find(c.req().subject.org);
        const long limit = s.plan == "free" ? 1'000'000'000L : 1'000'000'000'000L;
        co_return (it == w.usage.end() || it->second < limit) ? g::verdict::pass()
                                                              : g::verdict::deny(deny(402, "usage"));
    };
    g::gate_spec member;
    member.name = "org_member";
    set_checks(member, [&w](g::gate_context& c) -> result<g::verdict> {
        auto it = w.members.find(c.req().subject.org);
        return (it != w.members.end() && it->second == c.req().subject.user)
                   ? g::verdict::pass()
                   : g::verdict::deny(deny(403, "not_member"));
    });
    g::gate_spec balance;
    balance.name = "balance";
    balance.facts = {"subscription"};
    balance.on_failure = g::failure_policy::fail_open;
    balance.try_check = [&w, sub](g::gate_context& c) -> std::optional<result<g::verdict>> {
        const subscription* s = c.try_fact(sub);
        if (s == nullptr) return std::nullopt;
        auto it = w.balance.find(c.req().subject.org);
        return (s->active && it != w.balance.end() && it->second > 0) ? g::verdict::pass()
                                                                      : g::verdict::deny(deny(402, "balance"));
    };
    balance.check = [&w, sub](g::gate_context& c) -> asio::awaitable<result<g::verdict>> {
        const subscription& s = co_await c.fact(sub);
        auto it = w.balance.find(c.req().subject.org);
        co_return (s.active && it != w.balance.end() && it->second > 0) ? g::verdict::pass()
                                                                        : g::verdict::deny(deny(402, "balance"));
    };
    g::gate_spec rate;
    rate.name = "org_rate";
    rate.phase = g::phase::stateful;
    set_checks(rate, [&w](g::gate_context& c) -> result<g::verdict> {
        auto r = w.bucket.try_acquire(c.req().subject.org, infinite_bucket, 1);
        if (!r) return r.error();
        if (!r->allowed) return g::verdict::deny(deny(429, "rate_limited"));
        return g::verdict::pass_with_undo([&w, org = c.req().subject.org]() -> asio::awaitable<result<void>> {
            co_return w.bucket.refund_now(org, infinite_bucket, 1);
        });
    });
    g::gate_spec admission;
    admission.name = "admission";
    admission.phase = g::phase::commit;
    set_checks(admission, [&w](g::gate_context& c) -> result<g::verdict> {
        auto grant = w.slots.reserve_now(c.req().subject.org, 1'000'000, std::chrono::minutes{5});
        if (!grant) return grant.error();
        if (!grant->admitted) return g::verdict::deny(deny(429, "concurrency"));
        std::string id = grant->lease_id;  // one copy for the release function, the grant's own for the lease
        return g::verdict::pass_with_lease(
            std::move(grant->lease_id),
            [&w, id = std::move(id)]() -> asio::awaitable<result<void>> {
                (void)w.slots.release_now(id);
                co_return result<void>{};
            }
        );
    });
    return b.add_gate(ban).add_gate(usage).add_gate(member).add_gate(balance).add_gate(rate).add_gate(admission).build(
    );
}

void fill(world& w) {
    for (std::size_t j = 0; j < n_keys; ++j) {
        const auto org = "org_" + std::to_string(j);
        const auto user = "user_" + std::to_string(j);
        w.bans.emplace("user_" + std::to_string(10000 + j), true);
        w.usage.emplace(org, static_cast<long>(j) * 10);
        w.members.emplace(org, user);
        w.balance.emplace(org, 1000);
        static const char* plans[] = {"free", "pro", "team", "enterprise"};
        w.subs.emplace(org, subscription{plans[j % 4], true});
        (void)w.bucket.try_acquire(org, infinite_bucket, 0);  // keys pre-created
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = org;
        r.subject.user = user;
        w.requests.push_back(std::move(r));
    }
}

asio::awaitable<void> worker(
    const g::pipeline& p,
    const std::vector<g::request>& requests,
    std::atomic<std::uint64_t>& next,
    std::uint64_t end,
    std::atomic<std::uint64_t>& bad
) {
    for (;;) {
        const auto i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= end) break;
        g::request r = requests[preflight::bench::key_index(i, n_keys)];
        auto d = co_await p.run(std::move(r));
        if (!d.allowed) bad.fetch_add(1, std::memory_order_relaxed);
        auto released = co_await d.lease.release();
        if (!released) bad.fetch_add(1, std::memory_order_relaxed);
    }
}

double run_round(
    const g::pipeline& p,
    const std::vector<g::request>& w,
    unsigned threads,
    std::uint64_t ops,
    bool plain,
    std::uint64_t& bad_out
) {
    asio::io_context ctx(static_cast<int>(threads));
    std::atomic<std::uint64_t> next{0};
    std::atomic<std::uint64_t> bad{0};
    for (unsigned t = 0; t < threads; ++t) {
        if (plain) {
            asio::co_spawn(ctx, worker(p, w, next, ops, bad), asio::detached);
        } else {
            asio::co_spawn(asio::make_strand(ctx), worker(p, w, next, ops, bad), asio::detached);
        }
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back([&] { ctx.run(); });
    ctx.run();
    for (auto& th : pool) th.join();
    const auto t1 = std::chrono::steady_clock::now();
    bad_out += bad.load();
    return std::chrono::duration<double>(t1 - t0).count();
}

/// The library's default pipeline (gates/builtin) on the in-memory store set, every limit effectively infinite:
/// the same W1 shape (4 read-only gates on hash lookups, one subscription fact, stateful backstop + rate limit,
/// admission commit with lease), through the real gate code and the store interfaces.
struct default_world {
    preflight::clients::memory_fact_stores facts;
    std::vector<g::request> requests;
    std::optional<g::pipeline> pipeline;
};

void fill_default(default_world& w) {
    namespace json = boost::json;
    const auto period = g::usage_period_start(std::chrono::system_clock::now());
    json::array subs, usage, members, balances, bans;
    static const char* plans[] = {"free", "pro", "team", "enterprise"};
    for (std::size_t j = 0; j < n_keys; ++j) {
        const auto org = "org_" + std::to_string(j);
        const auto user = "user_" + std::to_string(j);
        bans.push_back(json::object{{"subject_id", "user_" + std::to_string(10000 + j)}, {"reason", "bench"}});
        subs.push_back(json::object{{"owner_id", org}, {"plan", plans[j % 4]}, {"status", "active"}, {"seats", 5}});
        usage.push_back(json::object{
            {"subject_id", org},
            {"period_start", period},
            {"requests", static_cast<std::int64_t>(j) * 10},
            {"tokens", 0}});
        members.push_back(json::object{{"org_id", org}, {"user_id", user}, {"role", "member"}});
        balances.push_back(json::object{{"org_id", org}, {"remaining", 1000}});
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = org;
        r.subject.user = user;
        w.requests.push_back(std::move(r));
    }
    json::object doc{
        {"bans", bans}, {"subscriptions", subs}, {"usage", usage}, {"members", members}, {"balances", balances}};
    preflight::clients::load_fact_data(doc, w.facts);

    const auto cfg = preflight::bench::unlimited_default_pipeline_config();
    g::default_pipeline_deps deps;
    deps.stores = preflight::clients::make_memory_store_set(w.facts, preflight::clock::steady());
    w.pipeline.emplace(g::default_pipeline(cfg, std::move(deps)));
}

/// Prints one JSON object per case (the format of scripts/bench.sh: workload, name with the thread count,
/// ops_per_s). Returns false when a decision was not allowed or a lease not released (a bug).
bool report(
    const char* name,
    unsigned threads,
    bool plain,
    int gates,
    std::uint64_t ops,
    std::vector<double> secs,
    std::uint64_t bad
) {
    std::sort(secs.begin(), secs.end());
    const double median = secs[1];
    std::printf(
        "{\"workload\":\"W1\",\"name\":\"%s_t%u\",\"threads\":%u,\"caller\":\"%s\",\"gates\":%d,\"facts\":1,"
        "\"ops\":%llu,\"rounds\":3,\"median_round_s\":%.4f,\"ns_per_decision\":%.1f,\"decisions_per_s\":%.0f,"
        "\"ops_per_s\":%.0f,\"best_ns_per_decision\":%.1f,\"not_allowed\":%llu}\n",
        name,
        threads,
        threads,
        plain ? "plain_executor" : "strand",
        gates,
        static_cast<unsigned long long>(ops),
        median,
        median * 1e9 / static_cast<double>(ops),
        static_cast<double>(ops) / median,
        static_cast<double>(ops) / median,
        secs[0] * 1e9 / static_cast<double>(ops),
        static_cast<unsigned long long>(bad)
    );
    std::fflush(stdout);
    if (bad != 0) {
        std::fprintf(stderr, "BUG: %llu decisions not allowed or not released\n", static_cast<unsigned long long>(bad));
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t ops = 1'000'000;
    bool plain = false;
    bool with_default = false;
    for (int a = 1; a < argc; ++a) {
        if (std::strcmp(argv[a], "--plain-executor") == 0) {
            plain = true;
        } else if (std::strcmp(argv[a], "--default-pipeline") == 0) {
            with_default = true;
        } else {
            ops = std::stoull(argv[a]);
        }
    }
    world w;
    fill(w);
    auto p = build_pipeline(w);
    for (unsigned threads : {1U, 2U}) {
        std::uint64_t bad = 0;
        (void)run_round(p, w.requests, threads, ops, plain, bad);  // warm-up
        std::vector<double> secs;
        for (int r = 0; r < 3; ++r) secs.push_back(run_round(p, w.requests, threads, ops, plain, bad));
        if (!report("W1_pipeline_overhead", threads, plain, 6, ops, secs, bad)) return 1;
    }
    if (with_default) {
        default_world dw;
        fill_default(dw);
        for (unsigned threads : {1U, 2U}) {
            std::uint64_t bad = 0;
            (void)run_round(*dw.pipeline, dw.requests, threads, ops, plain, bad);  // warm-up
            std::vector<double> secs;
            for (int r = 0; r < 3; ++r) secs.push_back(run_round(*dw.pipeline, dw.requests, threads, ops, plain, bad));
            if (!report("W1_default_pipeline", threads, plain, 7, ops, secs, bad)) return 1;
        }
    }
    return 0;
}
