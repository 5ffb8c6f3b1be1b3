#include <preflight/cache/deployed_state_cache.hpp>
#include <preflight/core/clock.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <run_coro.hpp>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::manual_clock;
using preflight::result;
using preflight::cache::deployed_state_cache;

json::value sample() {
    return json::parse(
        R"({"deploymentId":"dep_1","config":{"env":{"NODE_ENV":"production"},"replicas":3},"tags":["prod","web"]})"
    );
}

TEST(deployed_state_cache, mutating_a_clone_never_changes_another_reader_or_the_cache) {
    deployed_state_cache cache;
    cache.put("v1", sample());
    auto reader1 = cache.get("v1");
    auto reader2 = cache.get("v1");
    ASSERT_TRUE(reader1 && reader2);
    reader1->at("config").at("env").as_object()["NODE_ENV"] = "development";
    reader1->at("tags").as_array().push_back("mutated");
    reader1->as_object().erase("deploymentId");
    EXPECT_EQ(*reader2, sample());
    EXPECT_EQ(*cache.get("v1"), sample());
}

TEST(deployed_state_cache, clone_into_a_caller_resource_is_independent) {
    deployed_state_cache cache;
    cache.put("v1", sample());
    json::monotonic_resource mr;
    auto copy = cache.get("v1", &mr);
    ASSERT_TRUE(copy);
    EXPECT_EQ(*copy, sample());
    copy->at("config").as_object()["replicas"] = 9;
    EXPECT_EQ(*cache.get("v1"), sample());
}

TEST(deployed_state_cache, absolute_ttl_of_five_minutes_by_default) {
    manual_clock clk;
    deployed_state_cache cache({}, clk);
    cache.put("v1", sample());
    for (int i = 0; i < 4; ++i) {
        clk.advance(1min);
        ASSERT_TRUE(cache.get("v1")) << i;  // reads do not extend an absolute TTL
    }
    clk.advance(59s);
    EXPECT_TRUE(cache.get("v1"));
    clk.advance(1s);
    EXPECT_FALSE(cache.get("v1"));
}

TEST(deployed_state_cache, get_or_load_loads_once_then_clones) {
    deployed_state_cache cache;
    asio::io_context ctx;
    int calls = 0;
    auto load = [&]() -> asio::awaitable<result<json::value>> {
        ++calls;
        co_return sample();
    };
    auto first = preflight::test::run_coro(ctx, cache.get_or_load("v1", load));
    ASSERT_TRUE(first.has_value());
    first->as_object()["deploymentId"] = "changed";
    auto second = preflight::test::run_coro(ctx, cache.get_or_load("v1", load));
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(*second, sample());
    EXPECT_EQ(calls, 1);
}

TEST(deployed_state_cache, get_or_load_error_is_returned_and_not_cached) {
    deployed_state_cache cache;
    asio::io_context ctx;
    int calls = 0;
    auto failing = [&]() -> asio::awaitable<result<json::value>> {
        ++calls;
        co_return errc::store_unavailable;
    };
    auto r = preflight::test::run_coro(ctx, cache.get_or_load("v1", failing));
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), make_error_code(errc::store_unavailable));
    EXPECT_FALSE(cache.get("v1"));
    (void)preflight::test::run_coro(ctx, cache.get_or_load("v1", failing));
    EXPECT_EQ(calls, 2);
}

}  // namespace
