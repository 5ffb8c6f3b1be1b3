#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/limits/limit_chain.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

// Conformance suite of `preflight::limits::limit_chain`: the parts in order, the first denial stops the chain, a
// later part is never written, the earlier ones are given back, an error applies nothing. Every expectation is
// checked through the chain itself (a later one-part chain shows what an earlier chain left behind), so the suite
// runs unchanged on every implementation. Long windows and slow buckets (nothing refills during a test).
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class limit_chain_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    result<limits::chain_result> apply(limits::chain_request req) { return run(io_, factory_.store().apply(req)); }

    limits::chain_result ok(limits::chain_request req) {
        auto r = apply(std::move(req));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : limits::chain_result{};
    }

    // One-part chains.
    static limits::chain_request window(const std::string& key, std::uint64_t max, std::uint64_t n = 1) {
        limits::chain_request q;
        q.window = limits::chain_request::window_part{key, limits::window_limit{max, 3600s}, n};
        return q;
    }
    static limits::chain_request bucket(const std::string& key, double burst, std::uint32_t quantity = 1) {
        limits::chain_request q;
        q.bucket = limits::chain_request::bucket_part{key, limits::bucket_limit{0.001, burst}, quantity};
        return q;
    }
    static limits::chain_request admission(const std::string& key, std::uint32_t max) {
        limits::chain_request q;
        q.admission = limits::chain_request::admission_part{key, max, 3600s};
        return q;
    }
    // All three parts.
    static limits::chain_request all(
        const std::string& k,
        std::uint64_t window_max,
        double burst,
        std::uint32_t slots,
        std::uint64_t n = 1,
        std::uint32_t quantity = 1
    ) {
        limits::chain_request q;
        q.window = window(k + ":w", window_max, n).window;
        q.bucket = bucket(k + ":b", burst, quantity).bucket;
        q.admission = admission(k + ":a", slots).admission;
        return q;
    }

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(limit_chain_conformance);

TYPED_TEST_P(limit_chain_conformance, every_part_passes_and_stands) {
    const auto k = unique_key("c");
    auto r = this->ok(this->all(k, 5, 3, 2));
    EXPECT_TRUE(r.allowed());
    ASSERT_TRUE(r.window && r.bucket && r.admission);
    EXPECT_TRUE(r.window->allowed);
    EXPECT_EQ(r.window->count, 1U);
    EXPECT_EQ(r.window->max, 5U);
    EXPECT_TRUE(r.bucket->allowed);
    EXPECT_EQ(r.bucket->remaining, 2.0);
    EXPECT_TRUE(r.admission->admitted);
    EXPECT_FALSE(r.admission->lease_id.empty());
    EXPECT_EQ(r.admission->in_use, 1U);
    // What it wrote stands: the next chain counts on top of it.
    auto s = this->ok(this->all(k, 5, 3, 2));
    EXPECT_TRUE(s.allowed());
    EXPECT_EQ(s.window->count, 2U);
    EXPECT_EQ(s.bucket->remaining, 1.0);
    EXPECT_EQ(s.admission->in_use, 2U);
    EXPECT_NE(s.admission->lease_id, r.admission->lease_id);
}

TYPED_TEST_P(limit_chain_conformance, a_window_denial_attempts_nothing_after_it) {
    const auto k = unique_key("c");
    auto r = this->ok(this->all(k, 1, 1, 1, /*n=*/2));
    EXPECT_FALSE(r.allowed());
    EXPECT_EQ(r.denied_by, limits::chain_part::window);
    ASSERT_TRUE(r.window);
    EXPECT_FALSE(r.window->allowed);
    EXPECT_FALSE(r.bucket);
    EXPECT_FALSE(r.admission);
    // The bucket's one token and the admission's one slot are still there.
    EXPECT_TRUE(this->ok(this->bucket(k + ":b", 1)).allowed());
    EXPECT_TRUE(this->ok(this->admission(k + ":a", 1)).allowed());
}

TYPED_TEST_P(limit_chain_conformance, a_bucket_denial_gives_the_window_back_and_takes_no_slot) {
    const auto k = unique_key("c");
    ASSERT_TRUE(this->ok(this->bucket(k + ":b", 1)).allowed());  // the bucket's only token
    auto r = this->ok(this->all(k, 1, 1, 1));
    EXPECT_EQ(r.denied_by, limits::chain_part::bucket);
    ASSERT_TRUE(r.window && r.bucket);
    EXPECT_TRUE(r.window->allowed);  // it passed ...
    EXPECT_EQ(r.window->count, 0U);  // ... and was given back
    EXPECT_FALSE(r.bucket->allowed);
    EXPECT_GT(r.bucket->retry_after, 0ns);
    EXPECT_FALSE(r.admission);  // never attempted
    // The window's one unit and the admission's one slot are free.
    EXPECT_TRUE(this->ok(this->window(k + ":w", 1)).allowed());
    auto a = this->ok(this->admission(k + ":a", 1));
    EXPECT_TRUE(a.allowed());
    EXPECT_EQ(a.admission->in_use, 1U);
}

TYPED_TEST_P(limit_chain_conformance, an_admission_denial_gives_the_window_and_the_bucket_back) {
    const auto k = unique_key("c");
    ASSERT_TRUE(this->ok(this->admission(k + ":a", 1)).allowed());  // the only slot
    auto r = this->ok(this->all(k, 2, 2, 1));
    EXPECT_EQ(r.denied_by, limits::chain_part::admission);
    ASSERT_TRUE(r.window && r.bucket && r.admission);
    EXPECT_EQ(r.window->count, 0U);
    EXPECT_TRUE(r.bucket->allowed);
    EXPECT_FALSE(r.admission->admitted);
    EXPECT_TRUE(r.admission->lease_id.empty());
    EXPECT_EQ(r.admission->in_use, 1U);
    EXPECT_EQ(r.admission->max, 1U);
    // Exactly what it consumed came back: two window units and two tokens are left, not one.
    EXPECT_TRUE(this->ok(this->window(k + ":w", 2, 2)).allowed());
    EXPECT_TRUE(this->ok(this->bucket(k + ":b", 2, 2)).allowed());
    EXPECT_FALSE(this->ok(this->bucket(k + ":b", 2)).allowed());
}

TYPED_TEST_P(limit_chain_conformance, parts_not_asked_are_not_answered) {
    const auto k = unique_key("c");
    auto e = this->ok(limits::chain_request{});
    EXPECT_TRUE(e.allowed());
    EXPECT_FALSE(e.window || e.bucket || e.admission);
    limits::chain_request q = this->all(k, 3, 3, 3);
    q.window.reset();
    auto r = this->ok(q);
    EXPECT_TRUE(r.allowed());
    EXPECT_FALSE(r.window);
    ASSERT_TRUE(r.bucket && r.admission);
    EXPECT_TRUE(r.admission->admitted);
    EXPECT_TRUE(this->ok(this->window(k + ":w", 1)).allowed());  // untouched
}

TYPED_TEST_P(limit_chain_conformance, an_invalid_part_fails_and_applies_nothing) {
    const auto k = unique_key("c");
    limits::chain_request q = this->all(k, 1, 1, 1);
    q.admission->max_slots = 0;  // invalid
    auto r = this->apply(q);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), make_error_code(errc::bad_input));
    q = this->all(k, 1, 1, 1);
    q.bucket->limit.rate_per_s = 0;  // invalid
    r = this->apply(q);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), make_error_code(errc::bad_input));
    // Neither call took the window's unit, the bucket's token or the slot.
    EXPECT_TRUE(this->ok(this->all(k, 1, 1, 1)).allowed());
}

// Chains of several keys at once (a Postgres chain gathers them into shared calls): each decides as if alone.
TYPED_TEST_P(limit_chain_conformance, concurrent_chains_each_decide_as_alone) {
    const auto k = unique_key("c");
    ASSERT_TRUE(this->ok(this->admission(k + "3:a", 1)).allowed());  // chain 3 will find its slot taken
    std::vector<limits::chain_request> reqs{
        this->all(k + "0", 5, 5, 5),        // passes
        this->all(k + "1", 1, 5, 5, 2),     // window: 2 > 1
        this->all(k + "2", 5, 2, 5, 1, 3),  // bucket: 3 > 2
        this->all(k + "3", 5, 5, 1),        // admission: full
        this->all(k + "4", 5, 5, 5),        // passes
    };
    std::vector<std::optional<result<limits::chain_result>>> got(reqs.size());
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        boost::asio::co_spawn(
            this->io_,
            [](limits::limit_chain& c, limits::chain_request q, std::optional<result<limits::chain_result>>& out
            ) -> boost::asio::awaitable<void> {
                out.emplace(co_await c.apply(std::move(q)));
            }(this->factory_.store(), reqs[i], got[i]),
            boost::asio::detached
        );
    }
    this->io_.restart();
    while (!std::all_of(got.begin(), got.end(), [](const auto& g) { return g.has_value(); })) {
        ASSERT_GT(this->io_.run_one(), 0U);
    }
    for (auto& g : got) ASSERT_TRUE(g->has_value()) << g->error().message();
    EXPECT_TRUE((*got[0])->allowed());
    EXPECT_EQ((*got[1])->denied_by, limits::chain_part::window);
    EXPECT_FALSE((*got[1])->bucket);
    EXPECT_EQ((*got[2])->denied_by, limits::chain_part::bucket);
    EXPECT_EQ((*got[2])->window->count, 0U);
    EXPECT_FALSE((*got[2])->admission);
    EXPECT_EQ((*got[3])->denied_by, limits::chain_part::admission);
    EXPECT_EQ((*got[3])->window->count, 0U);
    EXPECT_TRUE((*got[4])->allowed());
    EXPECT_EQ((*got[4])->admission->in_use, 1U);
    // What the denied chains left: nothing. Their admission keys (but 3's) have every slot; 3's bucket its tokens.
    EXPECT_EQ(this->ok(this->admission(k + "1:a", 1)).admission->in_use, 1U);
    EXPECT_EQ(this->ok(this->admission(k + "2:a", 1)).admission->in_use, 1U);
    EXPECT_TRUE(this->ok(this->bucket(k + "3:b", 5, 5)).allowed());
    EXPECT_TRUE(this->ok(this->window(k + "3:w", 5, 5)).allowed());
}

REGISTER_TYPED_TEST_SUITE_P(
    limit_chain_conformance,
    every_part_passes_and_stands,
    a_window_denial_attempts_nothing_after_it,
    a_bucket_denial_gives_the_window_back_and_takes_no_slot,
    an_admission_denial_gives_the_window_and_the_bucket_back,
    parts_not_asked_are_not_answered,
    an_invalid_part_fails_and_applies_nothing,
    concurrent_chains_each_decide_as_alone
);

}  // namespace preflight::conformance
