#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

// Several processes share one Postgres: the test binary forks itself (before it starts any thread), and the
// children report through an anonymous shared mapping.
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr int processes = 4;
constexpr int coroutines = 16;

struct shared_counters {
    std::atomic<long> admitted{0};
    std::atomic<long> errors{0};
    std::atomic<long> current{0};
    std::atomic<long> max_seen{0};
    std::atomic<long long> first_start_ns{std::numeric_limits<long long>::max()};
    std::atomic<long long> last_end_ns{0};
};

template <class T>
T* shared_map() {
    void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    return new (p) T{};
}

long long wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void store_min(std::atomic<long long>& a, long long v) {
    auto cur = a.load();
    while (v < cur && !a.compare_exchange_weak(cur, v)) {
    }
}
void store_max(std::atomic<long long>& a, long long v) {
    auto cur = a.load();
    while (v > cur && !a.compare_exchange_weak(cur, v)) {
    }
}

// Forks `n` children running `body(index)`; returns how many exited with status 0.
int run_children(int n, const std::function<int(int)>& body) {
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        const pid_t pid = fork();
        if (pid == 0) {
            int rc = 1;
            try {
                rc = body(i);
            } catch (...) {
                rc = 2;
            }
            _exit(rc);
        }
        pids.push_back(pid);
    }
    int ok = 0;
    for (auto pid : pids) {
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
    }
    return ok;
}

preflight::clients::pool_params child_pool(const std::string& url) {
    preflight::clients::pool_params p;
    p.url = url;
    p.size = 4;
    return p;
}

}  // namespace

TEST(pg_multiprocess, gcra_never_over_admits_across_processes) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    const auto key = preflight::conformance::unique_key("hot");
    const preflight::limits::bucket_limit limit{200, 20};  // T = 5 ms
    auto* sh = shared_map<shared_counters>();
    const int ok = run_children(processes, [&](int) {
        asio::io_context io;
        preflight::clients::pg_pool pool{io.get_executor(), child_pool(url)};
        preflight::clients::pg_rate_limit_store store{pool};
        if (!preflight::conformance::run(io, pool.connect_all())) return 3;
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        int live = coroutines;
        for (int c = 0; c < coroutines; ++c) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    while (std::chrono::steady_clock::now() < deadline) {
                        const auto start = wall_ns();
                        auto r = co_await store.acquire(key, limit, 1);
                        store_min(sh->first_start_ns, start);
                        store_max(sh->last_end_ns, wall_ns());
                        if (!r) {
                            sh->errors++;
                        } else if (r->allowed) {
                            sh->admitted++;
                        }
                    }
                    --live;
                },
                asio::detached
            );
        }
        while (live > 0 && io.run_one() > 0) {
        }
        return 0;
    });
    EXPECT_EQ(ok, processes);
    EXPECT_EQ(sh->errors.load(), 0);
    const double elapsed_s = static_cast<double>(sh->last_end_ns.load() - sh->first_start_ns.load()) / 1e9;
    const double bound = limit.burst + limit.rate_per_s * elapsed_s + 1;
    const auto admitted = sh->admitted.load();
    RecordProperty("admitted", static_cast<int>(admitted));
    RecordProperty("bound", static_cast<int>(bound));
    EXPECT_LE(admitted, bound) << "elapsed " << elapsed_s << " s";
    EXPECT_GE(admitted, 0.9 * bound) << "elapsed " << elapsed_s << " s";
}

TEST(pg_multiprocess, admission_never_exceeds_slots_across_processes) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    const auto key = preflight::conformance::unique_key("slots");
    constexpr std::uint32_t max_slots = 3;
    auto* sh = shared_map<shared_counters>();
    const int ok = run_children(processes, [&](int) {
        asio::io_context io;
        preflight::clients::pg_pool pool{io.get_executor(), child_pool(url)};
        preflight::clients::pg_admission_store store{pool};
        const auto deadline = std::chrono::steady_clock::now() + 1500ms;
        int live = coroutines;
        for (int c = 0; c < coroutines; ++c) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    asio::steady_timer hold{co_await asio::this_coro::executor};
                    while (std::chrono::steady_clock::now() < deadline) {
                        auto g = co_await store.reserve(key, max_slots, 10s);
                        if (!g) {
                            sh->errors++;
                            continue;
                        }
                        if (!g->admitted) continue;
                        sh->admitted++;
                        // The lease is live from the server's reserve to its release, so this count of holders
                        // (raised after reserve, lowered before release) never exceeds the live leases.
                        const long now_holding = ++sh->current;
                        long prev = sh->max_seen.load();
                        while (now_holding > prev && !sh->max_seen.compare_exchange_weak(prev, now_holding)) {
                        }
                        hold.expires_after(2ms);
                        co_await hold.async_wait(asio::use_awaitable);
                        --sh->current;
                        auto rel = co_await store.release(g->lease_id);
                        if (!rel || !*rel) sh->errors++;
                    }
                    --live;
                },
                asio::detached
            );
        }
        while (live > 0 && io.run_one() > 0) {
        }
        return 0;
    });
    EXPECT_EQ(ok, processes);
    EXPECT_EQ(sh->errors.load(), 0);
    EXPECT_LE(sh->max_seen.load(), static_cast<long>(max_slots));
    EXPECT_GT(sh->admitted.load(), 10);
}

TEST(pg_multiprocess, killed_holder_slot_returns_after_expiry) {
    PREFLIGHT_REQUIRE_PG(url);
    ASSERT_TRUE(preflight::test::ensure_migrated(url));
    const auto key = preflight::conformance::unique_key("killed");
    const int ok = run_children(1, [&](int) {
        asio::io_context io;
        preflight::clients::pg_pool pool{io.get_executor(), child_pool(url)};
        preflight::clients::pg_admission_store store{pool};
        auto g = preflight::conformance::run(io, store.reserve(key, 1, 300ms));
        if (!g || !g->admitted) return 4;
        kill(getpid(), SIGKILL);  // dies holding the lease: no release, no clean shutdown
        return 5;
    });
    EXPECT_EQ(ok, 0);  // the child was killed
    asio::io_context io;
    preflight::clients::pg_pool pool{io.get_executor(), child_pool(url)};
    preflight::clients::pg_admission_store store{pool};
    auto held = preflight::conformance::run(io, store.reserve(key, 1, 10s));
    ASSERT_TRUE(held);
    EXPECT_FALSE(held->admitted) << "the killed holder's lease should still be live";
    std::this_thread::sleep_for(350ms);
    auto back = preflight::conformance::run(io, store.reserve(key, 1, 10s));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->admitted);
}
