// End to end: starts the preflightd binary (against the throwaway Postgres, and on the embedded default),
// checks a few decisions of the sample tenants (examples/data.json) and /metrics counters, then SIGTERM: exit 0.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <daemon_process.hpp>
#include <fstream>
#include <mutex>
#include <optional>
#include <pg_env.hpp>
#include <poll.h>
#include <source_paths.hpp>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using preflight::test::daemon_process;

/// Runs preflightd with `args` and `extra_env` (beside this process's environment) until it exits (at most 20 s);
/// returns the exit code (-1: killed or did not exit) and everything it wrote on stderr.
std::pair<int, std::string> run_to_exit(std::vector<std::string> args, std::vector<std::string> extra_env) {
    args.insert(args.begin(), preflight::test::preflightd_path);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    for (auto& e : extra_env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int err[2];
    if (pipe(err) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    posix_spawn_file_actions_addchdir_np(&fa, preflight::test::source_dir);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, preflight::test::preflightd_path, &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(err[1]);
    if (rc != 0) {
        close(err[0]);
        throw std::runtime_error("cannot start " + std::string(preflight::test::preflightd_path));
    }
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{err[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[512];
        const ssize_t n = read(err[0], buf, sizeof buf);
        if (n <= 0) break;  // the child closed stderr: it exited
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(err[0]);
    int status = 0;
    // stderr closes a moment before the process becomes waitable: wait for it until the deadline.
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return {-1, text};
        }
        std::this_thread::sleep_for(5ms);
    }
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

struct client {
    explicit client(unsigned short port) : socket(ctx) { socket.connect({asio::ip::make_address("127.0.0.1"), port}); }

    http::response<http::string_body> send(http::verb verb, const std::string& target, std::string body = {}) {
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "localhost");
        req.body() = std::move(body);
        req.prepare_payload();
        http::write(socket, req);
        boost::beast::flat_buffer buf;
        http::response<http::string_body> res;
        http::read(socket, buf, res);
        return res;
    }
    http::response<http::string_body> decide(const std::string& op, const std::string& user, const std::string& org) {
        return send(
            http::verb::post,
            "/v1/preflight",
            R"({"operation":")" + op + R"(","subject":{"user":")" + user + R"(","org":")" + org + R"("}})"
        );
    }

    asio::io_context ctx;
    asio::ip::tcp::socket socket;
};

std::uint64_t metric(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + name.size() + 2));
}

void play_scenario(unsigned short port, bool postgres) {
    client c(port);
    auto allowed = c.decide("execute", "user_alice", "org_acme");
    ASSERT_EQ(allowed.result_int(), 200) << allowed.body();
    const auto body = json::parse(allowed.body());
    const std::string lease(body.at("lease_id").as_string());
    EXPECT_FALSE(body.at("trace").as_array().empty());
    auto renewed = c.send(http::verb::post, "/v1/leases/" + lease + "/renew");
    EXPECT_EQ(renewed.result_int(), 200) << renewed.body();
    EXPECT_EQ(json::parse(renewed.body()).at("ttl_ms"), 300000) << "admission.lease_ttl_ms: the one lease ttl";
    EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/release", R"({"used":1})").result_int(), 200);
    EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/release").result_int(), 200);
    EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/renew").result_int(), 409);

    auto banned = c.decide("execute", "user_banned", "org_acme");
    EXPECT_EQ(banned.result_int(), 403) << banned.body();
    EXPECT_EQ(json::parse(banned.body()).at("error").at("code"), "banned");

    auto capped = c.decide("execute", "user_carol", "org_capped");
    EXPECT_EQ(capped.result_int(), 402) << capped.body();

    EXPECT_EQ(c.decide("resume", "user_banned", "org_acme").result_int(), 200);
    EXPECT_EQ(c.send(http::verb::post, "/v1/preflight", R"({"operation":"explode"})").result_int(), 400);
    EXPECT_EQ(c.send(http::verb::get, "/healthz").result_int(), 200);

    auto m = c.send(http::verb::get, "/metrics");
    ASSERT_EQ(m.result_int(), 200);
    const std::string t = "\n" + m.body();
    EXPECT_EQ(metric(t, R"(preflight_decisions_total{result="allow"})"), 2u) << t;  // execute + resume
    EXPECT_EQ(metric(t, R"(preflight_decisions_total{result="deny"})"), 2u) << t;
    EXPECT_EQ(metric(t, "preflight_api_invalid_requests_total"), 1u);
    EXPECT_EQ(metric(t, "preflight_lease_releases_total"), 1u);
    EXPECT_EQ(metric(t, "preflight_leases_held"), 0u);
    // The pipeline's own parts: the shared rate-limit store answered, so the fallback limiter never decided.
    EXPECT_NE(t.find("\npreflight_rate_limit_fallback_keys 0\n"), std::string::npos) << t;
    EXPECT_NE(t.find("\npreflight_rate_limit_fallback_decisions_total{result=\"allowed\"} 0\n"), std::string::npos)
        << t;
    EXPECT_NE(t.find("\npreflight_balance_cache_entries "), std::string::npos) << t;
    if (postgres) {
        EXPECT_GT(metric(t, "preflight_pg_statements_total"), 0u) << t;
    } else {
        // The embedded stores' key counts (watched by scripts/soak.sh): the one admitted execute touched one
        // token-bucket key, one backstop window and one admission key, and its lease was released.
        EXPECT_GE(metric(t, "preflight_rate_limit_keys"), 1u) << t;
        EXPECT_EQ(metric(t, "preflight_fixed_window_keys"), 1u) << t;
        EXPECT_EQ(metric(t, "preflight_admission_keys"), 1u) << t;
        EXPECT_EQ(metric(t, "preflight_admission_leases_stored"), 0u) << t;
    }

    auto cfg = json::parse(c.send(http::verb::get, "/v1/config").body());
    if (postgres) {
        EXPECT_EQ(cfg.at("server.postgres_url").at("value"), "***");
        EXPECT_EQ(cfg.at("server.postgres_url").at("source"), "flag");
    }
}

TEST(preflightd_e2e, postgres_decisions_metrics_and_drain) {
    PREFLIGHT_REQUIRE_PG(url);
    daemon_process d({"--port", "0", "--threads", "2", "--data", "examples/data.json", "--postgres", url});
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start (exit " << d.wait_exit() << ")";
    play_scenario(*port, true);
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

// The Postgres knobs of the server: limiter writes one statement each, and a purge every 20 ms that shows in the
// metrics (runs counted, none failed).
TEST(preflightd_e2e, postgres_unbatched_writes_and_periodic_purge) {
    PREFLIGHT_REQUIRE_PG(url);
    daemon_process d(
        {"--port",
         "0",
         "--data",
         "examples/data.json",
         "--postgres",
         url,
         "--server-pg-batch-writes",
         "false",
         "--server-purge-interval-ms",
         "20"}
    );
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start (exit " << d.wait_exit() << ")";
    play_scenario(*port, true);
    client c(*port);
    std::string t;
    for (int i = 0; i < 250; ++i) {
        t = "\n" + c.send(http::verb::get, "/metrics").body();
        if (metric(t, "preflight_pg_purge_runs_total") >= 2) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GE(metric(t, "preflight_pg_purge_runs_total"), 2u) << t;
    EXPECT_EQ(metric(t, "preflight_pg_purge_failures_total"), 0u) << t;
    auto cfg = json::parse(c.send(http::verb::get, "/v1/config").body());
    EXPECT_EQ(cfg.at("server.pg_batch_writes").at("value"), false);
    EXPECT_EQ(cfg.at("server.purge_interval_ms").at("value"), 20);
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(preflightd_e2e, embedded_default_decisions_metrics_and_drain) {
    daemon_process d({"--port", "0", "--data", "examples/data.json"});
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start";
    play_scenario(*port, false);
    EXPECT_EQ(d.stop(SIGINT), 0);
}

/// A local billing provider (Beast, blocking, a thread per connection): org_acme is blocked, every other org
/// allowed; records the Authorization header. Stop the preflightd that talks to it before destroying it.
class billing_provider {
public:
    billing_provider() : acceptor_(ctx_, {asio::ip::make_address("127.0.0.1"), 0}) {
        accept_thread_ = std::thread([this] {
            for (;;) {
                boost::system::error_code ec;
                asio::ip::tcp::socket s(ctx_);
                acceptor_.accept(s, ec);
                if (ec || stopping_) return;
                std::lock_guard lock(mutex_);
                connections_.emplace_back([this, sock = std::move(s)]() mutable { serve(std::move(sock)); });
            }
        });
    }
    ~billing_provider() {
        stopping_ = true;
        {  // wake the accept loop
            boost::system::error_code ec;
            asio::ip::tcp::socket poke(ctx_);
            poke.connect(acceptor_.local_endpoint(), ec);
        }
        accept_thread_.join();
        std::lock_guard lock(mutex_);
        for (auto& t : connections_) t.join();  // preflightd has exited: its connections are closed
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    int calls() const { return calls_.load(); }
    std::string last_auth() const {
        std::lock_guard lock(mutex_);
        return last_auth_;
    }

private:
    void serve(asio::ip::tcp::socket s) {
        boost::beast::flat_buffer buf;
        for (;;) {
            http::request<http::string_body> req;
            boost::system::error_code ec;
            http::read(s, buf, req, ec);
            if (ec) return;
            ++calls_;
            {
                std::lock_guard lock(mutex_);
                last_auth_ = std::string(req[http::field::authorization]);
            }
            const bool blocked = std::string(req.target()).ends_with("/org_acme");
            http::response<http::string_body> res{http::status::ok, 11};
            res.set(http::field::content_type, "application/json");
            res.body() =
                blocked ? R"({"allowed":false,"remaining":0,"reason":"plan exhausted"})" : R"({"allowed":true})";
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            http::write(s, res, ec);
            if (ec || !req.keep_alive()) return;
        }
    }

    asio::io_context ctx_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> calls_{0};
    mutable std::mutex mutex_;
    std::vector<std::thread> connections_;
    std::string last_auth_;
};

TEST(preflightd_e2e, http_billing_provider_from_configuration) {
    billing_provider provider;
    const std::string url = "http://127.0.0.1:" + std::to_string(provider.port()) + "/v1/balance";
    daemon_process d(
        {"--port",
         "0",
         "--data",
         "examples/data.json",
         "--balance-url",
         url,
         "--server-balance-api-key",
         "sk_live_e2e_secret",
         "--server-balance-timeout-ms",
         "1500"}
    );
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start (exit " << d.wait_exit() << ")";
    client c(*port);
    auto blocked = c.decide("execute", "user_alice", "org_acme");  // the provider says org_acme is exhausted
    EXPECT_EQ(blocked.result_int(), 402) << blocked.body();
    EXPECT_EQ(json::parse(blocked.body()).at("error").at("code"), "plan_executions_exhausted") << blocked.body();
    EXPECT_EQ(provider.last_auth(), "Bearer sk_live_e2e_secret");
    auto again = c.decide("execute", "user_bob", "org_acme");  // the blocked outcome is cached per org
    EXPECT_EQ(again.result_int(), 402);
    EXPECT_EQ(provider.calls(), 1);
    EXPECT_EQ(c.decide("execute", "user_dave", "org_nobilling").result_int(), 200);  // the provider allows it

    auto cfg_text = c.send(http::verb::get, "/v1/config").body();
    EXPECT_EQ(cfg_text.find("sk_live_e2e_secret"), std::string::npos) << cfg_text;
    auto cfg = json::parse(cfg_text);
    EXPECT_EQ(cfg.at("server.balance_api_key").at("value"), "***");
    EXPECT_EQ(cfg.at("server.balance_url").at("value"), json::value(url));
    EXPECT_EQ(cfg.at("server.balance_timeout_ms").at("value"), 1500);
    const std::string t = "\n" + c.send(http::verb::get, "/metrics").body();
    EXPECT_EQ(metric(t, "preflight_balance_http_connections_opened_total"), 1u) << t;  // one keep-alive connection
    c.socket.close();
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(preflightd_e2e, billing_provider_down_fails_open) {
    asio::io_context ctx;
    asio::ip::tcp::acceptor probe(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    const auto closed = probe.local_endpoint().port();
    probe.close();  // nothing listens there now: connection refused
    daemon_process d(
        {"--port",
         "0",
         "--data",
         "examples/data.json",
         "--balance-url",
         "http://127.0.0.1:" + std::to_string(closed) + "/"}
    );
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start (exit " << d.wait_exit() << ")";
    client c(*port);
    auto res = c.decide("execute", "user_alice", "org_acme");
    ASSERT_EQ(res.result_int(), 200) << res.body();
    bool balance_failed_open = false;
    const json::value doc = json::parse(res.body());  // a named local: the loop below refers into it
    for (const auto& g : doc.at("trace").as_array()) {
        if (g.at("gate") == "balance") balance_failed_open = g.at("fail_open") == true;
    }
    EXPECT_TRUE(balance_failed_open) << res.body();
    const std::string t = "\n" + c.send(http::verb::get, "/metrics").body();
    EXPECT_EQ(metric(t, R"(preflight_gate_fail_open_total{gate="balance"})"), 1u) << t;
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

// The run id of the request body charges its flow run's budget (run_budget.* keys, here from flags); another run and a
// request without a run id are not charged by it. Shadowed keys of the old lease ttl are gone.
TEST(preflightd_e2e, embedded_run_budget_per_flow_run) {
    daemon_process d(
        {"--port",
         "0",
         "--data",
         "examples/data.json",
         "--run-budget-max-mutating-calls=2",
         "--balance-stale-if-error-s=30"}
    );
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start (exit " << d.wait_exit() << ")";
    client c(*port);
    const auto in_run = [&c](const std::string& run) {
        return c.send(
            http::verb::post,
            "/v1/preflight",
            R"({"operation":"execute","subject":{"user":"user_alice","org":"org_acme","run_id":")" + run + R"("}})"
        );
    };
    for (int i = 0; i < 2; ++i) {
        auto ok = in_run("run-1");
        ASSERT_EQ(ok.result_int(), 200) << ok.body();
        const std::string lease(json::parse(ok.body()).at("lease_id").as_string());
        EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/release").result_int(), 200);
    }
    auto over = in_run("run-1");
    EXPECT_EQ(over.result_int(), 429) << over.body();
    const auto err = json::parse(over.body()).at("error");
    EXPECT_EQ(err.at("code"), "run_budget_exhausted");
    EXPECT_EQ(err.at("message"), "rate-limit budget exhausted: used 2 of 2 mutating calls for this flow run");
    auto other = in_run("run-2");
    EXPECT_EQ(other.result_int(), 200) << other.body();
    auto cfg = json::parse(c.send(http::verb::get, "/v1/config").body());
    EXPECT_EQ(cfg.at("balance.stale_if_error_s").at("value"), 30);
    EXPECT_FALSE(cfg.as_object().contains("server.lease_ttl_ms"));
    EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST(preflightd_e2e, bad_configuration_exits_2) {
    daemon_process d({"--port", "not-a-number"});
    EXPECT_EQ(d.wait_exit(), 2);
    daemon_process unknown({"--no-such-flag=1"});
    EXPECT_EQ(unknown.wait_exit(), 2);
    daemon_process bad_balance_url({"--port", "0", "--balance-url", "https://billing.example.com/"});
    EXPECT_EQ(bad_balance_url.wait_exit(), 2);
}

// No configuration error prints a secret: misspelt keys are named, their values never shown (stderr included).
TEST(preflightd_e2e, configuration_errors_never_print_a_secret) {
    const auto flag = run_to_exit({"--port", "0", "--server-balance-api-kee=sk_live_FLAGSECRET"}, {});
    EXPECT_EQ(flag.first, 2) << flag.second;
    EXPECT_NE(flag.second.find("--server-balance-api-kee"), std::string::npos) << flag.second;
    EXPECT_EQ(flag.second.find("FLAGSECRET"), std::string::npos) << flag.second;

    const auto env = run_to_exit({"--port", "0"}, {"PREFLIGHT_SERVER_POSTGRES_UR=postgresql://u:hunter2@h/db"});
    EXPECT_EQ(env.first, 2) << env.second;
    EXPECT_NE(env.second.find("PREFLIGHT_SERVER_POSTGRES_UR"), std::string::npos) << env.second;
    EXPECT_EQ(env.second.find("hunter2"), std::string::npos) << env.second;

    char dir[] = "/tmp/preflightd_cfg_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string yaml = std::string(dir) + "/gw.yaml";
    std::ofstream(yaml) << "server:\n  port: 0\n  balance_api_kee: sk_live_FILESECRET\n";
    const auto file = run_to_exit({"--config", yaml}, {});
    EXPECT_EQ(file.first, 2) << file.second;
    EXPECT_NE(file.second.find("server.balance_api_kee"), std::string::npos) << file.second;
    EXPECT_EQ(file.second.find("FILESECRET"), std::string::npos) << file.second;

    // The balance URL's query (a token may sit there) is never echoed.
    const auto url =
        run_to_exit({"--port", "0", "--balance-url", "http://127.0.0.1:1/v1/?token=sk_live_URLSECRET"}, {});
    EXPECT_EQ(url.first, 2) << url.second;
    EXPECT_NE(url.second.find("server.balance_url"), std::string::npos) << url.second;
    EXPECT_EQ(url.second.find("URLSECRET"), std::string::npos) << url.second;
    std::remove(yaml.c_str());
    rmdir(dir);
}

// A YAML --config file, with the rate-limit block where the gateway config puts it (server: rate_limit:).
TEST(preflightd_e2e, yaml_config_file_with_the_rate_limit_under_server) {
    char dir[] = "/tmp/preflightd_cfg_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string yaml = std::string(dir) + "/gw.yml";
    std::ofstream(yaml) << "server:\n  port: 0\n  rate_limit:\n    write_burst: 3\n";
    {
        daemon_process d({"--config", yaml});
        auto port = d.wait_listening();
        ASSERT_TRUE(port);
        client c(*port);
        auto cfg = json::parse(c.send(http::verb::get, "/v1/config").body());
        EXPECT_EQ(cfg.at("rate_limit.write_burst").at("value"), 3.0);
        EXPECT_EQ(cfg.at("rate_limit.write_burst").at("source"), "file");
        EXPECT_EQ(cfg.at("server.port").at("source"), "file");
        EXPECT_EQ(d.stop(SIGTERM), 0);
    }
    std::ofstream(yaml) << "server:\n  port: 0\n  rate_limit:\n    write_burst: 3\nrate_limit:\n  write_burst: 4\n";
    const auto both = run_to_exit({"--config", yaml}, {});
    EXPECT_EQ(both.first, 2) << both.second;
    EXPECT_NE(both.second.find("server.rate_limit.write_burst"), std::string::npos) << both.second;
    EXPECT_NE(both.second.find("as rate_limit.write_burst"), std::string::npos) << both.second;
    std::remove(yaml.c_str());
    rmdir(dir);
}

}  // namespace
