#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/core/clock.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using preflight::manual_clock;
using preflight::cache::ttl_lru_cache;
using preflight::cache::ttl_lru_params;
using preflight::cache::ttl_mode;

ttl_lru_params one_shard(std::size_t capacity, preflight::clock::duration ttl, ttl_mode mode) {
    ttl_lru_params p;
    p.capacity = capacity;
    p.ttl = ttl;
    p.mode = mode;
    p.shards = 1;
    return p;
}

TEST(ttl_lru_cache, absolute_ttl_expires_at_insertion_plus_ttl_even_when_read_constantly) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(10, 10s, ttl_mode::absolute), clk);
    cache.put("k", 1);
    for (int i = 0; i < 9; ++i) {
        clk.advance(1s);
        ASSERT_NE(cache.get("k"), nullptr) << "after " << (i + 1) << " s";
    }
    clk.advance(999ms);
    EXPECT_NE(cache.get("k"), nullptr);  // 9.999 s after insertion
    clk.advance(1ms);
    EXPECT_EQ(cache.get("k"), nullptr);  // exactly insertion + ttl
    const auto st = cache.stats();
    EXPECT_EQ(st.hits, 10u);
    EXPECT_EQ(st.misses, 1u);
    EXPECT_EQ(st.expirations, 1u);
    EXPECT_EQ(st.size, 0u);
}

TEST(ttl_lru_cache, absolute_ttl_restarts_when_the_value_is_replaced) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(10, 10s, ttl_mode::absolute), clk);
    cache.put("k", 1);
    clk.advance(8s);
    cache.put("k", 2);
    clk.advance(8s);
    auto v = cache.get("k");
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, 2);
    clk.advance(2s);
    EXPECT_EQ(cache.get("k"), nullptr);
}

TEST(ttl_lru_cache, idle_ttl_survives_while_read_and_expires_after_idle_period) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(10, 10s, ttl_mode::idle), clk);
    cache.put("k", 1);
    for (int i = 0; i < 10; ++i) {
        clk.advance(9s);
        ASSERT_NE(cache.get("k"), nullptr) << "read " << i;  // 90 s in total, far beyond the TTL
    }
    clk.advance(10s);
    EXPECT_EQ(cache.get("k"), nullptr);
    EXPECT_EQ(cache.stats().expirations, 1u);
}

TEST(ttl_lru_cache, idle_ttl_is_extended_by_visit_too) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(10, 10s, ttl_mode::idle), clk);
    cache.put("k", 7);
    clk.advance(9s);
    int seen = 0;
    EXPECT_TRUE(cache.visit("k", [&](const int& v) { seen = v; }));
    EXPECT_EQ(seen, 7);
    clk.advance(9s);
    EXPECT_NE(cache.get("k"), nullptr);
}

TEST(ttl_lru_cache, capacity_eviction_order_is_lru) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(3, 1h, ttl_mode::absolute), clk);
    cache.put("a", 1);
    cache.put("b", 2);
    cache.put("c", 3);
    ASSERT_NE(cache.get("a"), nullptr);  // order, most recent first: a c b
    cache.put("d", 4);                   // evicts b
    EXPECT_EQ(cache.get("b"), nullptr);
    EXPECT_NE(cache.get("c"), nullptr);  // order: c d a
    EXPECT_NE(cache.get("d"), nullptr);  // order: d c a
    cache.put("e", 5);                   // evicts a
    EXPECT_EQ(cache.get("a"), nullptr);
    cache.put("c", 33);  // replacing touches: c e d
    cache.put("f", 6);   // evicts d
    EXPECT_EQ(cache.get("d"), nullptr);
    ASSERT_NE(cache.get("c"), nullptr);
    EXPECT_EQ(*cache.get("c"), 33);
    EXPECT_NE(cache.get("e"), nullptr);
    EXPECT_NE(cache.get("f"), nullptr);
    EXPECT_EQ(cache.size(), 3u);

    const auto st = cache.stats();
    EXPECT_EQ(st.evictions, 3u);
    EXPECT_EQ(st.expirations, 0u);
    EXPECT_EQ(st.inserts, 7u);  // a b c d e c f
    EXPECT_EQ(st.misses, 3u);   // b a d
    EXPECT_EQ(st.hits, 7u);     // a c d c c e f
    EXPECT_EQ(st.size, 3u);
}

TEST(ttl_lru_cache, expired_lru_entry_counts_as_expiration_not_eviction) {
    manual_clock clk;
    ttl_lru_cache<std::string, int> cache(one_shard(2, 10s, ttl_mode::absolute), clk);
    cache.put("a", 1);
    clk.advance(5s);
    cache.put("b", 2);
    clk.advance(6s);    // a expired, b live
    cache.put("c", 3);  // drops a
    const auto st = cache.stats();
    EXPECT_EQ(st.expirations, 1u);
    EXPECT_EQ(st.evictions, 0u);
    EXPECT_NE(cache.get("b"), nullptr);
    EXPECT_NE(cache.get("c"), nullptr);
}

TEST(ttl_lru_cache, sharded_capacity_is_a_hard_bound) {
    ttl_lru_params p;
    p.capacity = 100;
    p.shards = 8;
    ttl_lru_cache<std::string, int> cache(p);
    for (int i = 0; i < 10000; ++i) cache.put("key:" + std::to_string(i), i);
    EXPECT_LE(cache.size(), 100u);
    const auto st = cache.stats();
    EXPECT_EQ(st.inserts, 10000u);
    EXPECT_EQ(st.evictions, 10000u - st.size);
}

TEST(ttl_lru_cache, shared_reads_outlive_eviction) {
    ttl_lru_cache<std::string, std::vector<int>> cache(one_shard(1, 1h, ttl_mode::absolute));
    cache.put("a", std::vector<int>{1, 2, 3});
    auto held = cache.get("a");
    cache.put("b", std::vector<int>{4});  // evicts a
    EXPECT_EQ(cache.get("a"), nullptr);
    ASSERT_NE(held, nullptr);
    EXPECT_EQ(*held, (std::vector<int>{1, 2, 3}));
}

TEST(ttl_lru_cache, mutating_a_clone_changes_nothing_else) {
    ttl_lru_cache<std::string, std::vector<int>> cache(one_shard(4, 1h, ttl_mode::absolute));
    cache.put("a", std::vector<int>{1, 2, 3});
    auto shared = cache.get("a");
    auto clone = cache.get_clone("a");
    ASSERT_TRUE(clone.has_value());
    clone->push_back(4);
    (*clone)[0] = 100;
    EXPECT_EQ(*shared, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(*cache.get("a"), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(*cache.get_clone("a"), (std::vector<int>{1, 2, 3}));
    EXPECT_FALSE(cache.get_clone("missing").has_value());
}

TEST(ttl_lru_cache, put_if_absent_keeps_the_live_entry) {
    ttl_lru_cache<std::string, int> cache(one_shard(4, 1h, ttl_mode::absolute));
    auto first = cache.put_if_absent("k", std::make_shared<const int>(1));
    auto second = cache.put_if_absent("k", std::make_shared<const int>(2));
    EXPECT_EQ(first, second);
    EXPECT_EQ(*cache.get("k"), 1);
}

TEST(ttl_lru_cache, erase_and_clear) {
    ttl_lru_cache<std::string, int> cache(one_shard(4, 1h, ttl_mode::absolute));
    cache.put("a", 1);
    cache.put("b", 2);
    EXPECT_TRUE(cache.erase("a"));
    EXPECT_FALSE(cache.erase("a"));
    EXPECT_EQ(cache.get("a"), nullptr);
    cache.clear();
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.get("b"), nullptr);
    cache.put("c", 3);  // nodes are reused after clear
    EXPECT_EQ(*cache.get("c"), 3);
}

TEST(ttl_lru_cache, integer_keys_work) {
    ttl_lru_params p;
    p.capacity = 64;
    ttl_lru_cache<int, int> cache(p);
    for (int i = 0; i < 64; ++i) cache.put(i, i * 2);
    for (int i = 0; i < 64; ++i) {
        auto v = cache.get(i);
        ASSERT_NE(v, nullptr) << i;
        EXPECT_EQ(*v, i * 2);
    }
}

TEST(ttl_lru_cache, rejects_bad_params_naming_the_value) {
    ttl_lru_params p;
    p.capacity = 0;
    EXPECT_THROW((ttl_lru_cache<std::string, int>(p)), std::invalid_argument);
    p.capacity = 1;
    p.ttl = -5s;
    try {
        ttl_lru_cache<std::string, int> cache(p);
        FAIL() << "expected invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("-5000 ms"), std::string::npos) << e.what();
    }
}

TEST(ttl_lru_cache, concurrent_writers_and_readers_keep_the_capacity_bound) {
    ttl_lru_params p;
    p.capacity = 50;
    p.shards = 4;
    ttl_lru_cache<std::string, int> cache(p);
    auto work = [&](int seed) {
        for (int i = 0; i < 20000; ++i) {
            const std::string key = "k" + std::to_string((i * 7919 + seed) % 300);
            switch (i % 4) {
                case 0:
                case 1: cache.put(key, i); break;
                case 2: (void)cache.get(key); break;
                default:
                    if (i % 40 == 3) {
                        (void)cache.erase(key);
                    } else {
                        (void)cache.put_if_absent(key, std::make_shared<const int>(i));
                    }
            }
        }
    };
    std::thread a(work, 1), b(work, 2);
    a.join();
    b.join();
    EXPECT_LE(cache.size(), 50u);
    const auto st = cache.stats();
    EXPECT_EQ(st.size, cache.size());
    EXPECT_GT(st.evictions, 0u);
    EXPECT_EQ(st.hits + st.misses, 2u * (5000u + 5000u - 500u));  // get + put_if_absent lookups
}

TEST(ttl_lru_cache, null_value_is_rejected) {
    ttl_lru_cache<std::string, int> cache;
    EXPECT_THROW(cache.put("k", std::shared_ptr<const int>{}), std::invalid_argument);
}

}  // namespace
