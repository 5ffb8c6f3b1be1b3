#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "source_paths.hpp"
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

// Postgres stopped mid-run: statements fail typed, and the same pool recovers once the server is back, without a
// process restart. Uses a private cluster (scripts/pg.sh with its own state file) so other tests are unaffected.
namespace {

namespace asio = boost::asio;

std::string run_capture(const std::string& cmd) {
    std::string out;
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) return out;
    std::array<char, 256> buf{};
    while (fgets(buf.data(), buf.size(), f) != nullptr) out += buf.data();
    pclose(f);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

struct private_cluster {
    std::string state = "/tmp/preflight-restart-test-" + std::to_string(getpid()) + ".state";
    std::string script = std::string(preflight::test::source_dir) + "/scripts/pg.sh";
    std::string url, pgtmp, port, pgbin;

    bool start() {
        url = run_capture("PREFLIGHT_PG_STATE=" + state + " " + script + " start 2>/dev/null");
        std::ifstream in(state);
        std::string line;
        while (std::getline(in, line)) {
            if (line.starts_with("PGTMP=")) pgtmp = line.substr(6);
            if (line.starts_with("PORT=")) port = line.substr(5);
        }
        pgbin = run_capture("pg_config --bindir");
        return url.starts_with("postgresql://") && !pgtmp.empty() && !port.empty();
    }
    int pg_ctl(const std::string& args) const {
        return std::system(("cd " + pgtmp + " && runuser -u postgres -- " + pgbin + "/pg_ctl -D " + pgtmp + "/data " +
                            args + " >/dev/null 2>&1")
                               .c_str());
    }
    int stop_server() const { return pg_ctl("-m fast -w -t 30 stop"); }
    int start_server() const { return pg_ctl("-l " + pgtmp + "/server.log -o '-p " + port + "' -w -t 30 start"); }
    ~private_cluster() {
        if (!state.empty())
            std::system(("PREFLIGHT_PG_STATE=" + state + " " + script + " stop >/dev/null 2>&1").c_str());
    }
};

}  // namespace

TEST(pg_restart, typed_errors_while_down_then_the_pool_recovers) {
    PREFLIGHT_REQUIRE_PG(shared_url);  // only to follow the suite's skip/fail policy
    if (geteuid() != 0) {
        if (preflight::test::in_ci()) FAIL() << "CI=true but not root: this test needs root to run a private cluster";
        GTEST_SKIP() << "needs root to stop and start a private cluster (runuser)";
    }
    private_cluster cluster;
    ASSERT_TRUE(cluster.start()) << "could not start a private cluster";
    std::string diag;
    ASSERT_TRUE(preflight::clients::migrate(cluster.url, &diag)) << diag;

    asio::io_context io;
    preflight::clients::pool_params p;
    p.url = cluster.url;
    p.size = 2;
    p.connect_timeout = std::chrono::milliseconds{2000};
    preflight::clients::pg_pool pool{io.get_executor(), p};
    preflight::clients::pg_rate_limit_store store{pool};
    const preflight::limits::bucket_limit l{1000, 1000};
    using preflight::conformance::run;
    ASSERT_TRUE(run(io, pool.connect_all()));
    auto before = run(io, store.acquire("k", l, 1));
    ASSERT_TRUE(before) << before.error().message();

    ASSERT_EQ(cluster.stop_server(), 0);
    for (int i = 0; i < 3; ++i) {
        auto down = run(io, store.acquire("k", l, 1));
        ASSERT_FALSE(down) << "attempt " << i;
        EXPECT_TRUE(
            down.error() == preflight::errc::connection_broken || down.error() == preflight::errc::store_unavailable
        ) << down.error().message();
    }

    ASSERT_EQ(cluster.start_server(), 0);
    auto after = run(io, store.acquire("k", l, 1));
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_TRUE(after->allowed);
    EXPECT_GE(pool.stats().connects, 3u);
}
