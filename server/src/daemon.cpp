#include <preflight/core/strand.hpp>
#include <preflight/server/daemon.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <future>
#include <iostream>
#include <memory>
#include <mutex>

namespace preflight::server {

namespace asio = boost::asio;

io_threads::io_threads(asio::io_context& ctx, std::size_t n) : ctx_(ctx), guard_(asio::make_work_guard(ctx)) {
    if (n == 0) n = std::max(1U, std::thread::hardware_concurrency());
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([&ctx] { ctx.run(); });
}

io_threads::~io_threads() {
    stop();
}

void io_threads::stop() {
    guard_.reset();
    ctx_.stop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
}

io_context_per_thread::io_context_per_thread(std::size_t n) {
    if (n == 0) n = std::max(1U, std::thread::hardware_concurrency());
    contexts_.reserve(n);
    guards_.reserve(n);
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        contexts_.push_back(std::make_unique<asio::io_context>(1));
        mark_single_threaded(*contexts_.back());
        guards_.push_back(asio::make_work_guard(*contexts_.back()));
    }
    for (auto& c : contexts_) threads_.emplace_back([ctx = c.get()] { ctx->run(); });
}

io_context_per_thread::~io_context_per_thread() {
    stop();
    while (!contexts_.empty()) contexts_.pop_back();  // last to first: context 0 (pools, signals) goes last
}

void io_context_per_thread::stop() {
    guards_.clear();
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
}

std::vector<asio::io_context*> io_context_per_thread::contexts() const {
    std::vector<asio::io_context*> out;
    out.reserve(contexts_.size());
    for (const auto& c : contexts_) out.push_back(c.get());
    return out;
}

namespace {

bool serve(
    asio::io_context& ctx,
    std::shared_ptr<http_server> server,
    api& a,
    const http_server_config& http,
    std::chrono::milliseconds drain_timeout,
    std::ostream& out
) {
    auto signals = std::make_shared<asio::signal_set>(ctx, SIGINT, SIGTERM);
    server->set_error_hook([](const std::string& text) { std::cerr << "preflightd: " << text << std::endl; });
    a.attach(*server);
    server->start();
    out << "preflightd listening on http://" << http.address << ":" << server->port() << std::endl;

    struct done_state {
        std::mutex mutex;
        std::promise<bool> done;
        bool set = false;
        void finish(bool drained) {
            std::lock_guard lock(mutex);
            if (set) return;
            set = true;
            done.set_value(drained);
        }
    };
    auto state = std::make_shared<done_state>();
    auto result = state->done.get_future();
    auto timer = std::make_shared<asio::steady_timer>(ctx);
    signals->async_wait([server, drain_timeout, state, timer](const boost::system::error_code& ec, int) {
        if (ec) return;
        server->stop([state] { state->finish(true); });
        timer->expires_after(drain_timeout);
        timer->async_wait([state](const boost::system::error_code& tec) {
            if (!tec) state->finish(false);
        });
    });
    const bool drained = result.get();
    // Cancel our pending operations on ctx's threads, and wait for that before the locals go away.
    std::promise<void> cancelled;
    asio::post(ctx, [&cancelled, signals = std::move(signals), timer]() mutable {
        boost::system::error_code ignored;
        signals->cancel(ignored);
        timer->cancel();
        signals.reset();
        cancelled.set_value();
    });
    cancelled.get_future().wait();
    return drained;
}

}  // namespace

bool serve_until_signal(
    asio::io_context& ctx,
    api& a,
    const http_server_config& http,
    std::chrono::milliseconds drain_timeout,
    std::ostream& out
) {
    return serve(ctx, std::make_shared<http_server>(ctx, http, a.handler()), a, http, drain_timeout, out);
}

bool serve_until_signal(
    io_context_per_thread& io,
    api& a,
    const http_server_config& http,
    std::chrono::milliseconds drain_timeout,
    std::ostream& out
) {
    auto server = std::make_shared<http_server>(io.main(), io.contexts(), http, a.handler());
    return serve(io.main(), std::move(server), a, http, drain_timeout, out);
}

}  // namespace preflight::server
