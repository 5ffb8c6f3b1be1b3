// W2 — read-phase latency vs sequential (../../shared/BENCHMARKS.md). Four read-only gates whose checks wait on
// Asio timers of 1, 2, 3 and 4 ms (all pass), then one stateful gate with no wait. Concurrency 1, 200 decisions
// (after 10 warm-up decisions). Reports p50/p99 of the whole decision beside the same four waits awaited one after
// another (the sequential sum, 10 ms, measured here too) and the maximum single wait (4 ms).
// One JSON object per case on stdout.
//
// Usage: bench_e2e_w2 [--ops N] [--warmup N]
#include "workload.hpp"
#include <preflight/gates/pipeline.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace g = preflight::gates;
using preflight::result;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::array<int, 4> waits_ms{1, 2, 3, 4};

asio::awaitable<void> wait_ms(int ms) {
    asio::steady_timer t{co_await asio::this_coro::executor, std::chrono::milliseconds(ms)};
    co_await t.async_wait(asio::use_awaitable);
}

g::pipeline build_pipeline() {
    g::pipeline_builder b;
    for (const int ms : waits_ms) {
        g::gate_spec spec;
        spec.name = "wait_" + std::to_string(ms) + "ms";
        spec.budget = std::chrono::milliseconds(1000);
        spec.check = [ms](g::gate_context&) -> asio::awaitable<result<g::verdict>> {
            co_await wait_ms(ms);
            co_return g::verdict::pass();
        };
        b.add_gate(std::move(spec));
    }
    g::gate_spec stateful;
    stateful.name = "stateful";
    stateful.phase = g::phase::stateful;
    stateful.check = [](g::gate_context&) -> asio::awaitable<result<g::verdict>> { co_return g::verdict::pass(); };
    b.add_gate(std::move(stateful));
    return b.build();
}

struct run_result {
    std::vector<double> lat_us;
    double wall_s = 0;
    std::uint64_t not_allowed = 0;
};

asio::awaitable<run_result> run_pipeline(const g::pipeline& p, int warmup, int ops) {
    run_result res;
    res.lat_us.reserve(static_cast<std::size_t>(ops));
    for (int i = 0; i < warmup; ++i) {
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = "org_0";
        r.subject.user = "user_0";
        auto d = co_await p.run(std::move(r));
        if (!d.allowed) ++res.not_allowed;
    }
    const auto start = steady::now();
    for (int i = 0; i < ops; ++i) {
        const auto j = preflight::bench::key_index(static_cast<std::uint64_t>(i), 10000);
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = "org_" + std::to_string(j);
        r.subject.user = "user_" + std::to_string(j);
        const auto t0 = steady::now();
        auto d = co_await p.run(std::move(r));
        const auto t1 = steady::now();
        if (!d.allowed) ++res.not_allowed;
        res.lat_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    res.wall_s = std::chrono::duration<double>(steady::now() - start).count();
    co_return res;
}

asio::awaitable<run_result> run_sequential(int warmup, int ops) {
    run_result res;
    res.lat_us.reserve(static_cast<std::size_t>(ops));
    for (int i = 0; i < warmup; ++i) {
        for (const int ms : waits_ms) co_await wait_ms(ms);
    }
    const auto start = steady::now();
    for (int i = 0; i < ops; ++i) {
        const auto t0 = steady::now();
        for (const int ms : waits_ms) co_await wait_ms(ms);
        const auto t1 = steady::now();
        res.lat_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    res.wall_s = std::chrono::duration<double>(steady::now() - start).count();
    co_return res;
}

void print(const char* name, const char* mode, int ops, run_result& r) {
    const double p50 = preflight::bench::percentile(r.lat_us, 50);
    const double p90 = preflight::bench::percentile(r.lat_us, 90);
    const double p99 = preflight::bench::percentile(r.lat_us, 99);
    const double mx = r.lat_us.empty() ? 0 : r.lat_us.back();
    std::printf(
        "{\"workload\":\"W2\",\"name\":\"%s\",\"mode\":\"%s\",\"concurrency\":1,\"client_threads\":1,"
        "\"waits_ms\":[1,2,3,4],\"ops\":%d,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
        "\"max_us\":%.1f,\"sequential_sum_us\":10000,\"max_wait_us\":4000,\"not_allowed\":%llu}\n",
        name,
        mode,
        ops,
        static_cast<double>(r.lat_us.size()) / r.wall_s,
        p50,
        p90,
        p99,
        mx,
        static_cast<unsigned long long>(r.not_allowed)
    );
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    int ops = 200;
    int warmup = 10;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (std::strcmp(argv[a], "--ops") == 0) {
            ops = std::atoi(argv[a + 1]);
        } else if (std::strcmp(argv[a], "--warmup") == 0) {
            warmup = std::atoi(argv[a + 1]);
        } else {
            std::fprintf(stderr, "usage: %s [--ops N] [--warmup N]\n", argv[0]);
            return 2;
        }
    }
    if (ops <= 0) {
        std::fprintf(stderr, "--ops must be > 0\n");
        return 2;
    }
    const auto p = build_pipeline();
    asio::io_context io{1};  // one client thread
    auto fut_p = asio::co_spawn(io, run_pipeline(p, warmup, ops), asio::use_future);
    io.run();
    auto rp = fut_p.get();
    io.restart();
    auto fut_s = asio::co_spawn(io, run_sequential(warmup, ops), asio::use_future);
    io.run();
    auto rs = fut_s.get();
    print("W2_pipeline_c1", "pipeline", ops, rp);
    print("W2_sequential_c1", "sequential", ops, rs);
    if (rp.not_allowed != 0) {
        std::fprintf(stderr, "BUG: %llu decisions not allowed\n", static_cast<unsigned long long>(rp.not_allowed));
        return 1;
    }
    return 0;
}
