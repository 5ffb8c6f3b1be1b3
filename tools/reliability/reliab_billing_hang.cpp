// reliab_billing_hang: fault (d) of scripts/faults.sh. The billing provider hangs: a local TCP server accepts
// every connection and never answers. The default pipeline (in-memory stores from examples/data.json, the
// balance source an `http_balance_source` pointed at the hanging server) must still decide within the balance
// gate's budget, failing open (the balance gate is fail-open by design).
//
//   reliab_billing_hang --data examples/data.json [--requests 400] [--concurrency 40] [--budget-ms 200]
//                       [--slack-ms 150]
//
// Checks, for every decision: allowed (or denied by a gate other than balance, e.g. the ban of user_banned),
// the balance trace entry is `timeout` or `error` with fail_open set, and the latency of the run is at most
// budget + slack. Prints figures and `PASS`/`FAIL`; exit status 0 on PASS.
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/http_balance_source.hpp>
#include <preflight/clients/store_set.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/config.hpp>
#include <preflight/gates/builtin/default_pipeline.hpp>
#include <preflight/gates/metrics.hpp>
#include <preflight/gates/pipeline.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

// Accepts connections and never reads or answers; keeps them open until destroyed.
class hanging_server {
public:
    hanging_server() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 512) != 0) {
            throw std::runtime_error("bind/listen failed");
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            for (;;) {
                const int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0) return;  // the listener was shut down
                accepted_.fetch_add(1);
                std::lock_guard lock(m_);
                held_.push_back(c);
            }
        });
    }
    ~hanging_server() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
        for (int c : held_) ::close(c);
    }
    hanging_server(const hanging_server&) = delete;
    hanging_server& operator=(const hanging_server&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] std::uint64_t accepted() const { return accepted_.load(); }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::mutex m_;
    std::vector<int> held_;
    std::atomic<std::uint64_t> accepted_{0};
};

struct tenant {
    const char* user;
    const char* org;
};

}  // namespace

int main(int argc, char** argv) {
    std::string data_path = "examples/data.json";
    int requests = 400, concurrency = 40, budget_ms = 200, slack_ms = 150;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--data")
            data_path = v;
        else if (a == "--requests")
            requests = std::stoi(v);
        else if (a == "--concurrency")
            concurrency = std::stoi(v);
        else if (a == "--budget-ms")
            budget_ms = std::stoi(v);
        else if (a == "--slack-ms")
            slack_ms = std::stoi(v);
        else {
            std::fprintf(stderr, "reliab_billing_hang: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    std::ifstream in(data_path);
    if (!in) {
        std::fprintf(stderr, "reliab_billing_hang: cannot read %s\n", data_path.c_str());
        return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();

    hanging_server billing;
    asio::io_context ctx;
    auto work = asio::make_work_guard(ctx);
    std::vector<std::thread> io;
    for (int i = 0; i < 2; ++i) io.emplace_back([&ctx] { ctx.run(); });

    int failures = 0;
    std::vector<double> lat_ms;
    std::uint64_t fail_open = 0, allowed = 0, denied_other = 0;
    {
        preflight::config_registry registry;
        preflight::gates::register_default_pipeline_config(registry);
        preflight::config_inputs inputs;
        inputs.args = {
            "--balance-budget-ms=" + std::to_string(budget_ms),
            "--admission-max-concurrent=100000",
            "--rate-limit-write-rps=100000",
            "--rate-limit-write-burst=100000",
            "--rate-limit-pro-write-rps=100000",
            "--rate-limit-pro-write-burst=100000"};
        inputs.environment = std::vector<std::string>{};
        inputs.getenv = [](const std::string&) { return std::optional<std::string>{}; };
        const auto cfg = preflight::config::resolve(registry, inputs);

        preflight::clients::memory_fact_stores facts;
        preflight::clients::load_fact_data(boost::json::parse(text.str()), facts);
        preflight::gates::default_pipeline_deps deps;
        deps.stores = preflight::clients::make_memory_store_set(facts, preflight::clock::steady());
        preflight::clients::http_balance_config bc;
        bc.port = billing.port();
        bc.timeout = std::chrono::seconds{30};  // longer than the budget: the gate's budget must bound the call
        deps.stores.balance = std::make_shared<preflight::clients::http_balance_source>(ctx.get_executor(), bc);
        auto pipeline = preflight::gates::default_pipeline(cfg, std::move(deps));

        const tenant tenants[] = {{"user_alice", "org_acme"}, {"user_bob", "org_acme"}, {"user_dave", "org_nobilling"}};
        const auto t_start = steady::now();
        for (int done = 0; done < requests;) {
            const int batch = std::min(concurrency, requests - done);
            std::vector<std::future<preflight::gates::decision>> futures;
            std::vector<steady::time_point> started;
            for (int i = 0; i < batch; ++i) {
                preflight::gates::request r;
                const int n = done + i;
                if (n % 2 == 0) {  // fresh orgs: never cached
                    r.subject.user = "u-fresh-" + std::to_string(n);
                    r.subject.org = "o-fresh-" + std::to_string(n);
                } else {
                    const auto& t = tenants[static_cast<std::size_t>(n) % 3];
                    r.subject.user = t.user;
                    r.subject.org = t.org;
                }
                started.push_back(steady::now());
                futures.push_back(pipeline.async_run(ctx.get_executor(), std::move(r), asio::use_future));
            }
            for (int i = 0; i < batch; ++i) {
                auto d = futures[static_cast<std::size_t>(i)].get();
                const double ms = std::chrono::duration<double, std::milli>(steady::now() - started[i]).count();
                lat_ms.push_back(ms);
                const auto* b = d.find("balance");
                const bool balance_failed_open = b && b->fail_open &&
                                                 (b->outcome == preflight::gates::gate_outcome::timeout ||
                                                  b->outcome == preflight::gates::gate_outcome::error);
                if (balance_failed_open) ++fail_open;
                if (d.allowed) ++allowed;
                if (!d.allowed && d.gate != "balance") ++denied_other;
                if ((!d.allowed && d.gate == "balance") || (d.allowed && !balance_failed_open)) {
                    ++failures;
                    if (failures <= 5) {
                        std::fprintf(
                            stderr,
                            "unexpected decision: allowed=%d gate=%s code=%s balance=%s\n",
                            d.allowed,
                            d.gate.c_str(),
                            d.code.c_str(),
                            b ? std::string(preflight::gates::to_string(b->outcome)).c_str() : "-"
                        );
                    }
                }
            }
            done += batch;
        }
        const double total_s = std::chrono::duration<double>(steady::now() - t_start).count();
        std::sort(lat_ms.begin(), lat_ms.end());
        auto pct = [&](double p) {
            const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(lat_ms.size())));
            return lat_ms[std::max<std::size_t>(rank, 1) - 1];
        };
        const double max_ms = lat_ms.back();
        const bool bounded = max_ms <= budget_ms + slack_ms;
        std::printf(
            "billing-hang: requests=%d concurrency=%d budget_ms=%d connections_to_hanging_server=%llu "
            "allowed=%llu denied_by_other_gates=%llu balance_failed_open=%llu pipeline_fail_open_metric=%llu "
            "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f total_s=%.2f\n",
            requests,
            concurrency,
            budget_ms,
            static_cast<unsigned long long>(billing.accepted()),
            static_cast<unsigned long long>(allowed),
            static_cast<unsigned long long>(denied_other),
            static_cast<unsigned long long>(fail_open),
            static_cast<unsigned long long>(pipeline.metrics().fail_open_count("balance")),
            pct(50),
            pct(99),
            max_ms,
            total_s
        );
        if (!bounded) {
            std::printf("latency over budget + slack (%d ms)\n", budget_ms + slack_ms);
            ++failures;
        }
        if (fail_open != static_cast<std::uint64_t>(requests) - denied_other) ++failures;
    }
    work.reset();
    ctx.stop();
    for (auto& t : io) t.join();
    std::printf("%s billing-hang: %d unexpected\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}
