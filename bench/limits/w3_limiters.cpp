// W3 of ../shared/BENCHMARKS.md: in-process limiters. `token_bucket_limiter::try_acquire` and
// `fixed_window_counter::consume`, limits effectively infinite (every call allowed), keys pre-created.
// Cases hot_1 and distinct_10k x 1 and 2 threads; 1,000,000 operations per round, 1 warm-up + 3 measured rounds,
// median round. One JSON object per case on stdout.
//
// Closed loop: the workers share one operation counter; to keep the counter itself from dominating a ~20 ns
// operation, a worker takes 1024 indices at a time. Latency percentiles are over the mean per-operation time of
// each 1024-operation block (timing every single call would cost more than the call).
//
// Clocks: "steady" is preflight::clock::steady() (CLOCK_MONOTONIC); "coarse" is limits::coarse_steady_clock()
// (CLOCK_MONOTONIC_COARSE, a few ns per read). Both run by default.
//
// Usage: bench_limits_w3 [--ops N] [--rounds N] [--clock steady|coarse|both] [--case SUBSTRING]

#include "workload.hpp"
#include <preflight/limits/coarse_clock.hpp>
#include <preflight/limits/fixed_window.hpp>
#include <preflight/limits/token_bucket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
using preflight::limits::operation_class;

constexpr std::uint64_t block = 1024;

struct round_result {
    double seconds = 0;
    std::uint64_t denied = 0;
    std::vector<double> block_ns;  // mean ns per op of each block
};

template <class Op>
round_result run_round(std::uint64_t ops, int threads, Op op) {
    std::atomic<std::uint64_t> next{0};
    std::atomic<std::uint64_t> denied{0};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(threads));
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            auto& my = lat[static_cast<std::size_t>(t)];
            my.reserve(ops / block + 1);
            std::uint64_t my_denied = 0;
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) {
            }
            for (;;) {
                const std::uint64_t begin = next.fetch_add(block, std::memory_order_relaxed);
                if (begin >= ops) break;
                const std::uint64_t end = std::min(ops, begin + block);
                const auto t0 = steady::now();
                for (std::uint64_t i = begin; i < end; ++i) {
                    if (!op(i)) ++my_denied;
                }
                const auto t1 = steady::now();
                my.push_back(
                    static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) /
                    static_cast<double>(end - begin)
                );
            }
            denied.fetch_add(my_denied);
        });
    }
    while (ready.load() != threads) {
    }
    const auto start = steady::now();
    go.store(true, std::memory_order_release);
    for (auto& w : workers) w.join();
    const auto stop = steady::now();
    round_result r;
    r.seconds = std::chrono::duration<double>(stop - start).count();
    r.denied = denied.load();
    for (auto& v : lat) r.block_ns.insert(r.block_ns.end(), v.begin(), v.end());
    return r;
}

struct options {
    std::uint64_t ops = 1'000'000;
    int rounds = 3;
    std::string filter;
    std::string clock = "both";  // steady | coarse | both
};

template <class Op>
void run_case(
    const options& o,
    const char* clock_name,
    const char* limiter,
    const char* keys,
    int threads,
    std::uint64_t key_count,
    Op op
) {
    std::string name = limiter;
    name.append("/").append(keys).append("/t").append(std::to_string(threads)).append("/").append(clock_name);
    if (!o.filter.empty() && name.find(o.filter) == std::string::npos) return;
    (void)run_round(o.ops, threads, op);  // warm-up
    std::vector<round_result> rounds;
    for (int i = 0; i < o.rounds; ++i) rounds.push_back(run_round(o.ops, threads, op));
    std::vector<double> rates;
    std::uint64_t denied = 0;
    for (const auto& r : rounds) {
        rates.push_back(static_cast<double>(o.ops) / r.seconds);
        denied += r.denied;
    }
    std::vector<double> sorted = rates;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    // Latency of the median round.
    std::size_t median_idx = 0;
    for (std::size_t i = 0; i < rates.size(); ++i) {
        if (rates[i] == median) median_idx = i;
    }
    auto lat = rounds[median_idx].block_ns;
    const double p50 = preflight::bench::percentile(lat, 50) / 1000.0;
    const double p90 = preflight::bench::percentile(lat, 90) / 1000.0;
    const double p99 = preflight::bench::percentile(lat, 99) / 1000.0;
    const double mx = lat.empty() ? 0 : lat.back() / 1000.0;
    std::printf(
        "{\"workload\":\"W3\",\"name\":\"%s\",\"limiter\":\"%s\",\"keys\":\"%s\",\"key_count\":%llu,"
        "\"threads\":%d,\"ops\":%llu,\"rounds\":%d,\"ops_per_s\":%.0f,\"ns_per_op\":%.2f,"
        "\"round_ops_per_s\":[",
        name.c_str(),
        limiter,
        keys,
        static_cast<unsigned long long>(key_count),
        threads,
        static_cast<unsigned long long>(o.ops),
        o.rounds,
        median,
        1e9 / median
    );
    for (std::size_t i = 0; i < rates.size(); ++i) std::printf("%s%.0f", i ? "," : "", rates[i]);
    std::printf(
        "],\"p50_us\":%.4f,\"p90_us\":%.4f,\"p99_us\":%.4f,\"max_us\":%.4f,"
        "\"latency_basis\":\"mean per op of each %llu-op block\",\"denied\":%llu,\"clock\":\"%s\"}\n",
        p50,
        p90,
        p99,
        mx,
        static_cast<unsigned long long>(block),
        static_cast<unsigned long long>(denied),
        clock_name
    );
    std::fflush(stdout);
    if (denied != 0) {
        std::fprintf(stderr, "BUG: %s denied %llu operations\n", name.c_str(), static_cast<unsigned long long>(denied));
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--ops" && i + 1 < argc) {
            o.ops = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--rounds" && i + 1 < argc) {
            o.rounds = std::atoi(argv[++i]);
        } else if (a == "--clock" && i + 1 < argc) {
            o.clock = argv[++i];
        } else if (a == "--case" && i + 1 < argc) {
            o.filter = argv[++i];
        } else {
            std::fprintf(
                stderr, "usage: %s [--ops N] [--rounds N] [--clock steady|coarse|both] [--case SUBSTRING]\n", argv[0]
            );
            return 2;
        }
    }

    std::vector<std::string> keys;
    for (int j = 0; j < 10'000; ++j) {
        std::string k = "k";
        k.append(std::to_string(j));
        keys.push_back(std::move(k));
    }
    const std::string hot = "hot";

    // Effectively infinite: 1e9 tokens/s (T = 1 ns), burst 1e9.
    preflight::limits::token_bucket_params tp;
    tp.read = {1e9, 1e9};
    tp.write = {1e9, 1e9};
    tp.max_keys = 1'000'000;
    const preflight::limits::window_limit wl{std::uint64_t{1} << 62, std::chrono::seconds{3600}};

    struct named_clock {
        const char* name;
        const preflight::clock* c;
    };
    std::vector<named_clock> clocks;
    if (o.clock == "steady" || o.clock == "both") clocks.push_back({"steady", &preflight::clock::steady()});
    if (o.clock == "coarse" || o.clock == "both") {
        clocks.push_back({"coarse", &preflight::limits::coarse_steady_clock()});
    }
    for (const auto& [clock_name, clock_ptr] : clocks) {
        const preflight::clock& clk = *clock_ptr;
        for (int threads : {1, 2}) {
            {
                preflight::limits::token_bucket_limiter lim{clk, tp};
                (void)lim.try_acquire(hot, operation_class::write);
                run_case(o, clock_name, "token_bucket", "hot_1", threads, 1, [&](std::uint64_t) {
                    return lim.try_acquire(hot, operation_class::write).allowed;
                });
            }
            {
                preflight::limits::token_bucket_limiter lim{clk, tp};
                for (const auto& k : keys) (void)lim.try_acquire(k, operation_class::write);
                run_case(o, clock_name, "token_bucket", "distinct_10k", threads, 10'000, [&](std::uint64_t i) {
                    return lim.try_acquire(keys[preflight::bench::key_index(i, 10'000)], operation_class::write)
                        .allowed;
                });
            }
            {
                preflight::limits::fixed_window_counter fw{clk, {.max_keys = 1'000'000}};
                (void)fw.consume(hot, wl);
                run_case(o, clock_name, "fixed_window", "hot_1", threads, 1, [&](std::uint64_t) {
                    return fw.consume(hot, wl).allowed;
                });
            }
            {
                preflight::limits::fixed_window_counter fw{clk, {.max_keys = 1'000'000}};
                for (const auto& k : keys) (void)fw.consume(k, wl);
                run_case(o, clock_name, "fixed_window", "distinct_10k", threads, 10'000, [&](std::uint64_t i) {
                    return fw.consume(keys[preflight::bench::key_index(i, 10'000)], wl).allowed;
                });
            }
        }
    }
    return 0;
}
