#include <preflight/clients/pqxx_pool.hpp>

#include <algorithm>
#include <stdexcept>

namespace preflight::clients {

struct pqxx_pool::slot {
    std::unique_ptr<pqxx::connection> conn;
    bool busy = false;
};

pqxx_pool::pqxx_pool(pqxx_pool_params params)
    : params_{std::move(params)}, threads_{params_.size == 0 ? 1 : params_.size} {
    if (params_.size == 0) throw std::invalid_argument("pqxx_pool: size must be >= 1, got 0");
    slots_.reserve(params_.size);
    for (std::size_t i = 0; i < params_.size; ++i) slots_.push_back(std::make_unique<slot>());
}

pqxx_pool::~pqxx_pool() {
    threads_.join();
}

std::size_t pqxx_pool::connects() const noexcept {
    std::lock_guard g{mu_};
    return connects_;
}

pqxx::connection& pqxx_pool::connection_of(slot& s) noexcept {
    return *s.conn;
}

// As many threads as connections: a pool thread always finds a free slot, so the only wait is the queue of the
// thread pool itself, bounded here by wait_timeout.
std::string pqxx_pool::conninfo_with_timeout() const {
    const long long secs = std::max<long long>(1, (params_.connect_timeout.count() + 999) / 1000);
    const std::string opt = "connect_timeout=" + std::to_string(secs);
    const std::string& url = params_.url;
    if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return url + (url.find('?') == std::string::npos ? "?" : "&") + opt;
    }
    return url + (url.empty() ? "" : " ") + opt;
}

result<pqxx_pool::slot*> pqxx_pool::acquire(std::chrono::steady_clock::time_point queued) {
    if (std::chrono::steady_clock::now() - queued > params_.wait_timeout) return errc::pool_exhausted;
    slot* s = nullptr;
    {
        std::lock_guard g{mu_};
        for (auto& c : slots_) {
            if (!c->busy) {
                c->busy = true;
                s = c.get();
                break;
            }
        }
    }
    if (s == nullptr) return errc::pool_exhausted;
    if (s->conn && s->conn->is_open()) return s;
    try {
        auto c = std::make_unique<pqxx::connection>(conninfo_with_timeout());
        if (params_.statement_timeout.count() > 0) {
            c->set_variable("statement_timeout", std::to_string(params_.statement_timeout.count()));
        }
        s->conn = std::move(c);
        std::lock_guard g{mu_};
        ++connects_;
    } catch (const std::exception&) {
        give_back(s, true);
        return errc::store_unavailable;
    }
    return s;
}

void pqxx_pool::give_back(slot* s, bool broken) noexcept {
    std::unique_ptr<pqxx::connection> dropped;
    std::lock_guard g{mu_};
    if (broken) dropped = std::move(s->conn);
    s->busy = false;
}

boost::system::error_code pqxx_pool::classify(const std::exception& e) noexcept {
    if (const auto* q = dynamic_cast<const pqxx::sql_error*>(&e); q != nullptr && q->sqlstate() == "57014") {
        return errc::timeout;  // query_canceled: statement_timeout
    }
    return errc::store_unavailable;
}

}  // namespace preflight::clients
