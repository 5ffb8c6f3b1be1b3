// W4 — caches (../shared/BENCHMARKS.md): TTL LRU, capacity 1000, absolute TTL 5 min, filled with
// key:0..key:999 before each round; operation i uses key index (i * 7919) mod 1000.
//   get_hit_small  5,000,000 shared reads (shared_ptr<const V>) of a small value
//   get_clone        150,000 clone-on-read deep copies of the ~1,045-byte deployed-state document
//   set_evict      3,000,000 inserts of never-present keys new:<n> (200,000 strings, cycled), each evicting
// Extras: get_hit_visit (in-place read, no reference count), set_evict_new_value (allocates each value).
// 1 thread, and 2 threads as an extra; 1 warm-up + 3 measured rounds, median round; one JSON object per
// case on stdout.
//
// Usage: bench_cache [--threads=1,2] [--cases=get_hit_small,get_clone,...] [--scale=1.0]
#include <preflight/cache/deployed_state_cache.hpp>
#include <preflight/cache/fingerprint.hpp>
#include <preflight/cache/ttl_lru_cache.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>
#include <workload.hpp>

namespace {

namespace json = boost::json;
using bench_clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t capacity = 1000;
constexpr std::uint64_t chunk = 1024;        // operations taken from the shared counter at once
constexpr std::uint64_t latency_every = 16;  // one operation in 16 is timed individually

struct small_value {
    std::int64_t id;
    std::string org_id;
    std::string plan;
    bool active;
    std::int64_t limit;
};

json::value deployed_state(std::uint64_t j) {
    const auto js = std::to_string(j);
    const std::int64_t created = 1700000000000 + static_cast<std::int64_t>(j);
    return json::object{
        {"deploymentId", "dep_" + js},
        {"orgId", "org_" + std::to_string(j % 100)},
        {"projectId", "proj_" + js},
        {"commitSha", preflight::cache::sha256_hex("commit:" + js).substr(0, 40)},
        {"version", j},
        {"status", "active"},
        {"createdAt", created},
        {"updatedAt", created + 1000},
        {"region", "eu-west-1"},
        {"replicas", 3},
        {"paused", false},
        {"config",
         json::object{
             {"runtime", "node20"},
             {"memoryMb", 512},
             {"cpu", 1},
             {"timeoutMs", 30000},
             {"entrypoint", "dist/index.js"},
             {"env",
              json::object{
                  {"NODE_ENV", "production"},
                  {"LOG_LEVEL", "info"},
                  {"FEATURE_X", "on"},
                  {"FEATURE_Y", "off"},
                  {"MAX_CONNECTIONS", "100"},
              }},
             {"scaling", json::object{{"min", 1}, {"max", 10}, {"targetCpuPct", 70}, {"cooldownS", 60}}},
         }},
        {"limits",
         json::object{
             {"requestsPerMin", 600},
             {"burst", 100},
             {"concurrency", 32},
             {"bandwidthMb", 1024},
             {"quotas", json::object{{"builds", 100}, {"deploys", 50}, {"storageGb", 10}, {"seats", 5}}},
         }},
        {"routing",
         json::object{
             {"domain", "app" + js + ".example.com"},
             {"tls", true},
             {"http2", true},
             {"headers",
              json::object{
                  {"x-frame-options", "DENY"},
                  {"x-content-type-options", "nosniff"},
                  {"cache-control", "no-store"},
              }},
             {"healthCheck",
              json::object{
                  {"path", "/healthz"},
                  {"intervalS", 10},
                  {"timeoutS", 2},
                  {"healthyThreshold", 2},
                  {"unhealthyThreshold", 3},
              }},
         }},
        {"tags", json::array{"prod", "web", "tier-1"}},
        {"owner", json::object{{"userId", "user_" + js}, {"email", "owner" + js + "@example.com"}, {"role", "admin"}}},
    };
}

std::size_t count_leaves(const json::value& v) {
    if (v.is_object()) {
        std::size_t n = 0;
        for (const auto& kv : v.as_object()) n += count_leaves(kv.value());
        return n;
    }
    if (v.is_array()) {
        std::size_t n = 0;
        for (const auto& e : v.as_array()) n += count_leaves(e);
        return n;
    }
    return 1;
}

struct round_result {
    double seconds = 0;
    std::uint64_t ops = 0;
    std::vector<double> latencies_us;
    double ops_per_s() const { return static_cast<double>(ops) / seconds; }
};

/// Runs `ops` operations on `threads` workers sharing one counter (taken in chunks). `op(i)` runs
/// operation i and returns a value folded into a sink so that nothing is optimised away.
round_result run_round(std::uint64_t ops, unsigned threads, const std::function<std::uint64_t(std::uint64_t)>& op_fn) {
    std::atomic<std::uint64_t> next{0};
    std::atomic<std::uint64_t> sink{0};
    std::vector<std::vector<double>> lat(threads);
    auto worker = [&](unsigned t) {
        auto& my = lat[t];
        my.reserve(ops / latency_every / threads + 1024);
        std::uint64_t local = 0;
        for (;;) {
            const std::uint64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
            if (begin >= ops) break;
            const std::uint64_t end = std::min(ops, begin + chunk);
            for (std::uint64_t i = begin; i < end; ++i) {
                if (i % latency_every == 0) {
                    const auto t0 = bench_clock::now();
                    local += op_fn(i);
                    const auto t1 = bench_clock::now();
                    my.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                } else {
                    local += op_fn(i);
                }
            }
        }
        sink.fetch_add(local, std::memory_order_relaxed);
    };
    const auto start = bench_clock::now();
    if (threads == 1) {
        worker(0);
    } else {
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker, t);
        for (auto& th : pool) th.join();
    }
    const auto stop = bench_clock::now();
    round_result r;
    r.seconds = std::chrono::duration<double>(stop - start).count();
    r.ops = ops;
    for (auto& v : lat) r.latencies_us.insert(r.latencies_us.end(), v.begin(), v.end());
    if (sink.load() == 0xdeadbeef) std::puts("");  // keeps the sink alive
    return r;
}

struct case_spec {
    std::string name;
    std::uint64_t ops;
    std::function<void()> before_round;  // refill
    std::function<std::uint64_t(std::uint64_t)> op;
    std::string extra_json;  // extra parameters
};

void run_case(const case_spec& c, unsigned threads) {
    std::vector<round_result> rounds;
    for (int r = 0; r < 4; ++r) {  // round 0 is the warm-up
        c.before_round();
        auto res = run_round(c.ops, threads, c.op);
        if (r > 0) rounds.push_back(std::move(res));
    }
    std::vector<std::size_t> order{0, 1, 2};
    std::sort(order.begin(), order.end(), [&](auto a, auto b) {
        return rounds[a].ops_per_s() < rounds[b].ops_per_s();
    });
    auto& med = rounds[order[1]];
    auto& lat = med.latencies_us;
    const double p50 = preflight::bench::percentile(lat, 50);
    const double p90 = preflight::bench::percentile(lat, 90);
    const double p99 = preflight::bench::percentile(lat, 99);
    const double mx = lat.empty() ? 0 : lat.back();
    std::printf(
        "{\"workload\":\"W4\",\"name\":\"%s\",\"threads\":%u,\"capacity\":%zu,\"ttl_s\":300,\"ttl_mode\":\"absolute\","
        "\"ops\":%llu,\"ops_per_s\":%.0f,\"ns_per_op\":%.1f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
        "\"max_us\":%.3f,\"rounds_ops_per_s\":[%.0f,%.0f,%.0f],\"round\":\"median of 3 after 1 warm-up\","
        "\"latency_sample\":\"1 op in %llu timed alone, includes clock overhead\"%s}\n",
        c.name.c_str(),
        threads,
        capacity,
        static_cast<unsigned long long>(c.ops),
        med.ops_per_s(),
        1e9 / med.ops_per_s(),
        p50,
        p90,
        p99,
        mx,
        rounds[0].ops_per_s(),
        rounds[1].ops_per_s(),
        rounds[2].ops_per_s(),
        static_cast<unsigned long long>(latency_every),
        c.extra_json.c_str()
    );
    std::fflush(stdout);
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        const auto comma = s.find(',', pos);
        out.push_back(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<unsigned> thread_counts{1, 2};
    std::vector<std::string> cases{
        "get_hit_small", "get_hit_visit", "get_clone", "get_clone_caller_arena", "set_evict", "set_evict_new_value"};
    double scale = 1.0;
    for (int a = 1; a < argc; ++a) {
        const std::string arg = argv[a];
        if (arg.rfind("--threads=", 0) == 0) {
            thread_counts.clear();
            for (const auto& t : split(arg.substr(10))) thread_counts.push_back(static_cast<unsigned>(std::stoul(t)));
        } else if (arg.rfind("--cases=", 0) == 0) {
            cases = split(arg.substr(8));
        } else if (arg.rfind("--scale=", 0) == 0) {
            scale = std::stod(arg.substr(8));
        } else {
            std::fprintf(stderr, "usage: %s [--threads=1,2] [--cases=a,b] [--scale=1.0]\n", argv[0]);
            return 2;
        }
    }
    auto scaled = [&](std::uint64_t n) { return static_cast<std::uint64_t>(static_cast<double>(n) * scale); };

    std::vector<std::string> keys;
    for (std::size_t j = 0; j < capacity; ++j) keys.push_back("key:" + std::to_string(j));
    std::vector<std::string> new_keys;
    for (std::size_t n = 0; n < 200000; ++n) new_keys.push_back("new:" + std::to_string(n));
    auto key_of = [&](std::uint64_t i) -> std::string_view { return keys[preflight::bench::key_index(i, capacity)]; };

    preflight::cache::ttl_lru_params params;
    params.capacity = capacity;
    params.ttl = 5min;
    params.mode = preflight::cache::ttl_mode::absolute;
    const std::string shards_json = ",\"shards\":" + std::to_string(params.shards);

    using small_cache = preflight::cache::ttl_lru_cache<std::string, small_value>;
    std::vector<std::shared_ptr<const small_value>> small_values;
    for (std::size_t j = 0; j < capacity; ++j) {
        small_values.push_back(std::make_shared<const small_value>(small_value{
            static_cast<std::int64_t>(j), "org_" + std::to_string(j), "pro", true, 1000}));
    }

    std::vector<json::value> docs;
    for (std::size_t j = 0; j < capacity; ++j) docs.push_back(deployed_state(j));
    const auto doc_bytes_0 = json::serialize(docs[0]).size();
    const auto doc_bytes_999 = json::serialize(docs[999]).size();
    const auto doc_leaves = count_leaves(docs[0]);

    for (const auto& name : cases) {
        for (unsigned threads : thread_counts) {
            if (name == "get_hit_small" || name == "get_hit_visit") {
                small_cache cache(params);
                case_spec c;
                c.name = name;
                c.ops = scaled(5000000);
                c.before_round = [&] {
                    for (std::size_t j = 0; j < capacity; ++j) cache.put(keys[j], small_values[j]);
                };
                if (name == "get_hit_small") {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        auto v = cache.get(key_of(i));
                        return v ? static_cast<std::uint64_t>(v->id) + 1 : 0;
                    };
                    c.extra_json = shards_json + ",\"read\":\"get() -> shared_ptr<const V>\"";
                } else {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        std::uint64_t out = 0;
                        cache.visit(key_of(i), [&](const small_value& v) {
                            out = static_cast<std::uint64_t>(v.id) + 1;
                        });
                        return out;
                    };
                    c.extra_json = shards_json + ",\"read\":\"visit(f), no reference count\"";
                }
                run_case(c, threads);
                const auto st = cache.stats();
                if (st.misses != 0)
                    std::fprintf(
                        stderr,
                        "%s: unexpected misses: %llu\n",
                        name.c_str(),
                        static_cast<unsigned long long>(st.misses)
                    );
            } else if (name == "get_clone" || name == "get_clone_caller_arena") {
                preflight::cache::deployed_state_cache_params dp;
                dp.capacity = capacity;
                dp.ttl = 5min;
                preflight::cache::deployed_state_cache cache(dp);
                case_spec c;
                c.name = name;
                c.ops = scaled(150000);
                c.before_round = [&] {
                    for (std::size_t j = 0; j < capacity; ++j) cache.put(keys[j], docs[j]);
                };
                if (name == "get_clone") {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        auto v = cache.get(key_of(i));  // an independent boost::json::value, default resource
                        return v ? v->as_object().size() : 0;
                    };
                } else {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        alignas(16) unsigned char buffer[8192];
                        json::monotonic_resource arena(buffer, sizeof buffer);
                        auto v = cache.get(key_of(i), &arena);  // independent, in a caller-owned arena
                        return v ? v->as_object().size() : 0;
                    };
                }
                c.extra_json =
                    shards_json + ",\"document_bytes\":[" + std::to_string(doc_bytes_0) + "," +
                    std::to_string(doc_bytes_999) + "],\"document_leaves\":" + std::to_string(doc_leaves) +
                    (name == "get_clone"
                         ? ",\"clone\":\"boost::json::value copy, default resource, destroyed in the op\""
                         : ",\"clone\":\"copy into a caller-owned monotonic_resource on an 8 KiB stack buffer\"");
                run_case(c, threads);
                if (cache.stats().misses != 0) std::fprintf(stderr, "get_clone: unexpected misses\n");
            } else if (name == "set_evict" || name == "set_evict_new_value") {
                small_cache cache(params);
                const auto shared_value = small_values[0];
                case_spec c;
                c.name = name;
                c.ops = scaled(3000000);
                c.before_round = [&] {
                    cache.clear();
                    for (std::size_t j = 0; j < capacity; ++j) cache.put(keys[j], small_values[j]);
                };
                if (name == "set_evict") {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        cache.put(new_keys[i % new_keys.size()], shared_value);
                        return 1;
                    };
                    c.extra_json = shards_json + ",\"value\":\"one shared_ptr<const V> inserted under each key\"";
                } else {
                    c.op = [&](std::uint64_t i) -> std::uint64_t {
                        cache.put(
                            new_keys[i % new_keys.size()],
                            small_value{static_cast<std::int64_t>(i), "org_1", "pro", true, 1000}
                        );
                        return 1;
                    };
                    c.extra_json = shards_json + ",\"value\":\"a new small value allocated per insert\"";
                }
                run_case(c, threads);
                if (cache.size() > capacity) std::fprintf(stderr, "%s: capacity exceeded\n", name.c_str());
            } else {
                std::fprintf(stderr, "unknown case %s\n", name.c_str());
                return 2;
            }
        }
    }
    return 0;
}
