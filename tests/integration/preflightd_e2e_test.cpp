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

#include <chrono>
#include <csignal>
#include <optional>
#include <pg_env.hpp>
#include <poll.h>
#include <regex>
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

/// A running preflightd child process; SIGKILLed if the test did not stop it.
class daemon_process {
public:
    explicit daemon_process(std::vector<std::string> args) {
        args.insert(args.begin(), PREFLIGHTD_PATH);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addchdir_np(&fa, PREFLIGHT_SOURCE_DIR);
        const int rc = posix_spawn(&pid_, PREFLIGHTD_PATH, &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        out_ = out[0];
        if (rc != 0) throw std::runtime_error("cannot start " + std::string(PREFLIGHTD_PATH));
    }
    ~daemon_process() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) close(out_);
    }

    /// The port from the "listening on http://ADDR:PORT" line, or nullopt when the process exits first / 20 s pass.
    std::optional<unsigned short> wait_listening() {
        std::string text;
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, 100) > 0) {
                char buf[256];
                const ssize_t n = read(out_, buf, sizeof buf);
                if (n <= 0) return std::nullopt;
                text.append(buf, static_cast<std::size_t>(n));
                std::smatch m;
                if (std::regex_search(text, m, std::regex(R"(listening on http://[^:]+:(\d+))"))) {
                    return static_cast<unsigned short>(std::stoi(m[1]));
                }
            }
        }
        return std::nullopt;
    }

    /// Sends `sig` and waits (at most 20 s) for the exit status; -1 when it did not exit normally.
    int stop(int sig = SIGTERM) {
        kill(pid_, sig);
        return wait_exit();
    }

    int wait_exit() {
        int status = 0;
        for (int i = 0; i < 2000; ++i) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
};

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
    EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/release").result_int(), 200);
    EXPECT_EQ(c.send(http::verb::post, "/v1/leases/" + lease + "/release").result_int(), 200);

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
    if (postgres) {
        EXPECT_GT(metric(t, "preflight_pg_statements_total"), 0u) << t;
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

TEST(preflightd_e2e, embedded_default_decisions_metrics_and_drain) {
    daemon_process d({"--port", "0", "--data", "examples/data.json"});
    auto port = d.wait_listening();
    ASSERT_TRUE(port.has_value()) << "preflightd did not start";
    play_scenario(*port, false);
    EXPECT_EQ(d.stop(SIGINT), 0);
}

TEST(preflightd_e2e, bad_configuration_exits_2) {
    daemon_process d({"--port", "not-a-number"});
    EXPECT_EQ(d.wait_exit(), 2);
    daemon_process unknown({"--no-such-flag=1"});
    EXPECT_EQ(unknown.wait_exit(), 2);
}

}  // namespace
