// reliab_load: HTTP load driver for preflightd's fault-injection and soak runs (scripts/faults.sh,
// scripts/soak.sh). Not a benchmark: it drives mixed, optionally rate-limited traffic over keep-alive
// connections and counts what came back, so the scripts can check fail policies and lease accounting.
//
//   reliab_load --port P [--host 127.0.0.1] [--seconds 30] [--connections 8] [--rate 0]
//               [--fresh 50] [--read 20] [--release 100] [--hold-every 0] [--report-ms 1000]
//
// --rate      total requests/s over all connections (0: as fast as answers come back)
// --fresh     % of requests for a user/org never used before (u-<conn>-<n> / o-<conn>-<n>); the rest use the
//             hot tenants of examples/data.json
// --read      % of requests with operation "read" (the rest "execute")
// --release   % of granted leases released at once (POST /v1/leases/{id}/release); a release answered 503 is
//             retried every 100 ms until it is answered 200 or 404, so no lease is dropped by the driver
// --hold-every K: every K-th granted lease is kept (never released): the scripts compare that count with
//             preflight_leases and /metrics
// --held-file F: writes the ids of the kept leases to F, one a line, at the end
// Prints one `INTERVAL` line per report period, one `REASON <status> <gate> <code> <operation> count=N` line per
// kind of refusal, and a final `SUMMARY` line (key=value pairs). Latencies are
// of /v1/preflight requests only. Exit status 0 unless the arguments are bad.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    double seconds = 30;
    int connections = 8;
    double rate = 0;
    int fresh = 50;
    int read = 20;
    int release = 100;
    std::uint64_t hold_every = 0;
    int report_ms = 1000;
    std::string held_file;  // where to write the ids of the kept leases, one a line ("" = nowhere)
};

// Latency histogram: bucket i holds [2^(i/4) µs ...) roughly (quarter-octave buckets up to ~70 s).
constexpr std::size_t n_buckets = 105;
std::size_t bucket_of(std::uint64_t us) {
    if (us == 0) return 0;
    const double l = std::log2(static_cast<double>(us)) * 4.0;
    return std::min<std::size_t>(n_buckets - 1, static_cast<std::size_t>(l));
}
double bucket_upper_ms(std::size_t b) {
    return std::exp2(static_cast<double>(b + 1) / 4.0) / 1000.0;
}

struct counters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> s200{0}, s400{0}, s402{0}, s403{0}, s429{0}, s500{0}, s503{0}, s_other{0};
    std::atomic<std::uint64_t> transport_errors{0};
    std::atomic<std::uint64_t> granted{0}, released{0}, release_404{0}, release_retries{0}, held{0};
    std::atomic<std::uint64_t> max_us{0};
    std::array<std::atomic<std::uint64_t>, n_buckets> hist{};

    void reset_interval() {
        for (auto* c :
             {&requests,
              &s200,
              &s400,
              &s402,
              &s403,
              &s429,
              &s500,
              &s503,
              &s_other,
              &transport_errors,
              &granted,
              &released,
              &release_404,
              &release_retries,
              &held,
              &max_us}) {
            c->store(0);
        }
        for (auto& h : hist) h.store(0);
    }
};

struct shared_state {
    options opt;
    counters total;
    counters interval;
    std::mutex reasons_mutex;
    std::map<std::string, std::uint64_t> reasons;  // "status gate code" of non-200 answers
    std::atomic<std::uint64_t> pending_releases{0};
    std::mutex held_mutex;
    std::vector<std::string> held_ids;
    std::atomic<bool> stop{false};
};

void add(counters& c, unsigned status, std::uint64_t us) {
    c.requests.fetch_add(1, std::memory_order_relaxed);
    switch (status) {
        case 200: c.s200.fetch_add(1, std::memory_order_relaxed); break;
        case 400: c.s400.fetch_add(1, std::memory_order_relaxed); break;
        case 402: c.s402.fetch_add(1, std::memory_order_relaxed); break;
        case 403: c.s403.fetch_add(1, std::memory_order_relaxed); break;
        case 429: c.s429.fetch_add(1, std::memory_order_relaxed); break;
        case 500: c.s500.fetch_add(1, std::memory_order_relaxed); break;
        case 503: c.s503.fetch_add(1, std::memory_order_relaxed); break;
        case 0: c.transport_errors.fetch_add(1, std::memory_order_relaxed); break;
        default: c.s_other.fetch_add(1, std::memory_order_relaxed); break;
    }
    c.hist[bucket_of(us)].fetch_add(1, std::memory_order_relaxed);
    auto prev = c.max_us.load(std::memory_order_relaxed);
    while (us > prev && !c.max_us.compare_exchange_weak(prev, us, std::memory_order_relaxed)) {
    }
}

double percentile_ms(const counters& c, double p) {
    std::uint64_t n = 0;
    for (const auto& h : c.hist) n += h.load();
    if (n == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < n_buckets; ++b) {
        seen += c.hist[b].load();
        if (seen >= rank) return bucket_upper_ms(b);
    }
    return bucket_upper_ms(n_buckets - 1);
}

std::string line_of(const counters& c) {
    char buf[640];
    std::snprintf(
        buf,
        sizeof buf,
        "requests=%llu s200=%llu s400=%llu s402=%llu s403=%llu s429=%llu s500=%llu s503=%llu other=%llu "
        "transport_errors=%llu granted=%llu released=%llu release_404=%llu release_retries=%llu held=%llu "
        "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
        static_cast<unsigned long long>(c.requests.load()),
        static_cast<unsigned long long>(c.s200.load()),
        static_cast<unsigned long long>(c.s400.load()),
        static_cast<unsigned long long>(c.s402.load()),
        static_cast<unsigned long long>(c.s403.load()),
        static_cast<unsigned long long>(c.s429.load()),
        static_cast<unsigned long long>(c.s500.load()),
        static_cast<unsigned long long>(c.s503.load()),
        static_cast<unsigned long long>(c.s_other.load()),
        static_cast<unsigned long long>(c.transport_errors.load()),
        static_cast<unsigned long long>(c.granted.load()),
        static_cast<unsigned long long>(c.released.load()),
        static_cast<unsigned long long>(c.release_404.load()),
        static_cast<unsigned long long>(c.release_retries.load()),
        static_cast<unsigned long long>(c.held.load()),
        percentile_ms(c, 50),
        percentile_ms(c, 99),
        static_cast<double>(c.max_us.load()) / 1000.0
    );
    return buf;
}

// One keep-alive connection; reconnects after any transport error.
class connection {
public:
    connection(const options& opt) : opt_(opt) {}

    // Sends one request; returns the status (0 on a transport error) and the body.
    std::pair<unsigned, std::string> send(http::verb verb, const std::string& target, const std::string& body) {
        boost::system::error_code ec;
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!socket_.is_open()) {
                tcp::endpoint ep(asio::ip::make_address(opt_.host), opt_.port);
                socket_.connect(ep, ec);
                if (ec) {
                    socket_ = tcp::socket(ctx_);
                    return {0, ec.message()};
                }
                socket_.set_option(tcp::no_delay(true));
            }
            http::request<http::string_body> req{verb, target, 11};
            req.set(http::field::host, opt_.host);
            req.set(http::field::content_type, "application/json");
            req.body() = body;
            req.prepare_payload();
            http::write(socket_, req, ec);
            if (!ec) {
                http::response<http::string_body> res;
                buffer_.clear();
                http::read(socket_, buffer_, res, ec);
                if (!ec) {
                    if (!res.keep_alive()) close();
                    return {res.result_int(), std::move(res.body())};
                }
            }
            close();
            // A keep-alive connection the server closed (idle timeout) fails at once: retry once on a new one.
        }
        return {0, ec.message()};
    }

    void close() {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        socket_ = tcp::socket(ctx_);
    }

private:
    const options& opt_;
    asio::io_context ctx_;
    tcp::socket socket_{ctx_};
    boost::beast::flat_buffer buffer_;
};

struct hot_tenant {
    const char* user;
    const char* org;
};
constexpr std::array<hot_tenant, 6> hot{{
    {"user_alice", "org_acme"},
    {"user_bob", "org_acme"},
    {"user_carol", "org_capped"},
    {"user_dave", "org_nobilling"},
    {"user_banned", "org_acme"},
    {"user_alice", "org_acme"},
}};

std::string field(const boost::json::value& v, const char* a, const char* b) {
    const auto* o = v.if_object();
    if (!o) return "";
    const auto* x = o->if_contains(a);
    if (!x || !x->is_object()) return "";
    const auto* y = x->get_object().if_contains(b);
    if (!y || !y->is_string()) return "";
    return std::string(y->get_string());
}

void worker(shared_state& st, int id) {
    const auto& opt = st.opt;
    connection conn(opt);
    std::mt19937_64 rng(0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(id + 1));
    std::uniform_int_distribution<int> pct(0, 99);
    std::uint64_t n = 0;
    std::deque<std::pair<std::string, steady::time_point>> retry;  // releases answered 503
    const auto interval =
        opt.rate > 0 ? std::chrono::duration<double>(opt.connections / opt.rate) : std::chrono::duration<double>(0);
    auto next = steady::now();
    static std::atomic<std::uint64_t> granted_seq{0};

    auto do_release = [&](const std::string& lease) -> bool {  // true: done (200/404)
        const auto [status, body] = conn.send(http::verb::post, "/v1/leases/" + lease + "/release", "");
        if (status == 200) {
            st.total.released.fetch_add(1);
            st.interval.released.fetch_add(1);
            return true;
        }
        if (status == 404) {
            st.total.release_404.fetch_add(1);
            st.interval.release_404.fetch_add(1);
            return true;
        }
        return false;
    };

    while (!st.stop.load(std::memory_order_relaxed)) {
        if (interval.count() > 0) {
            next += std::chrono::duration_cast<steady::duration>(interval);
            const auto now = steady::now();
            if (next > now)
                std::this_thread::sleep_until(next);
            else if (now - next > std::chrono::seconds{1})
                next = now;  // do not burst after a stall
        }
        // Retry pending releases first.
        while (!retry.empty() && retry.front().second <= steady::now()) {
            auto lease = retry.front().first;
            retry.pop_front();
            st.total.release_retries.fetch_add(1);
            st.interval.release_retries.fetch_add(1);
            if (do_release(lease)) {
                st.pending_releases.fetch_sub(1);
            } else {
                retry.emplace_back(std::move(lease), steady::now() + std::chrono::milliseconds{100});
            }
        }
        std::string user, org;
        if (pct(rng) < opt.fresh) {
            user = "u-" + std::to_string(id) + "-" + std::to_string(n);
            org = "o-" + std::to_string(id) + "-" + std::to_string(n);
        } else {
            const auto& t = hot[static_cast<std::size_t>(rng() % hot.size())];
            user = t.user;
            org = t.org;
        }
        ++n;
        const bool read = pct(rng) < opt.read;
        std::string body = std::string(R"({"operation":")") + (read ? "read" : "execute") + R"(","subject":{"user":")" +
                           user + R"(","org":")" + org + R"("}})";
        const auto t0 = steady::now();
        auto [status, text] = conn.send(http::verb::post, "/v1/preflight", body);
        const auto us =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count()
            );
        add(st.total, status, us);
        add(st.interval, status, us);
        boost::system::error_code jec;
        const auto doc = status != 0 ? boost::json::parse(text, jec) : boost::json::value{};
        if (status == 200) {
            const auto* o = doc.if_object();
            const auto* l = o ? o->if_contains("lease_id") : nullptr;
            if (l && l->is_string()) {
                st.total.granted.fetch_add(1);
                st.interval.granted.fetch_add(1);
                std::string lease(l->get_string());
                const auto seq = granted_seq.fetch_add(1) + 1;
                if (opt.hold_every > 0 && seq % opt.hold_every == 0) {
                    st.total.held.fetch_add(1);
                    st.interval.held.fetch_add(1);
                    std::lock_guard lock(st.held_mutex);
                    st.held_ids.push_back(std::move(lease));
                } else if (pct(rng) < opt.release) {
                    if (!do_release(lease)) {
                        st.pending_releases.fetch_add(1);
                        retry.emplace_back(std::move(lease), steady::now() + std::chrono::milliseconds{100});
                    }
                }
            }
        } else {
            std::string key = std::to_string(status);
            if (status == 0)
                key += " transport " + text;
            else
                key += " " + field(doc, "error", "gate") + " " + field(doc, "error", "code") +
                       (read ? " read" : " execute");
            std::lock_guard lock(st.reasons_mutex);
            ++st.reasons[key];
        }
    }
    // Drain: keep retrying pending releases for up to 30 s after the end.
    const auto give_up = steady::now() + std::chrono::seconds{30};
    while (!retry.empty() && steady::now() < give_up) {
        auto lease = retry.front().first;
        retry.pop_front();
        if (do_release(lease)) {
            st.pending_releases.fetch_sub(1);
        } else {
            retry.emplace_back(std::move(lease), steady::now());
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
        }
    }
}

bool parse_args(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return false;
        const std::string v = argv[++i];
        if (a == "--host")
            o.host = v;
        else if (a == "--port")
            o.port = static_cast<std::uint16_t>(std::stoul(v));
        else if (a == "--seconds")
            o.seconds = std::stod(v);
        else if (a == "--connections")
            o.connections = std::stoi(v);
        else if (a == "--rate")
            o.rate = std::stod(v);
        else if (a == "--fresh")
            o.fresh = std::stoi(v);
        else if (a == "--read")
            o.read = std::stoi(v);
        else if (a == "--release")
            o.release = std::stoi(v);
        else if (a == "--hold-every")
            o.hold_every = std::stoull(v);
        else if (a == "--report-ms")
            o.report_ms = std::stoi(v);
        else if (a == "--held-file")
            o.held_file = v;
        else
            return false;
    }
    return o.port != 0 && o.connections > 0 && o.report_ms > 0;
}

}  // namespace

int main(int argc, char** argv) {
    shared_state st;
    try {
        if (!parse_args(argc, argv, st.opt)) {
            std::fprintf(
                stderr,
                "usage: reliab_load --port P [--host H] [--seconds S] [--connections C] [--rate R] "
                "[--fresh PCT] [--read PCT] [--release PCT] [--hold-every K] [--held-file F] [--report-ms MS]\n"
            );
            return 2;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "reliab_load: bad argument: %s\n", e.what());
        return 2;
    }
    const auto start = steady::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < st.opt.connections; ++i) threads.emplace_back([&st, i] { worker(st, i); });
    const auto end =
        start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(st.opt.seconds));
    auto next_report = start + std::chrono::milliseconds{st.opt.report_ms};
    while (steady::now() < end) {
        std::this_thread::sleep_until(std::min(next_report, end));
        if (steady::now() >= next_report) {
            const double t = std::chrono::duration<double>(steady::now() - start).count();
            std::printf(
                "INTERVAL t=%.1f %s pending_releases=%llu\n",
                t,
                line_of(st.interval).c_str(),
                static_cast<unsigned long long>(st.pending_releases.load())
            );
            std::fflush(stdout);
            st.interval.reset_interval();
            next_report += std::chrono::milliseconds{st.opt.report_ms};
        }
    }
    st.stop.store(true);
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(steady::now() - start).count();
    if (!st.opt.held_file.empty()) {
        if (std::FILE* f = std::fopen(st.opt.held_file.c_str(), "w")) {
            for (const auto& id : st.held_ids) std::fprintf(f, "%s\n", id.c_str());
            std::fclose(f);
        } else {
            std::fprintf(stderr, "reliab_load: cannot write %s\n", st.opt.held_file.c_str());
            return 1;
        }
    }
    for (const auto& [k, v] : st.reasons)
        std::printf("REASON %s count=%llu\n", k.c_str(), static_cast<unsigned long long>(v));
    std::printf(
        "SUMMARY seconds=%.1f %s pending_releases=%llu rps=%.0f\n",
        secs,
        line_of(st.total).c_str(),
        static_cast<unsigned long long>(st.pending_releases.load()),
        static_cast<double>(st.total.requests.load()) / secs
    );
    return 0;
}
