#include <preflight/core/strand.hpp>
#include <preflight/server/daemon.hpp>
#include <preflight/server/http_server.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using preflight::server::http_request;
using preflight::server::http_response;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A real server on a loopback socket, driven by blocking clients from the test thread.
class http_server_test : public ::testing::Test {
protected:
    void start(preflight::server::http_server_config cfg = {}) {
        cfg.port = 0;
        server_ = std::make_shared<preflight::server::http_server>(
            ctx_,
            cfg,
            [this](http_request req) -> asio::awaitable<http_response> {
                ++handled_;
                if (req.target() == "/throw") throw std::runtime_error("secret detail");
                if (req.target() == "/slow") {
                    asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
                    co_await t.async_wait(asio::use_awaitable);
                }
                co_return preflight::server::json_response(200, R"({"echo":")" + req.body() + R"("})");
            }
        );
        server_->start();
        runner_ = std::thread([this] { ctx_.run(); });
    }

    void TearDown() override {
        if (server_) {
            std::promise<void> drained;
            server_->stop([&] { drained.set_value(); });
            EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
        }
        ctx_.stop();
        if (runner_.joinable()) runner_.join();
    }

    tcp::socket connect() {
        tcp::socket s(client_ctx_);
        s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
        return s;
    }

    static http::response<http::string_body> roundtrip(tcp::socket& s, http::request<http::string_body> req) {
        req.prepare_payload();
        http::write(s, req);
        boost::beast::flat_buffer buf;
        http::response<http::string_body> res;
        http::read(s, buf, res);
        return res;
    }

    static http::request<http::string_body> post(std::string target, std::string body) {
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, "localhost");
        req.body() = std::move(body);
        return req;
    }

    asio::io_context ctx_;
    asio::io_context client_ctx_;
    std::shared_ptr<preflight::server::http_server> server_;
    std::thread runner_;
    std::atomic<int> handled_{0};
};

TEST_F(http_server_test, keep_alive_serves_many_requests_on_one_connection) {
    start();
    auto s = connect();
    for (int i = 0; i < 3; ++i) {
        auto res = roundtrip(s, post("/x", "n" + std::to_string(i)));
        EXPECT_EQ(res.result_int(), 200);
        EXPECT_EQ(res.body(), R"({"echo":"n)" + std::to_string(i) + R"("})");
        EXPECT_TRUE(res.keep_alive());
    }
    EXPECT_EQ(handled_.load(), 3);
}

// The answer's head is written by the server itself (not Beast's serializer): byte for byte what Beast writes for
// the same message (built as the server builds it), HTTP/1.1 and HTTP/1.0.
TEST_F(http_server_test, the_answer_on_the_wire_is_beasts_serialisation) {
    start();
    for (const unsigned version : {11U, 10U}) {
        auto s = connect();
        auto req = post("/x", "abc");
        req.version(version);
        req.keep_alive(false);  // the server closes after the answer: read to the end
        req.prepare_payload();
        http::write(s, req);
        std::string wire;
        boost::system::error_code ec;
        asio::read(s, asio::dynamic_buffer(wire), ec);
        EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
        auto expected = preflight::server::json_response(200, R"({"echo":"abc"})");
        expected.version(version);
        expected.keep_alive(false);
        expected.prepare_payload();
        std::ostringstream beast;
        beast << expected;
        EXPECT_EQ(wire, beast.str()) << "HTTP/" << version / 10 << "." << version % 10;
    }
}

TEST_F(http_server_test, body_over_limit_is_413_and_handler_not_called) {
    preflight::server::http_server_config cfg;
    cfg.max_body_bytes = 1024;
    start(cfg);
    auto s = connect();
    auto res = roundtrip(s, post("/x", std::string(2048, 'a')));
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_NE(res.body().find("payload_too_large"), std::string::npos);
    EXPECT_EQ(handled_.load(), 0);
    EXPECT_EQ(server_->stats().too_large.load(), 1u);
}

TEST_F(http_server_test, malformed_request_is_400) {
    start();
    auto s = connect();
    asio::write(s, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(handled_.load(), 0);
}

TEST_F(http_server_test, handler_exception_is_500_without_detail) {
    start();
    std::string seen;
    auto s = connect();
    auto res = roundtrip(s, post("/throw", ""));
    EXPECT_EQ(res.result_int(), 500);
    EXPECT_EQ(res.body().find("secret detail"), std::string::npos);
    EXPECT_EQ(server_->stats().handler_errors.load(), 1u);
}

TEST_F(http_server_test, idle_client_times_out_and_others_are_served) {
    preflight::server::http_server_config cfg;
    cfg.read_timeout = 300ms;
    start(cfg);
    auto idle = connect();  // sends nothing
    auto active = connect();
    EXPECT_EQ(roundtrip(active, post("/x", "a")).result_int(), 200);
    // The idle connection is closed by the server: a read sees EOF.
    char byte;
    boost::system::error_code ec;
    asio::read(idle, asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    // Beast closes the socket when the timer fires, before the session counts the timeout: wait for it.
    for (int i = 0; i < 2000 && server_->stats().timeouts.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(server_->stats().timeouts.load(), 1u);
}

TEST_F(http_server_test, stop_drains_in_flight_request_then_closes) {
    start();
    auto s = connect();
    auto req = post("/slow", "x");
    req.prepare_payload();
    http::write(s, req);
    // Wait until the handler is running, then stop: the in-flight request still gets its answer.
    for (int i = 0; i < 500 && handled_.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    std::promise<void> drained;
    server_->stop([&] { drained.set_value(); });
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
    server_.reset();
}

// A client that sent only part of a request (its head, or its head and part of the body) does not hold the drain
// for the read timeout: stop() closes it at once. The bound below is a tenth of the read timeout.
TEST_F(http_server_test, stop_closes_half_sent_requests_at_once) {
    preflight::server::http_server_config cfg;
    cfg.read_timeout = 60s;
    cfg.idle_timeout = 60s;
    start(cfg);
    auto head_only = connect();
    asio::write(head_only, asio::buffer(std::string_view("POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Le")));
    auto part_body = connect();
    asio::write(
        part_body, asio::buffer(std::string_view("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc"))
    );
    auto served = connect();
    EXPECT_EQ(roundtrip(served, post("/x", "a")).result_int(), 200);  // the server has read what the others sent
    std::promise<void> drained;
    server_->stop([&] { drained.set_value(); });
    EXPECT_EQ(drained.get_future().wait_for(6s), std::future_status::ready);
    for (auto* s : {&head_only, &part_body}) {
        char byte;
        boost::system::error_code ec;
        asio::read(*s, asio::buffer(&byte, 1), ec);  // closed without an answer
        EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    }
    EXPECT_EQ(handled_.load(), 1);
    EXPECT_EQ(server_->stats().bad_requests.load(), 0u);
    server_.reset();
}

// One thread runs ctx_ here, so the server may skip its per-connection strands: keep-alive, concurrent connections
// and the drain behave the same.
TEST_F(http_server_test, single_threaded_mode_serves_keep_alive_and_drains) {
    preflight::server::http_server_config cfg;
    cfg.single_threaded = true;
    start(cfg);
    auto a = connect();
    auto b = connect();
    for (int i = 0; i < 3; ++i) {
        auto ra = roundtrip(a, post("/a", "a" + std::to_string(i)));
        auto rb = roundtrip(b, post("/b", "b" + std::to_string(i)));
        EXPECT_EQ(ra.body(), R"({"echo":"a)" + std::to_string(i) + R"("})");
        EXPECT_EQ(rb.body(), R"({"echo":"b)" + std::to_string(i) + R"("})");
        EXPECT_TRUE(ra.keep_alive());
    }
    auto req = post("/slow", "x");
    req.prepare_payload();
    http::write(a, req);
    for (int i = 0; i < 500 && handled_.load() < 7; ++i) std::this_thread::sleep_for(1ms);
    std::promise<void> drained;
    server_->stop([&] { drained.set_value(); });
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(a, buf, res);  // the in-flight request is answered, then the connection closes
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_FALSE(res.keep_alive());
    char byte;
    boost::system::error_code ec;
    asio::read(b, asio::buffer(&byte, 1), ec);  // the idle one is closed
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
    server_.reset();
}

// Connections spread over single-threaded io_contexts (as preflightd runs them): round robin, each connection's
// handlers on its own context's thread; keep-alive and the drain behave the same.
// (The fixture serves only its client helpers here: this server has contexts of its own.)
TEST_F(http_server_test, spread_connections_go_round_robin_over_the_contexts_and_drain) {
    preflight::server::io_context_per_thread io(2);
    ASSERT_EQ(io.size(), 2U);
    std::mutex m;
    std::map<std::string, std::set<std::thread::id>> threads;  // connection (target) -> threads that served it
    preflight::server::http_server_config cfg;
    cfg.port = 0;
    auto server = std::make_shared<preflight::server::http_server>(
        io.main(),
        io.contexts(),
        cfg,
        [&](http_request req) -> asio::awaitable<http_response> {
            {
                std::lock_guard lock(m);
                threads[std::string(req.target())].insert(std::this_thread::get_id());
            }
            co_return preflight::server::json_response(200, R"({"echo":")" + req.body() + R"("})");
        }
    );
    server->start();
    auto connect = [&] {
        tcp::socket s(client_ctx_);
        s.connect({asio::ip::make_address("127.0.0.1"), server->port()});
        return s;
    };
    auto echo = [](tcp::socket& s, const std::string& target, int i) {
        auto res = roundtrip(s, post(target, std::to_string(i)));
        EXPECT_EQ(res.result_int(), 200);
        EXPECT_EQ(res.body(), R"({"echo":")" + std::to_string(i) + R"("})");
        EXPECT_TRUE(res.keep_alive());
    };
    auto a = connect();
    for (int i = 0; i < 3; ++i) echo(a, "/a", i);  // accepted first: context 0
    auto b = connect();
    for (int i = 0; i < 3; ++i) echo(b, "/b", i);  // then context 1
    {
        std::lock_guard lock(m);
        ASSERT_EQ(threads["/a"].size(), 1U);
        ASSERT_EQ(threads["/b"].size(), 1U);
        EXPECT_NE(*threads["/a"].begin(), *threads["/b"].begin());
    }
    std::promise<void> drained;
    server->stop([&] { drained.set_value(); });
    char byte;
    boost::system::error_code ec;
    asio::read(a, asio::buffer(&byte, 1), ec);  // idle connections on either context are closed
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    asio::read(b, asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
    io.stop();
    server.reset();
}

TEST(http_server_spread, rejects_an_empty_or_null_context_list) {
    asio::io_context ctx;
    preflight::server::http_server_config cfg;
    cfg.port = 0;
    auto handler = [](http_request) -> asio::awaitable<http_response> {
        co_return preflight::server::json_response(200, "{}");
    };
    EXPECT_THROW(preflight::server::http_server(ctx, {}, cfg, handler), std::invalid_argument);
    EXPECT_THROW(preflight::server::http_server(ctx, {&ctx, nullptr}, cfg, handler), std::invalid_argument);
}

TEST(io_context_per_thread, marks_each_context_single_threaded_and_zero_means_the_hardware_threads) {
    preflight::server::io_context_per_thread io(3);
    ASSERT_EQ(io.size(), 3U);
    EXPECT_EQ(&io.main(), &io.context(0));
    EXPECT_EQ(io.contexts().size(), 3U);
    for (std::size_t i = 0; i < io.size(); ++i) {
        EXPECT_TRUE(preflight::runs_serially(io.context(i).get_executor())) << i;
        std::promise<std::thread::id> ran;
        asio::post(io.context(i), [&] { ran.set_value(std::this_thread::get_id()); });
        EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
    }
    EXPECT_THROW((void)io.context(3), std::out_of_range);
    io.stop();
    io.stop();  // idempotent
    EXPECT_EQ(preflight::server::io_context_per_thread(0).size(), std::max(1U, std::thread::hardware_concurrency()));
}

}  // namespace
