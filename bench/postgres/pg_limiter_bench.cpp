// W5 — Postgres limiter consume (BENCHMARKS.md): pg_rate_limit_store::acquire with an effectively infinite limit,
// so every consume is allowed and runs exactly one statement. Cases hot_1 (key "hot") and distinct_10k (keys
// "k<j>", j = (i * 7919) mod 10000) at concurrency 1, 16 and 64, closed loop. Before each case the table is
// cleared and warmed up (hot: 1,000 consumes; 10k: one consume per key); then 20,000 measured consumes, capped at
// 7 s. One JSON object per case on stdout.
//
//   bench_pg_limiter [--url URL] [--pool N] [--depth N] [--ops N] [--cap-s S] [--case hot_1|distinct_10k|all]
//                    [--concurrency 1,16,64]
//   (URL defaults to $PREFLIGHT_BENCH_PG_URL, then $PREFLIGHT_TEST_PG_URL)
#include "workload.hpp"
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

struct options {
    std::string url;
    std::size_t pool = 2;
    std::size_t depth = 32;
    std::uint64_t ops = 20000;
    double cap_s = 7.0;
    std::string cases = "all";
    std::vector<int> concurrency{1, 16, 64};
};

struct phase_result {
    std::uint64_t done = 0;
    std::uint64_t denied = 0;
    std::uint64_t errors = 0;
    double wall_s = 0;
    std::vector<double> lat_us;
};

std::string key_for(bool hot, std::uint64_t i) {
    if (hot) return "hot";
    return "k" + std::to_string(preflight::bench::key_index(i, 10000));
}

// Closed loop: `concurrency` workers share the operation counter; each runs operation i and waits for it.
phase_result run_phase(
    asio::io_context& io,
    preflight::clients::pg_rate_limit_store& store,
    bool hot,
    int concurrency,
    std::uint64_t ops,
    double cap_s,
    bool record
) {
    const preflight::limits::bucket_limit infinite{1e9, 1e9};
    phase_result res;
    if (record) res.lat_us.reserve(ops);
    std::uint64_t next = 0;
    int live = concurrency;
    const auto start = clock_type::now();
    const auto cap = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(cap_s));
    for (int w = 0; w < concurrency; ++w) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (;;) {
                    if (next >= ops || clock_type::now() >= cap) break;
                    const auto i = next++;
                    const auto t0 = clock_type::now();
                    auto r = co_await store.acquire(key_for(hot, i), infinite, 1);
                    const auto t1 = clock_type::now();
                    ++res.done;
                    if (!r) {
                        ++res.errors;
                    } else if (!r->allowed) {
                        ++res.denied;
                    }
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
}

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
        if (k == "--url")
            o.url = v;
        else if (k == "--pool")
            o.pool = std::stoul(v);
        else if (k == "--depth")
            o.depth = std::stoul(v);
        else if (k == "--ops")
            o.ops = std::stoull(v);
        else if (k == "--cap-s")
            o.cap_s = std::stod(v);
        else if (k == "--case")
            o.cases = v;
        else if (k == "--concurrency")
            o.concurrency = preflight::bench::parse_int_list(v);
        else {
            std::cerr << "unknown option " << k << "\n";
            return 2;
        }
    }
    if (o.url.empty()) {
        std::cerr << "bench_pg_limiter: no Postgres URL (--url, PREFLIGHT_BENCH_PG_URL or PREFLIGHT_TEST_PG_URL)\n";
        return 2;
    }
    std::string diag;
    if (!preflight::clients::migrate(o.url, &diag)) {
        std::cerr << "migrate failed: " << diag << "\n";
        return 1;
    }
    pqxx::connection admin{o.url};

    asio::io_context io;  // one client thread
    preflight::clients::pool_params p;
    p.url = o.url;
    p.size = o.pool;
    p.max_in_flight = o.depth;
    preflight::clients::pg_pool pool{io.get_executor(), p};
    preflight::clients::pg_rate_limit_store store{pool};
    {
        auto fut = asio::co_spawn(io, pool.connect_all(), asio::use_future);
        io.run_one();
        while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
        if (!fut.get()) {
            std::cerr << "cannot connect\n";
            return 1;
        }
    }

    int failures = 0;
    for (const bool hot : {true, false}) {
        if (o.cases != "all" && o.cases != (hot ? "hot_1" : "distinct_10k")) continue;
        for (const int c : o.concurrency) {
            {
                pqxx::nontransaction tx{admin};
                tx.exec("TRUNCATE preflight_rate_limits");
            }
            run_phase(io, store, hot, c, hot ? 1000 : 10000, 60.0, false);  // warm-up
            const auto s0 = pool.stats();
            auto r = run_phase(io, store, hot, c, o.ops, o.cap_s, true);
            const auto s1 = pool.stats();
            const double n = static_cast<double>(r.done);
            const double p50 = preflight::bench::percentile(r.lat_us, 50);
            const double p90 = preflight::bench::percentile(r.lat_us, 90);
            const double p99 = preflight::bench::percentile(r.lat_us, 99);
            const double mx = r.lat_us.empty() ? 0 : r.lat_us.back();
            std::printf(
                "{\"name\":\"W5_%s_c%d\",\"workload\":\"W5\",\"case\":\"%s\",\"concurrency\":%d,\"pool_size\":%zu,"
                "\"pipeline_depth\":%zu,\"client_threads\":1,\"ops\":%llu,\"ops_per_s\":%.0f,\"p50_us\":%.1f,"
                "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"statements_per_op\":%.3f,"
                "\"round_trips_per_op\":%.3f,\"denied\":%llu,\"errors\":%llu}\n",
                hot ? "hot_1" : "distinct_10k",
                c,
                hot ? "hot_1" : "distinct_10k",
                c,
                o.pool,
                o.depth,
                static_cast<unsigned long long>(r.done),
                n / r.wall_s,
                p50,
                p90,
                p99,
                mx,
                static_cast<double>(s1.statements - s0.statements) / n,
                static_cast<double>(s1.syncs - s0.syncs) / n,
                static_cast<unsigned long long>(r.denied),
                static_cast<unsigned long long>(r.errors)
            );
            std::fflush(stdout);
            if (r.errors != 0 || r.denied != 0) ++failures;
        }
    }
    return failures == 0 ? 0 : 1;
}
