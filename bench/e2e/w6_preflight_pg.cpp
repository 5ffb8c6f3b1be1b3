// W6 — full preflight on Postgres (../../shared/BENCHMARKS.md). Schema and data in the library's tables
// (sql/*.sql), recreated at start (10,000 rows each, then VACUUM ANALYZE). Preflight i is for org_<j> and user_<j>,
// j = (i * 7919) mod 10000: ban check, subscription, usage for the current month, membership, then the rate-limit
// consume (limit effectively infinite), then one admission row inserted. Every preflight must be admitted; any
// other outcome is a bug and fails the run.
//
// Modes:
//   sequential  a hand-written libpqxx baseline: six prepared statements one after another, each autocommitted,
//               one connection per worker thread (closed loop, one worker = one thread = one connection).
//   preflight   the library's default pipeline on its Postgres store set, configured so that every preflight is
//               admitted (limits effectively infinite) while every check still runs: usage allowances are huge but
//               finite, so the usage row is read as in the baseline. The workload has no billing provider, so the
//               balance gate is off unless --balance 1 (then it reads preflight_balances: one more statement, each
//               org being new within a case). The backstop window (a default gate, not in the workload) stays.
//               Latency is taken up to the decision. Leases: like the baseline's admission rows, they stay until the
//               measured phase ends and are then released, untimed (--release background releases each one right
//               after its decision, in the background: one more statement per preflight inside the measurement).
//               It compiles only when
//               <preflight/gates/builtin/default_pipeline.hpp> and <preflight/clients/pg_store_set.hpp> exist;
//               otherwise it prints a "not_run" object.
// Concurrency 1 and 32; 500 warm-up preflights, then 4,000 measured, capped at 8 s. One JSON object per case.
//
// Statements and round trips are counted, not assumed: at the client (every statement executed) and at the
// server (pg_stat_database.xact_commit delta of the case: each autocommitted statement is one transaction).
// Sequential round trips of the preflight mode come from the pool's statement hook: after each case, 100 probe
// preflights run one at a time and the longest chain of statements each sent after the previous one completed
// is averaged (the lease release excluded). W6_TRACE=1 prints the timeline of every 20th probe to stderr: "+d@t:name" a
// statement of depth d sent at t µs after the run began, "-d@t:name" one completed, "end@t" the decision.
//
//   bench_e2e_w6 [--url URL] [--mode sequential|preflight|all] [--concurrency 1,32] [--ops N] [--warmup N]
//                [--cap-s S] [--pool N] [--coalesce 0|1] [--coalesce-max N] [--cork 0|1] [--stateful-call
//                auto|separate]
//                [--balance 0|1] [--release held|background] [--batch-writes 0|1]
//                [--gather-reads 0|1] [--batch-in-flight N] [--batch-max N]   (clients::pg_store_options)
//   (URL defaults to $PREFLIGHT_BENCH_PG_URL, then $PREFLIGHT_TEST_PG_URL)
#include "workload.hpp"
#include <preflight/clients/migrations.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if __has_include(<preflight/gates/builtin/default_pipeline.hpp>) && __has_include(<preflight/clients/pg_store_set.hpp>)
#define PREFLIGHT_W6_HAS_PIPELINE 1
#include "unlimited_config.hpp"
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_store_set.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <type_traits>
#include <unordered_map>
#else
#define PREFLIGHT_W6_HAS_PIPELINE 0
#endif

namespace {

using clock_type = std::chrono::steady_clock;
constexpr int n_rows = 10000;

struct options {
    std::string url;
    std::string mode = "all";
    std::vector<int> concurrency{1, 32};
    std::uint64_t ops = 4000;
    std::uint64_t warmup = 500;
    double cap_s = 8.0;
    std::size_t pool = 8;
    bool coalesce = preflight::clients::pool_params{}.coalesce;
    bool cork = false;  // pool_params default
    std::size_t coalesce_max = preflight::clients::pool_params{}.coalesce_max;
    std::string stateful_call = "auto";
    bool batch_writes = preflight::clients::pg_store_options{}.batch_limit_writes;
    bool gather_reads = preflight::clients::pg_store_options{}.gather_reads;
    preflight::clients::pg_gather_options batch;  // --batch-in-flight, --batch-max
    bool balance = false;          // the workload has no billing provider; --balance 1 adds the balance gate
    std::string release = "held";  // held: leases released after the measured phase; background: at once
};

std::string org_of(std::uint64_t i) {
    return "org_" + std::to_string(preflight::bench::key_index(i, n_rows));
}
std::string user_of(std::uint64_t i) {
    return "user_" + std::to_string(preflight::bench::key_index(i, n_rows));
}

// ---------------------------------------------------------------------------------------------------------------
// Data load: the one place that knows how W6's data maps onto the library's tables (sql/001_limits.sql,
// sql/002_facts.sql). Adapt here when the fact tables change.
//   bans            subject_id user_10000..user_19999 (user_0..user_9999 are never banned)
//   subscriptions   subject_id org_0..org_9999, plan free/pro/team/enterprise by g%4, status active
//   usage           one row per org for the current month, requests g*10
//   org_members     (org_g, user_g)
//   balances        org_g with a large balance (read by the library's balance gate when it is configured)
//   rate limits     one row per org key pre-created (tat 0: full bucket) so every consume updates
//   admissions      preflight_leases emptied before each case (see clear_admissions)
// ---------------------------------------------------------------------------------------------------------------
void load_w6_data(pqxx::connection& c) {
    pqxx::nontransaction tx{c};
    tx.exec(
        "TRUNCATE preflight_bans, preflight_subscriptions, preflight_usage, preflight_org_members, "
        "preflight_balances, preflight_rate_limits, preflight_leases"
    );
    tx.exec(
        "INSERT INTO preflight_bans (subject_id, reason, created_at, expires_at) "
        "SELECT 'user_' || (10000 + g), 'abuse', now(), NULL FROM generate_series(0, 9999) g"
    );
    tx.exec(
        "INSERT INTO preflight_subscriptions (owner_id, plan, status, seats, current_period_end) "
        "SELECT 'org_' || g, (ARRAY['free','pro','team','enterprise'])[g % 4 + 1], 'active', 5, "
        "now() + interval '30 days' FROM generate_series(0, 9999) g"
    );
    tx.exec(
        "INSERT INTO preflight_usage (subject_id, period_start, requests, tokens) "
        "SELECT 'org_' || g, date_trunc('month', now())::date, g * 10, 0 FROM generate_series(0, 9999) g"
    );
    tx.exec(
        "INSERT INTO preflight_org_members (org_id, user_id, role) "
        "SELECT 'org_' || g, 'user_' || g, 'member' FROM generate_series(0, 9999) g"
    );
    tx.exec(
        "INSERT INTO preflight_balances (org_id, remaining) "
        "SELECT 'org_' || g, 1000000000000 FROM generate_series(0, 9999) g"
    );
    tx.exec("INSERT INTO preflight_rate_limits (key, tat) SELECT 'org_' || g, 0 FROM generate_series(0, 9999) g");
    tx.exec(
        "VACUUM ANALYZE preflight_bans, preflight_subscriptions, preflight_usage, preflight_org_members, "
        "preflight_balances, preflight_rate_limits, preflight_leases"
    );
}

void clear_admissions(pqxx::connection& c) {
    pqxx::nontransaction tx{c};
    tx.exec("TRUNCATE preflight_leases");
}

/// Committed transactions of the current database so far, as the cumulative statistics report them, read on a
/// persistent connection `stats`. A backend's statistics reach the shared view when it exits (or, when idle, at
/// most once a second); callers close their worker connections first, and this polls until two reads 200 ms apart
/// agree (at most 3 s). The reads themselves may add a transaction or two to a later reading.
std::uint64_t committed_xacts(pqxx::connection& stats) {
    std::uint64_t last = ~std::uint64_t{0};
    for (int attempt = 0; attempt < 15; ++attempt) {
        pqxx::nontransaction tx{stats};
        const auto v = tx.exec("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0][0]
                           .as<std::uint64_t>();
        if (v == last) return v;
        last = v;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return last;
}

struct phase_result {
    std::uint64_t done = 0;
    std::uint64_t not_admitted = 0;
    std::uint64_t errors = 0;
    std::uint64_t statements = 0;
    double wall_s = 0;
    std::vector<double> lat_us;
    std::string first_error;
};

void print_case(
    const char* mode,
    int concurrency,
    const options& o,
    phase_result& r,
    const char* extra_json,
    double stmts_per_op,
    double rtts_per_op,
    double server_xacts_per_op
) {
    const double n = static_cast<double>(r.lat_us.size());
    const double p50 = preflight::bench::percentile(r.lat_us, 50);
    const double p90 = preflight::bench::percentile(r.lat_us, 90);
    const double p99 = preflight::bench::percentile(r.lat_us, 99);
    const double mx = r.lat_us.empty() ? 0 : r.lat_us.back();
    std::printf(
        "{\"workload\":\"W6\",\"name\":\"W6_%s_c%d\",\"mode\":\"%s\",\"concurrency\":%d,\"warmup\":%llu,"
        "\"ops_target\":%llu,\"cap_s\":%.1f,\"ops\":%llu,\"wall_s\":%.3f,\"ops_per_s\":%.1f,\"p50_us\":%.1f,"
        "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"statements_per_op\":%.3f,"
        "\"round_trips_per_op\":%.3f,\"server_xacts_per_op\":%.3f,\"not_admitted\":%llu,\"errors\":%llu%s}\n",
        mode,
        concurrency,
        mode,
        concurrency,
        static_cast<unsigned long long>(o.warmup),
        static_cast<unsigned long long>(o.ops),
        o.cap_s,
        static_cast<unsigned long long>(r.lat_us.size()),
        r.wall_s,
        n / r.wall_s,
        p50,
        p90,
        p99,
        mx,
        stmts_per_op,
        rtts_per_op,
        server_xacts_per_op,
        static_cast<unsigned long long>(r.not_admitted),
        static_cast<unsigned long long>(r.errors),
        extra_json
    );
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------------------------
// sequential: the hand-written baseline.
// ---------------------------------------------------------------------------------------------------------------

constexpr int sequential_statements = 6;

std::unique_ptr<pqxx::connection> open_baseline_connection(const std::string& url) {
    auto c = std::make_unique<pqxx::connection>(url);
    c->prepare(
        "w6_ban",
        "SELECT 1 FROM preflight_bans WHERE subject_id = $1 AND (expires_at IS NULL OR expires_at > now()) LIMIT 1"
    );
    c->prepare(
        "w6_subscription",
        "SELECT plan, status, seats, current_period_end FROM preflight_subscriptions WHERE owner_id = $1"
    );
    c->prepare(
        "w6_usage",
        "SELECT requests, tokens FROM preflight_usage WHERE subject_id = $1 "
        "AND period_start = date_trunc('month', now())::date"
    );
    c->prepare("w6_member", "SELECT role FROM preflight_org_members WHERE org_id = $1 AND user_id = $2");
    // The library's GCRA consume (clients/src/pg_rate_limit_store.cpp): $1 key, $2 emission interval T (µs),
    // $3 tolerance tau (µs), $4 quantity.
    c->prepare(
        "w6_consume",
        "WITH p AS (SELECT extract(epoch FROM clock_timestamp())::float8 * 1e6 AS now),"
        " up AS ("
        "  INSERT INTO preflight_rate_limits AS r (key, tat)"
        "  SELECT $1::text, p.now + $4::float8 * $2::float8 FROM p WHERE $4::float8 * $2::float8 <= $3::float8"
        "  ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat)"
        "  WHERE greatest(r.tat + $4::float8 * $2::float8, EXCLUDED.tat)"
        "        <= EXCLUDED.tat - $4::float8 * $2::float8 + $3::float8"
        "  RETURNING r.tat)"
        " SELECT (SELECT tat FROM up) IS NOT NULL FROM p"
    );
    c->prepare(
        "w6_admit",
        "INSERT INTO preflight_leases (lease_id, key, expires_at) "
        "VALUES (gen_random_uuid(), $1, clock_timestamp() + interval '60 seconds')"
    );
    for (const char* name : {"w6_ban", "w6_subscription", "w6_usage", "w6_member", "w6_consume", "w6_admit"}) {
        c->prepare_now(name);  // prepared before the first run, not inside it
    }
    return c;
}

/// One preflight, one statement after another. Returns whether it was admitted; counts statements executed.
bool sequential_preflight(pqxx::connection& c, std::uint64_t i, std::uint64_t& statements) {
    const std::string org = org_of(i);
    const std::string user = user_of(i);
    pqxx::nontransaction tx{c};
    ++statements;
    if (!tx.exec_prepared("w6_ban", user).empty()) return false;
    ++statements;
    const auto sub = tx.exec_prepared("w6_subscription", org);
    if (sub.size() != 1 || sub[0][1].as<std::string>() != "active") return false;
    ++statements;
    const auto usage = tx.exec_prepared("w6_usage", org);
    if (usage.size() != 1 || usage[0][0].as<long long>() >= 1'000'000'000LL) return false;
    ++statements;
    if (tx.exec_prepared("w6_member", org, user).size() != 1) return false;
    ++statements;
    // Effectively infinite: 1e9 tokens/s (T = 0.001 µs), tolerance 1e15 µs.
    const auto rl = tx.exec_prepared("w6_consume", org, 0.001, 1e15, 1.0);
    if (rl.size() != 1 || !rl[0][0].as<bool>()) return false;
    ++statements;
    const auto admit = tx.exec_prepared("w6_admit", org);
    return admit.affected_rows() == 1;
}

phase_result run_sequential_phase(
    std::vector<std::unique_ptr<pqxx::connection>>& conns,
    std::uint64_t first,
    std::uint64_t count,
    double cap_s,
    bool record
) {
    phase_result res;
    std::atomic<std::uint64_t> next{first};
    const std::uint64_t end = first + count;
    std::vector<phase_result> per(conns.size());
    std::atomic<bool> go{false};
    std::vector<std::thread> workers;
    const auto cap_duration = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(cap_s));
    clock_type::time_point start;
    std::atomic<std::size_t> ready{0};
    for (std::size_t w = 0; w < conns.size(); ++w) {
        workers.emplace_back([&, w] {
            auto& my = per[w];
            if (record) my.lat_us.reserve(count / conns.size() + 1);
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            const auto cap = start + cap_duration;
            for (;;) {
                if (clock_type::now() >= cap) break;
                const auto i = next.fetch_add(1);
                if (i >= end) break;
                const auto t0 = clock_type::now();
                try {
                    if (!sequential_preflight(*conns[w], i, my.statements)) ++my.not_admitted;
                } catch (const std::exception& e) {
                    ++my.errors;
                    if (my.first_error.empty()) my.first_error = e.what();
                }
                const auto t1 = clock_type::now();
                ++my.done;
                if (record) my.lat_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            }
        });
    }
    while (ready.load() != conns.size()) std::this_thread::yield();
    start = clock_type::now();
    go.store(true, std::memory_order_release);
    for (auto& t : workers) t.join();
    res.wall_s = std::chrono::duration<double>(clock_type::now() - start).count();
    for (auto& p : per) {
        res.done += p.done;
        res.not_admitted += p.not_admitted;
        res.errors += p.errors;
        res.statements += p.statements;
        res.lat_us.insert(res.lat_us.end(), p.lat_us.begin(), p.lat_us.end());
        if (res.first_error.empty()) res.first_error = p.first_error;
    }
    return res;
}

bool run_sequential_case(const options& o, pqxx::connection& admin, pqxx::connection& stats, int concurrency) {
    clear_admissions(admin);
    std::vector<std::unique_ptr<pqxx::connection>> conns;
    for (int w = 0; w < concurrency; ++w) conns.push_back(open_baseline_connection(o.url));
    const auto x0 = committed_xacts(stats);
    auto warm = run_sequential_phase(conns, 0, o.warmup, 60.0, false);
    auto r = run_sequential_phase(conns, o.warmup, o.ops, o.cap_s, true);
    conns.clear();  // the backends exit and flush their statistics
    const auto x1 = committed_xacts(stats);
    const double n = static_cast<double>(r.done);
    const double all = static_cast<double>(r.done + warm.done);
    // The connections' PREPAREs (6 each, made before x0) reach the statistics only when the backends exit.
    const double setup = static_cast<double>(concurrency) * sequential_statements;
    const double server = all > 0 ? (static_cast<double>(x1 - x0) - setup) / all : 0;
    char extra[160];
    std::snprintf(
        extra,
        sizeof extra,
        ",\"client_threads\":%d,\"connections\":%d,\"statements_counted_by\":\"client+pg_stat_database\"",
        concurrency,
        concurrency
    );
    const double stmts = n > 0 ? static_cast<double>(r.statements) / n : 0;
    print_case("sequential", concurrency, o, r, extra, stmts, stmts, server);
    const bool ok = r.errors == 0 && r.not_admitted == 0 && warm.errors == 0 && warm.not_admitted == 0;
    if (!ok) {
        std::cerr << "W6 sequential c" << concurrency << ": " << (r.not_admitted + warm.not_admitted)
                  << " not admitted, " << (r.errors + warm.errors)
                  << " errors; first error: " << (warm.first_error.empty() ? r.first_error : warm.first_error) << "\n";
    }
    return ok;
}

// ---------------------------------------------------------------------------------------------------------------
// preflight: the library's default pipeline on the Postgres store set (lights up once both headers exist).
// ---------------------------------------------------------------------------------------------------------------
#if PREFLIGHT_W6_HAS_PIPELINE
namespace asio = boost::asio;

/// The default pipeline's configuration for W6: every limit effectively infinite (every preflight is admitted) and
/// usage allowances huge but finite (so the usage gate reads the usage row, as the workload says).
preflight::config w6_config(const options& o) {
    boost::json::object overrides;
    for (const char* tier : {"free", "pro", "team", "enterprise"}) {
        overrides[std::string("usage.limits.") + tier] = std::int64_t{1} << 60;
    }
    overrides["pipeline.stateful_call"] = o.stateful_call;
    overrides["balance.enabled"] = o.balance;
    return preflight::bench::unlimited_default_pipeline_config(overrides);
}

preflight::gates::pipeline make_default_pipeline(const options& o, std::shared_ptr<preflight::clients::pg_pool> pool) {
    preflight::gates::default_pipeline_deps deps;
    preflight::clients::pg_store_options so;
    so.batch_limit_writes = o.batch_writes;
    so.gather_reads = o.gather_reads;
    so.gather = o.batch;
    deps.stores = preflight::clients::make_pg_store_set(std::move(pool), so);
    return preflight::gates::default_pipeline(w6_config(o), std::move(deps));
}

/// Sequential round trips of one preflight from the pool's statement events (see the header comment).
struct roundtrip_probe {
    bool on = false;
    bool trace = std::getenv("W6_TRACE") != nullptr;
    std::unordered_map<std::uint64_t, int> depth;  // statement id -> chain depth
    int max_done = 0;
    int max_sent = 0;
    void reset() {
        depth.clear();
        max_done = 0;
        max_sent = 0;
    }
    struct mark {
        int depth;  // +depth sent / -depth completed
        clock_type::time_point at;
        std::string statement;
    };
    std::vector<mark> marks;
    void event(const preflight::clients::pg_statement_event& e) {
        if (!on) return;
        if (trace) {
            const int d = e.what == preflight::clients::pg_statement_event::kind::sent ? max_done + 1 : -depth[e.id];
            std::string name(e.statement);
            if (name.starts_with("preflight_")) name.erase(0, 10);
            marks.push_back(mark{d, clock_type::now(), std::move(name)});
        }
        if (e.what == preflight::clients::pg_statement_event::kind::sent) {
            depth[e.id] = max_done + 1;
            max_sent = std::max(max_sent, max_done + 1);
        } else if (auto it = depth.find(e.id); it != depth.end()) {
            max_done = std::max(max_done, it->second);
        }
    }
};

bool run_preflight_case(const options& o, pqxx::connection& admin, pqxx::connection& stats, int concurrency) {
    clear_admissions(admin);
    asio::io_context io{1};  // one client thread
    preflight::clients::pool_params pp;
    pp.url = o.url;
    pp.size = o.pool;
    pp.coalesce = o.coalesce;
    pp.coalesce_max = o.coalesce_max;
    pp.tcp_cork = o.cork;
    roundtrip_probe probe;
    pp.on_statement = [&probe](const preflight::clients::pg_statement_event& e) { probe.event(e); };
    auto pool = std::make_shared<preflight::clients::pg_pool>(io.get_executor(), pp);
    {
        auto fut = asio::co_spawn(io, pool->connect_all(), asio::use_future);
        while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
        if (!fut.get()) {
            std::cerr << "W6 preflight: cannot connect the pool\n";
            return false;
        }
    }
    const auto pipeline = make_default_pipeline(o, pool);
    std::vector<preflight::gates::lease> held;  // --release held: released after each phase, untimed
    auto release_held = [&] {
        std::size_t pending = held.size();
        for (auto& l : held) {
            asio::co_spawn(
                io,
                [&pending, &l]() -> asio::awaitable<void> {
                    (void)co_await l.release();
                    --pending;
                },
                asio::detached
            );
        }
        while (pending > 0 && io.run_one() > 0) {
        }
        held.clear();
    };
    auto phase = [&](std::uint64_t first, std::uint64_t count, double cap_s, bool record) {
        phase_result res;
        if (record) res.lat_us.reserve(count);
        std::uint64_t next = first;
        const std::uint64_t end = first + count;
        int live = concurrency;
        const auto start = clock_type::now();
        const auto cap = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(cap_s));
        for (int w = 0; w < concurrency; ++w) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    for (;;) {
                        if (next >= end || clock_type::now() >= cap) break;
                        const auto i = next++;
                        preflight::gates::request req;
                        req.op = preflight::gates::operation::execute;
                        req.subject.org = org_of(i);
                        req.subject.user = user_of(i);
                        const auto t0 = clock_type::now();
                        auto d = co_await pipeline.run(std::move(req));
                        const auto t1 = clock_type::now();
                        if (!d.allowed) {
                            ++res.not_admitted;
                            if (res.first_error.empty()) res.first_error = d.gate + ": " + d.message;
                        }
                        if (o.release == "held") {
                            held.push_back(std::move(d.lease));
                        } else {
                            d.lease.release_detached();
                        }
                        ++res.done;
                        if (record) res.lat_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                    }
                    --live;
                },
                asio::detached
            );
        }
        while (live > 0 && io.run_one() > 0) {
        }
        res.wall_s = std::chrono::duration<double>(clock_type::now() - start).count();
        return res;
    };
    const auto x0 = committed_xacts(stats);
    auto warm = phase(0, o.warmup, 60.0, false);
    release_held();
    const auto s0 = pool->stats();
    auto r = phase(o.warmup, o.ops, o.cap_s, true);
    const auto s1 = pool->stats();
    release_held();
    // Probe: sequential round trips per preflight, one preflight at a time.
    double probe_depth = 0;
    int probe_n = 0;
    for (std::uint64_t i = 0; i < 100; ++i) {
        preflight::gates::request req;
        req.op = preflight::gates::operation::execute;
        req.subject.org = org_of(o.warmup + o.ops + i);
        req.subject.user = user_of(o.warmup + o.ops + i);
        probe.reset();
        probe.marks.clear();
        probe.on = true;
        const auto pt0 = clock_type::now();
        auto fut = asio::co_spawn(io, pipeline.run(std::move(req)), asio::use_future);
        while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
        probe.on = false;
        if (probe.trace && i % 20 == 0) {
            std::fprintf(stderr, "probe %llu:", static_cast<unsigned long long>(i));
            for (const auto& m : probe.marks) {
                std::fprintf(
                    stderr,
                    " %+d@%.0f:%s",
                    m.depth,
                    std::chrono::duration<double, std::micro>(m.at - pt0).count(),
                    m.statement.c_str()
                );
            }
            std::fprintf(
                stderr, " end@%.0f\n", std::chrono::duration<double, std::micro>(clock_type::now() - pt0).count()
            );
        }
        auto d = fut.get();
        if (!d.allowed) ++r.not_admitted;
        probe_depth += probe.max_sent;
        ++probe_n;
        auto rel = asio::co_spawn(io, d.lease.release(), asio::use_future);
        while (rel.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
    }
    // Let the background releases finish.
    for (int k = 0; k < 200; ++k) io.poll();
    pool.reset();
    const auto x1 = committed_xacts(stats);
    const double n = static_cast<double>(r.done);
    const double all = static_cast<double>(r.done + warm.done);
    const double server = all > 0 ? static_cast<double>(x1 - x0) / all : 0;
    char extra[512];
    std::snprintf(
        extra,
        sizeof extra,
        ",\"client_threads\":1,\"connections\":%zu,\"coalesce\":%s,\"coalesce_max\":%zu,\"tcp_cork\":%s,"
        "\"stateful_call\":\"%s\",\"batch_writes\":%s,\"gather_reads\":%s,\"batch_in_flight\":%zu,\"batch_max\":%zu,"
        "\"statements_counted_by\":\"pool stats+pg_stat_database\",\"round_trips_counted_by\":\"statement hook, "
        "%d probe preflights at c=1\",\"balance_gate\":%s,\"lease_release\":\"%s\"",
        o.pool,
        o.coalesce ? "true" : "false",
        o.coalesce_max,
        o.cork ? "true" : "false",
        o.stateful_call.c_str(),
        o.batch_writes ? "true" : "false",
        o.gather_reads ? "true" : "false",
        o.batch.max_in_flight,
        o.batch.max_per_call,
        probe_n,
        o.balance ? "true" : "false",
        o.release == "held" ? "after the measured phase (untimed)" : "background, after each decision"
    );
    print_case(
        "preflight",
        concurrency,
        o,
        r,
        extra,
        n > 0 ? static_cast<double>(s1.statements - s0.statements) / n : 0,
        probe_n > 0 ? probe_depth / probe_n : 0,
        server
    );
    const bool ok = r.errors == 0 && r.not_admitted == 0 && warm.errors == 0 && warm.not_admitted == 0;
    if (!ok) {
        std::cerr << "W6 preflight c" << concurrency << ": " << (r.not_admitted + warm.not_admitted)
                  << " not admitted, " << (r.errors + warm.errors)
                  << " errors; first: " << (warm.first_error.empty() ? r.first_error : warm.first_error) << "\n";
    }
    return ok;
}
#else
bool run_preflight_case(const options&, pqxx::connection&, pqxx::connection&, int concurrency) {
    std::printf(
        "{\"workload\":\"W6\",\"name\":\"W6_preflight_c%d\",\"mode\":\"preflight\",\"concurrency\":%d,"
        "\"not_run\":\"the default pipeline and the Postgres store set are not in this build\"}\n",
        concurrency,
        concurrency
    );
    std::fflush(stdout);
    return true;
}
#endif

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (const char* u = std::getenv("PREFLIGHT_BENCH_PG_URL")) o.url = u;
    if (o.url.empty()) {
        if (const char* u = std::getenv("PREFLIGHT_TEST_PG_URL")) o.url = u;
    }
    for (int a = 1; a + 1 < argc; a += 2) {
        const std::string k = argv[a];
        const std::string v = argv[a + 1];
        if (k == "--url") {
            o.url = v;
        } else if (k == "--mode") {
            o.mode = v;
        } else if (k == "--concurrency") {
            o.concurrency = preflight::bench::parse_int_list(v);
        } else if (k == "--ops") {
            o.ops = std::stoull(v);
        } else if (k == "--warmup") {
            o.warmup = std::stoull(v);
        } else if (k == "--cap-s") {
            o.cap_s = std::stod(v);
        } else if (k == "--pool") {
            o.pool = std::stoul(v);
        } else if (k == "--coalesce") {
            o.coalesce = v != "0";
        } else if (k == "--cork") {
            o.cork = v != "0";
        } else if (k == "--coalesce-max") {
            o.coalesce_max = std::stoul(v);
        } else if (k == "--balance") {
            o.balance = v != "0";
        } else if (k == "--release") {
            o.release = v;
        } else if (k == "--stateful-call") {
            o.stateful_call = v;
        } else if (k == "--batch-writes") {
            o.batch_writes = v != "0";
        } else if (k == "--gather-reads") {
            o.gather_reads = v != "0";
        } else if (k == "--batch-in-flight") {
            o.batch.max_in_flight = std::stoul(v);
        } else if (k == "--batch-max") {
            o.batch.max_per_call = std::stoul(v);
        } else {
            std::cerr
                << "usage: " << argv[0]
                << " [--url URL] [--mode sequential|preflight|all] [--concurrency 1,32] [--ops N]"
                   " [--warmup N] [--cap-s S] [--pool N] [--coalesce 0|1] [--coalesce-max N] [--cork 0|1]"
                   " [--stateful-call auto|separate] [--balance 0|1] [--release held|background] [--batch-writes 0|1]"
                   " [--gather-reads 0|1] [--batch-in-flight N] [--batch-max N]\n";
            return 2;
        }
    }
    if (o.url.empty()) {
        std::cerr << "bench_e2e_w6: no Postgres URL (--url, PREFLIGHT_BENCH_PG_URL or PREFLIGHT_TEST_PG_URL)\n";
        return 2;
    }
    if (o.mode != "all" && o.mode != "sequential" && o.mode != "preflight") {
        std::cerr << "bench_e2e_w6: unknown mode " << o.mode << "\n";
        return 2;
    }
    std::string diag;
    if (!preflight::clients::migrate(o.url, &diag)) {
        std::cerr << "migrate failed: " << diag << "\n";
        return 1;
    }
    pqxx::connection admin{o.url};
    pqxx::connection stats{o.url};
    load_w6_data(admin);
    bool ok = true;
    for (const int c : o.concurrency) {
        if (o.mode == "all" || o.mode == "sequential") ok = run_sequential_case(o, admin, stats, c) && ok;
        if (o.mode == "all" || o.mode == "preflight") ok = run_preflight_case(o, admin, stats, c) && ok;
    }
    return ok ? 0 : 1;
}
