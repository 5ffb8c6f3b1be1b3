// The real nginx (Debian's /usr/sbin/nginx) in front of a tiny upstream, with preflightd (the built binary, in-memory
// stores, examples/data.json) as its auth_request backend, configured from examples/nginx/nginx.conf.in: allowed
// requests reach the upstream with the RateLimit fields, a ban is 403, a member cap 402, a rate limit 429 with
// Retry-After, each with X-Preflight-Code/-Gate; preflightd down is fail-open or fail-closed by the config's one
// setting; and a denied request never reaches the upstream (its own access log is read).
// nginx runs unprivileged-safe: its own prefix in a temp dir, free ports, `daemon off`, its pid and logs there; as root
// its workers run as nobody. Without nginx the tests skip with a reason, or fail when CI=true.
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
#include <daemon_process.hpp>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <memory>
#include <optional>
#include <pg_env.hpp>
#include <pwd.h>
#include <regex>
#include <source_paths.hpp>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using preflight::test::daemon_process;

constexpr const char* nginx_binary = "/usr/sbin/nginx";

/// Skips the test (with the reason) when nginx or preflightd is missing; under CI=true, fails instead.
#define PREFLIGHT_REQUIRE_NGINX()                                                                             \
    if (access(nginx_binary, X_OK) != 0) {                                                                    \
        if (::preflight::test::in_ci()) {                                                                     \
            FAIL() << nginx_binary << " is missing but CI=true: scripts/setup.sh installs the nginx package"; \
        }                                                                                                     \
        GTEST_SKIP() << nginx_binary << " is missing (scripts/setup.sh installs it: apt-get install nginx)";  \
    }                                                                                                         \
    if (*::preflight::test::preflightd_path == '\0') {                                                        \
        GTEST_SKIP() << "preflightd is not built (PREFLIGHT_BUILD_SERVER=OFF)";                               \
    }

using response = http::response<http::string_body>;
using header_list = std::vector<std::pair<std::string, std::string>>;

/// A port nobody listens on right now (bound and closed at once: a small race, retried by the caller).
unsigned short nginx_free_port() {
    asio::io_context ctx;
    asio::ip::tcp::acceptor a(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

/// One request on a fresh connection; `std::nullopt` when nothing answers.
std::optional<response> nginx_request(
    unsigned short port, http::verb verb, const std::string& target, const header_list& headers = {}
) {
    asio::io_context ctx;
    asio::ip::tcp::socket s(ctx);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return std::nullopt;
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::connection, "close");
    for (const auto& [k, v] : headers) req.insert(k, v);
    if (verb == http::verb::post) req.body() = R"({"payload":"for the upstream"})";
    req.prepare_payload();
    http::write(s, req, ec);
    if (ec) return std::nullopt;
    boost::beast::flat_buffer buf;
    response res;
    http::read(s, buf, res, ec);
    if (ec) return std::nullopt;
    return res;
}

std::string file_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string field_of(const response& r, std::string_view name) {
    auto it = r.find(name);
    return it == r.end() ? std::string() : std::string(it->value());
}

/// A temp directory, removed with everything in it.
class nginx_temp_dir {
public:
    nginx_temp_dir() {
        char tmpl[] = "/tmp/preflight_nginx_XXXXXX";
        if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
        // As root, nginx's workers run as nobody: they must reach the temp dirs inside (the master creates those).
        chmod(tmpl, 0755);
    }
    ~nginx_temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    nginx_temp_dir(const nginx_temp_dir&) = delete;
    nginx_temp_dir& operator=(const nginx_temp_dir&) = delete;
    [[nodiscard]] const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

/// examples/nginx/nginx.conf.in with its placeholders filled; throws when one is left unfilled.
std::string nginx_config(
    const fs::path& prefix, unsigned short listen, unsigned short app, unsigned short preflightd, std::string on_error
) {
    std::string text = file_text(fs::path(preflight::test::source_dir) / "examples/nginx/nginx.conf.in");
    const std::vector<std::pair<std::string, std::string>> values{
        {"@PREFIX@", prefix.string()},
        {"@LISTEN_PORT@", std::to_string(listen)},
        {"@APP_PORT@", std::to_string(app)},
        {"@PREFLIGHTD_PORT@", std::to_string(preflightd)},
        {"@ON_ERROR@", std::move(on_error)},
    };
    for (const auto& [k, v] : values) {
        for (auto at = text.find(k); at != std::string::npos; at = text.find(k, at + v.size()))
            text.replace(at, k.size(), v);
    }
    std::smatch left;
    if (std::regex_search(text, left, std::regex("@[A-Z_]+@"))) {
        throw std::runtime_error("examples/nginx/nginx.conf.in: placeholder " + left.str() + " not filled");
    }
    return text;
}

/// `user nobody <its group>;` when this process is root (so the workers do not run as root), else nothing (nginx
/// ignores `user` without privileges, with a warning).
std::string nginx_user_directive() {
    if (geteuid() != 0) return "";
    const passwd* pw = getpwnam("nobody");
    if (pw == nullptr) return "";
    const group* gr = getgrgid(pw->pw_gid);
    return "user nobody" + (gr != nullptr ? " " + std::string(gr->gr_name) : std::string()) + ";";
}

/// nginx on the example config, in its own prefix dir; stopped (SIGTERM: fast shutdown) by the destructor.
class nginx_instance {
public:
    /// Starts nginx with `on_error` ("open" or "closed") in front of preflightd at `preflightd_port`; retries with
    /// other ports when one was taken in the meantime. Check `error()` for why it did not start.
    nginx_instance(unsigned short preflightd_port, const std::string& on_error) {
        for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
            port_ = nginx_free_port();
            app_port_ = nginx_free_port();
            if (port_ == app_port_) continue;
            std::ofstream(dir_.path() / "nginx.conf")
                << nginx_config(dir_.path(), port_, app_port_, preflightd_port, on_error);
            const std::string log = (dir_.path() / "error.log").string();
            const std::string globals = "daemon off; pid " + (dir_.path() / "nginx.pid").string() + "; error_log " +
                                        log + " info; " + nginx_user_directive();
            auto p = std::make_unique<daemon_process>(
                nginx_binary,
                std::vector<std::string>{"-p", dir_.path().string() + "/", "-c", "nginx.conf", "-e", log, "-g", globals}
            );
            if (wait_until_listening(*p)) {
                process_ = std::move(p);
            } else {
                error_ = "nginx did not start (attempt " + std::to_string(attempt + 1) + "): " + file_text(log);
                (void)p->stop(SIGTERM);
            }
        }
    }
    ~nginx_instance() {
        if (process_) (void)process_->stop(SIGTERM);
    }
    nginx_instance(const nginx_instance&) = delete;
    nginx_instance& operator=(const nginx_instance&) = delete;

    [[nodiscard]] bool running() const noexcept { return process_ != nullptr; }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    [[nodiscard]] unsigned short port() const noexcept { return port_; }
    [[nodiscard]] std::string error_log() const { return file_text(dir_.path() / "error.log"); }

    /// The request URIs that reached the upstream, one per line of its access log (`METHOD URI STATUS`).
    [[nodiscard]] std::vector<std::string> upstream_uris() const {
        std::vector<std::string> out;
        std::istringstream lines(file_text(dir_.path() / "upstream_access.log"));
        for (std::string line; std::getline(lines, line);) {
            std::istringstream words(line);
            std::string method, uri;
            words >> method >> uri;
            out.push_back(uri);
        }
        return out;
    }

    /// Waits (at most 5 s) until the upstream's access log lists `uri`: nginx writes the line when that request ends.
    bool wait_for_upstream(const std::string& uri) const {
        for (int i = 0; i < 500; ++i) {
            for (const auto& u : upstream_uris()) {
                if (u == uri) return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    std::optional<response> request(http::verb verb, const std::string& target, const header_list& headers = {}) const {
        return nginx_request(port_, verb, target, headers);
    }

private:
    bool wait_until_listening(daemon_process& p) const {
        for (int i = 0; i < 1000; ++i) {
            if (p.exited()) return false;  // e.g. a port taken: the error log says so
            asio::io_context ctx;
            asio::ip::tcp::socket s(ctx);
            boost::system::error_code ec;
            s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
            if (!ec) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    nginx_temp_dir dir_;
    unsigned short port_ = 0;
    unsigned short app_port_ = 0;
    std::unique_ptr<daemon_process> process_;
    std::string error_;
};

std::uint64_t nginx_metric(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return ~std::uint64_t{0};
    return std::stoull(text.substr(at + name.size() + 2));
}

header_list subject(const std::string& user, const std::string& org) {
    return {{"X-User", user}, {"X-Org", org}};
}

// preflightd on the sample tenants, with pro orgs' write bucket cut to 3 (refilling once per 100 s), so the fourth
// execution of one org in a row is a 429.
std::vector<std::string> preflightd_args() {
    return {
        "--port",
        "0",
        "--threads",
        "2",
        "--data",
        "examples/data.json",
        "--rate-limit-pro-write-burst=3",
        "--rate-limit-pro-write-rps=0.01"};
}

TEST(nginx_auth_request, allowed_banned_402_and_429_answers_and_denials_never_reach_the_upstream) {
    PREFLIGHT_REQUIRE_NGINX();
    daemon_process pd(preflightd_args());
    const auto pd_port = pd.wait_listening();
    ASSERT_TRUE(pd_port.has_value()) << "preflightd did not start (exit " << pd.wait_exit() << ")";
    nginx_instance nginx(*pd_port, "closed");
    ASSERT_TRUE(nginx.running()) << nginx.error();

    // Allowed: the upstream answers, with the decision's RateLimit fields.
    auto read = nginx.request(http::verb::get, "/allowed-read", subject("user_alice", "org_acme"));
    ASSERT_TRUE(read) << nginx.error_log();
    EXPECT_EQ(read->result_int(), 200) << read->body() << nginx.error_log();
    EXPECT_EQ(read->body(), "upstream ok /allowed-read\n");
    EXPECT_NE(field_of(*read, "RateLimit").find("\"rate_limit\";r="), std::string::npos)
        << field_of(*read, "RateLimit");
    EXPECT_NE(field_of(*read, "RateLimit-Policy").find("\"rate_limit\";q="), std::string::npos);
    EXPECT_EQ(read->count("X-Preflight-Code"), 0u);
    auto exec = nginx.request(http::verb::post, "/allowed-execute", subject("user_alice", "org_acme"));
    ASSERT_TRUE(exec);
    EXPECT_EQ(exec->result_int(), 200) << exec->body();
    EXPECT_EQ(exec->body(), "upstream ok /allowed-execute\n");

    // A client cannot speak for preflight itself: its own X-Preflight-* headers never reach preflightd.
    header_list forged = subject("user_alice", "org_acme");
    forged.emplace_back("X-Preflight-User", "user_banned");
    forged.emplace_back("X-Preflight-Operation", "explode");
    auto smuggled = nginx.request(http::verb::get, "/forged-headers", forged);
    ASSERT_TRUE(smuggled);
    EXPECT_EQ(smuggled->result_int(), 200) << smuggled->body();

    // Banned: 403 with the code and gate, no Retry-After.
    auto banned = nginx.request(http::verb::get, "/denied-banned", subject("user_banned", "org_acme"));
    ASSERT_TRUE(banned);
    EXPECT_EQ(banned->result_int(), 403) << banned->body();
    EXPECT_EQ(field_of(*banned, "X-Preflight-Code"), "banned");
    EXPECT_EQ(field_of(*banned, "X-Preflight-Gate"), "ban");
    EXPECT_EQ(banned->count("Retry-After"), 0u);
    EXPECT_EQ(json::parse(banned->body()).at("error").at("code"), "banned") << banned->body();

    // The member cap: 402 (auth_request alone would have made it a 500).
    auto capped = nginx.request(http::verb::post, "/denied-capped", subject("user_carol", "org_capped"));
    ASSERT_TRUE(capped);
    EXPECT_EQ(capped->result_int(), 402) << capped->body();
    EXPECT_EQ(field_of(*capped, "X-Preflight-Code"), "member_usage_cap_exceeded");
    EXPECT_EQ(field_of(*capped, "X-Preflight-Gate"), "member_cap");
    EXPECT_EQ(capped->count("Retry-After"), 0u);

    // The rate limit: three executions of org_nobilling pass, the fourth is a 429 with Retry-After.
    for (int i = 1; i <= 3; ++i) {
        auto ok = nginx.request(http::verb::post, "/burst-" + std::to_string(i), subject("user_dave", "org_nobilling"));
        ASSERT_TRUE(ok);
        EXPECT_EQ(ok->result_int(), 200) << i << ": " << ok->body();
    }
    auto limited = nginx.request(http::verb::post, "/denied-burst-4", subject("user_dave", "org_nobilling"));
    ASSERT_TRUE(limited);
    EXPECT_EQ(limited->result_int(), 429) << limited->body();
    EXPECT_EQ(field_of(*limited, "X-Preflight-Code"), "rate_limited");
    EXPECT_EQ(field_of(*limited, "X-Preflight-Gate"), "rate_limit");
    const std::string retry_after = field_of(*limited, "Retry-After");
    ASSERT_TRUE(std::regex_match(retry_after, std::regex("[1-9][0-9]*"))) << "Retry-After: '" << retry_after << "'";
    EXPECT_GE(std::stoi(retry_after), 50) << "0.01 tokens/s: about 100 s until the next one";
    EXPECT_NE(field_of(*limited, "RateLimit").find("\"rate_limit\";r=0"), std::string::npos);

    // A subject key over preflightd's limit: 400 naming the header.
    auto too_long = nginx.request(http::verb::get, "/denied-too-long", subject(std::string(300, 'u'), "org_acme"));
    ASSERT_TRUE(too_long);
    EXPECT_EQ(too_long->result_int(), 400) << too_long->body();
    EXPECT_EQ(field_of(*too_long, "X-Preflight-Field"), "X-Preflight-User");

    // Denials never reached the upstream: once a later allowed request is in its log, exactly the allowed ones are.
    auto last = nginx.request(http::verb::get, "/allowed-last", subject("user_bob", "org_acme"));
    ASSERT_TRUE(last);
    EXPECT_EQ(last->result_int(), 200);
    ASSERT_TRUE(nginx.wait_for_upstream("/allowed-last"));
    const std::vector<std::string> expected{
        "/allowed-read", "/allowed-execute", "/forged-headers", "/burst-1", "/burst-2", "/burst-3", "/allowed-last"};
    EXPECT_EQ(nginx.upstream_uris(), expected);

    // preflightd saw every subrequest on /v1/auth and gave every execution's admission slot back at once.
    auto metrics = nginx_request(*pd_port, http::verb::get, "/metrics");
    ASSERT_TRUE(metrics);
    const std::string m = "\n" + metrics->body();
    EXPECT_EQ(nginx_metric(m, "preflight_api_auth_requests_total"), 11u) << m;
    EXPECT_EQ(nginx_metric(m, "preflight_api_preflight_requests_total"), 0u);
    EXPECT_EQ(nginx_metric(m, "preflight_api_invalid_requests_total"), 1u);
    EXPECT_EQ(nginx_metric(m, "preflight_leases_held"), 0u);
    EXPECT_EQ(nginx_metric(m, "preflight_admission_leases_stored"), 0u) << m;
    EXPECT_EQ(pd.stop(SIGTERM), 0);
}

TEST(nginx_auth_request, preflightd_down_fails_open_or_closed_by_the_one_setting) {
    PREFLIGHT_REQUIRE_NGINX();
    daemon_process pd(preflightd_args());
    const auto pd_port = pd.wait_listening();
    ASSERT_TRUE(pd_port.has_value()) << "preflightd did not start (exit " << pd.wait_exit() << ")";
    nginx_instance fail_open(*pd_port, "open");
    ASSERT_TRUE(fail_open.running()) << fail_open.error();
    nginx_instance fail_closed(*pd_port, "closed");
    ASSERT_TRUE(fail_closed.running()) << fail_closed.error();

    // While preflightd answers, the setting changes nothing: allowed passes, a denial is a denial.
    for (const nginx_instance* n : {&fail_open, &fail_closed}) {
        auto ok = n->request(http::verb::get, "/up-allowed", subject("user_alice", "org_acme"));
        ASSERT_TRUE(ok);
        EXPECT_EQ(ok->result_int(), 200) << ok->body();
        auto banned = n->request(http::verb::get, "/up-banned", subject("user_banned", "org_acme"));
        ASSERT_TRUE(banned);
        EXPECT_EQ(banned->result_int(), 403) << banned->body();
    }

    ASSERT_EQ(pd.stop(SIGTERM), 0);  // preflightd down: connections refused

    // Fail-open lets even a banned subject through: no decision was made (the error log says why).
    auto through = fail_open.request(http::verb::post, "/down-open", subject("user_banned", "org_acme"));
    ASSERT_TRUE(through);
    EXPECT_EQ(through->result_int(), 200) << through->body() << fail_open.error_log();
    EXPECT_EQ(through->body(), "upstream ok /down-open\n") << "fail-open: the upstream answered, undecided";
    EXPECT_EQ(through->count("X-Preflight-Code"), 0u);
    EXPECT_TRUE(fail_open.wait_for_upstream("/down-open"));

    auto refused = fail_closed.request(http::verb::post, "/down-closed", subject("user_alice", "org_acme"));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->result_int(), 503) << refused->body() << fail_closed.error_log();
    EXPECT_EQ(json::parse(refused->body()).at("error").at("code"), "preflight_unavailable") << refused->body();
    EXPECT_EQ(refused->count("Retry-After"), 0u);
    // nginx logs the upstream's request before the front's answer goes out (one worker); look a moment later anyway.
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(fail_closed.upstream_uris(), std::vector<std::string>{"/up-allowed"})
        << "fail-closed: nothing went through";
    EXPECT_NE(fail_closed.error_log().find("auth request unexpected status: 502"), std::string::npos)
        << fail_closed.error_log();
    EXPECT_EQ(fail_open.upstream_uris(), (std::vector<std::string>{"/up-allowed", "/down-open"}));
}

}  // namespace
