#include <preflight/server/lease_registry.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <run_coro.hpp>

namespace {

namespace asio = boost::asio;
namespace g = preflight::gates;
using preflight::server::lease_registry;
using preflight::server::release_status;
using namespace std::chrono_literals;

struct counts {
    std::atomic<int> released{0};
    bool fail = false;
};

g::lease make_lease(asio::io_context& ctx, std::string id, std::shared_ptr<counts> c) {
    g::release_function fn = [c]() -> asio::awaitable<preflight::result<void>> {
        ++c->released;
        if (c->fail) co_return make_error_code(preflight::errc::store_unavailable);
        co_return preflight::result<void>{};
    };
    return g::lease(std::move(id), std::move(fn), ctx.get_executor(), {});
}

TEST(lease_registry, release_once_then_already_released_then_unknown_after_expiry) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    lease_registry reg(10, 1000ms, clock);
    auto l = make_lease(ctx, "a", c);
    ASSERT_TRUE(reg.add(l));
    EXPECT_FALSE(l.held());  // moved into the registry
    EXPECT_EQ(reg.held(), 1u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::released);
    EXPECT_EQ(c->released.load(), 1);
    EXPECT_EQ(reg.held(), 0u);
    EXPECT_EQ(reg.size(), 1u);  // tombstone
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::already_released);
    EXPECT_EQ(c->released.load(), 1);
    clock.advance(1000ms);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::unknown);
    EXPECT_EQ(reg.size(), 0u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("never")), release_status::unknown);
}

TEST(lease_registry, expired_leases_are_purged_and_make_room) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    lease_registry reg(2, 1000ms, clock);
    auto a = make_lease(ctx, "a", c);
    auto b = make_lease(ctx, "b", c);
    auto d = make_lease(ctx, "d", c);
    ASSERT_TRUE(reg.add(a));
    clock.advance(500ms);
    ASSERT_TRUE(reg.add(b));
    EXPECT_FALSE(reg.add(d));  // full
    EXPECT_TRUE(d.held());     // left with the caller
    clock.advance(500ms);      // "a" expires
    EXPECT_TRUE(reg.add(d));
    EXPECT_EQ(reg.size(), 2u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::unknown);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("b")), release_status::released);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("d")), release_status::released);
}

TEST(lease_registry, tombstones_do_not_take_held_capacity_and_are_bounded_too) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    lease_registry reg(1, 1000ms, clock, 1);
    auto a = make_lease(ctx, "a", c);
    auto b = make_lease(ctx, "b", c);
    ASSERT_TRUE(reg.add(a));
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::released);
    ASSERT_TRUE(reg.add(b));  // the tombstone of "a" does not count against held leases
    EXPECT_EQ(reg.size(), 2u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::already_released);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("b")), release_status::released);
    // At most `max_released` tombstones: "b"'s pushed "a"'s out.
    EXPECT_EQ(reg.size(), 1u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::unknown);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("b")), release_status::already_released);
    EXPECT_EQ(c->released.load(), 2);
}

TEST(lease_registry, rejects_duplicates_empty_leases_and_bad_parameters) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    lease_registry reg(4, 1000ms, clock);
    auto a = make_lease(ctx, "a", c);
    auto a2 = make_lease(ctx, "a", c);
    g::lease empty;
    ASSERT_TRUE(reg.add(a));
    EXPECT_FALSE(reg.add(a2));
    EXPECT_FALSE(reg.add(empty));
    EXPECT_THROW(lease_registry(0, 1000ms, clock), std::invalid_argument);
    EXPECT_THROW(lease_registry(1, 0ms, clock), std::invalid_argument);
}

TEST(lease_registry, failed_store_release_is_reported_and_the_lease_counts_as_released) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    c->fail = true;
    lease_registry reg(4, 1000ms, clock);
    auto a = make_lease(ctx, "a", c);
    ASSERT_TRUE(reg.add(a));
    boost::system::error_code ec;
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a", &ec)), release_status::failed);
    EXPECT_EQ(ec, make_error_code(preflight::errc::store_unavailable));
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("a")), release_status::already_released);
    EXPECT_EQ(c->released.load(), 1);
}

}  // namespace

// Renewal: the store extends the lease, then the registry does; the store saying "no longer live" drops it.
TEST(lease_registry, renew_extends_the_lease_in_the_store_and_here) {
    asio::io_context ctx;
    preflight::manual_clock clock;
    auto c = std::make_shared<counts>();
    auto live = std::make_shared<bool>(true);
    auto renewals = std::make_shared<int>(0);
    const auto make = [&](std::string id) {
        g::release_function fn = [c]() -> asio::awaitable<preflight::result<void>> {
            ++c->released;
            co_return preflight::result<void>{};
        };
        g::renew_function renew = [live, renewals]() -> asio::awaitable<preflight::result<bool>> {
            ++*renewals;
            co_return *live;
        };
        return g::lease(std::move(id), std::move(fn), ctx.get_executor(), {}, g::lease_hooks{std::move(renew), {}, {}});
    };
    lease_registry reg(10, 1000ms, clock);
    auto a = make("a");
    ASSERT_TRUE(reg.add(a));
    for (int i = 0; i < 3; ++i) {
        clock.advance(800ms);
        EXPECT_EQ(preflight::test::run_coro(ctx, reg.renew("a")), preflight::server::renew_status::renewed);
    }
    EXPECT_EQ(*renewals, 3);
    EXPECT_EQ(reg.held(), 1u) << "2400 ms after it was added, with a 1000 ms ttl";
    clock.advance(1000ms);  // no renewal for a ttl: gone
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.renew("a")), preflight::server::renew_status::unknown);
    EXPECT_EQ(*renewals, 3);

    auto b = make("b");
    ASSERT_TRUE(reg.add(b));
    *live = false;  // the store let it expire
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.renew("b")), preflight::server::renew_status::expired);
    EXPECT_EQ(reg.held(), 0u);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("b")), release_status::unknown);

    *live = true;
    auto d = make("d");
    ASSERT_TRUE(reg.add(d));
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.release("d")), release_status::released);
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.renew("d")), preflight::server::renew_status::released);
    auto e = make_lease(ctx, "e", c);  // no renew function
    ASSERT_TRUE(reg.add(e));
    boost::system::error_code ec;
    EXPECT_EQ(preflight::test::run_coro(ctx, reg.renew("e", &ec)), preflight::server::renew_status::failed);
    EXPECT_EQ(ec, make_error_code(preflight::errc::bad_input));
}
