#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/limits/admission_store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <set>
#include <string>
#include <vector>

// Conformance suite of `preflight::limits::admission_store`. See conformance_support.hpp for the Factory
// contract. Short ttls (200 ms) where expiry is the point, long ones (1 h) elsewhere.
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class admission_store_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    limits::lease_grant reserve(const std::string& key, std::uint32_t max, std::chrono::milliseconds ttl = 1h) {
        auto r = run(io_, factory_.store().reserve(key, max, ttl));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? *r : limits::lease_grant{};
    }
    bool release(const std::string& id) {
        auto r = run(io_, factory_.store().release(id));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r && *r;
    }
    bool renew(const std::string& id, std::chrono::milliseconds ttl) {
        auto r = run(io_, factory_.store().renew(id, ttl));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r && *r;
    }

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(admission_store_conformance);

TYPED_TEST_P(admission_store_conformance, reserves_up_to_max_slots) {
    const auto k = unique_key("a");
    auto a = this->reserve(k, 2);
    EXPECT_TRUE(a.admitted);
    EXPECT_FALSE(a.lease_id.empty());
    EXPECT_EQ(a.in_use, 1u);
    EXPECT_EQ(a.max, 2u);
    auto b = this->reserve(k, 2);
    EXPECT_TRUE(b.admitted);
    EXPECT_EQ(b.in_use, 2u);
    EXPECT_NE(a.lease_id, b.lease_id);
    auto c = this->reserve(k, 2);
    EXPECT_FALSE(c.admitted);
    EXPECT_TRUE(c.lease_id.empty());
    EXPECT_EQ(c.in_use, 2u);
    EXPECT_EQ(c.max, 2u);
}

TYPED_TEST_P(admission_store_conformance, release_frees_a_slot_once) {
    const auto k = unique_key("r");
    auto a = this->reserve(k, 1);
    ASSERT_TRUE(a.admitted);
    EXPECT_FALSE(this->reserve(k, 1).admitted);
    EXPECT_TRUE(this->release(a.lease_id));
    EXPECT_FALSE(this->release(a.lease_id));  // double release is harmless
    auto b = this->reserve(k, 1);
    EXPECT_TRUE(b.admitted);
    EXPECT_EQ(b.in_use, 1u);
    EXPECT_FALSE(this->release("no-such-lease"));
    EXPECT_FALSE(this->release(""));
    EXPECT_FALSE(this->release("00000000-0000-4000-8000-000000000000"));
}

TYPED_TEST_P(admission_store_conformance, expired_lease_returns_its_slot) {
    const auto k = unique_key("e");
    auto a = this->reserve(k, 1, 200ms);
    ASSERT_TRUE(a.admitted);
    EXPECT_FALSE(this->reserve(k, 1, 200ms).admitted);
    this->factory_.advance(250ms);
    auto b = this->reserve(k, 1, 1h);
    EXPECT_TRUE(b.admitted);
    EXPECT_EQ(b.in_use, 1u);
    EXPECT_FALSE(this->release(a.lease_id));  // expired: no longer live
    EXPECT_FALSE(this->renew(a.lease_id, 1h));
    EXPECT_TRUE(this->release(b.lease_id));
}

TYPED_TEST_P(admission_store_conformance, renew_extends_a_live_lease) {
    const auto k = unique_key("n");
    auto a = this->reserve(k, 1, 200ms);
    ASSERT_TRUE(a.admitted);
    this->factory_.advance(100ms);
    EXPECT_TRUE(this->renew(a.lease_id, 400ms));
    this->factory_.advance(200ms);  // past the first expiry, before the renewed one
    EXPECT_FALSE(this->reserve(k, 1, 1h).admitted);
    EXPECT_TRUE(this->renew(a.lease_id, 200ms));
    this->factory_.advance(250ms);
    EXPECT_FALSE(this->renew(a.lease_id, 1h));
    EXPECT_TRUE(this->reserve(k, 1, 1h).admitted);
    EXPECT_FALSE(this->renew("not-a-lease", 1h));
}

TYPED_TEST_P(admission_store_conformance, lease_ids_are_unique) {
    const auto k = unique_key("u");
    std::set<std::string> ids;
    for (int i = 0; i < 20; ++i) {
        auto g = this->reserve(k, 20);
        ASSERT_TRUE(g.admitted);
        ids.insert(g.lease_id);
    }
    EXPECT_EQ(ids.size(), 20u);
    EXPECT_FALSE(this->reserve(k, 20).admitted);
}

TYPED_TEST_P(admission_store_conformance, keys_are_independent_and_matched_exactly) {
    const std::string base = unique_key("");
    const std::string keys[] = {base + "org", base + "Org", base + "org\\'", base + "орг 🚀"};
    for (const auto& k : keys) EXPECT_TRUE(this->reserve(k, 1).admitted) << k;
    for (const auto& k : keys) EXPECT_FALSE(this->reserve(k, 1).admitted) << k;
}

// Many reservations of one key in flight at once (over every connection of a pooled store): exactly max are
// admitted, and the admitted ones report 1..max in use, each once (each count saw every earlier lease).
TYPED_TEST_P(admission_store_conformance, concurrent_reservations_never_exceed_max) {
    const auto k = unique_key("c");
    constexpr int calls = 24;
    constexpr std::uint32_t max = 5;
    std::vector<std::future<result<limits::lease_grant>>> futures;
    for (int i = 0; i < calls; ++i) {
        futures.push_back(
            boost::asio::co_spawn(this->io_, this->factory_.store().reserve(k, max, 1h), boost::asio::use_future)
        );
    }
    const auto all_ready = [&] {
        for (auto& f : futures) {
            if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
        }
        return true;
    };
    this->io_.restart();
    while (!all_ready()) {
        ASSERT_FALSE(this->io_.run_one() == 0 && !all_ready()) << "a reservation did not complete";
    }
    std::set<std::string> ids;
    std::multiset<std::uint32_t> admitted_in_use;
    for (auto& f : futures) {
        auto r = f.get();
        ASSERT_TRUE(r.has_value()) << r.error().message();
        EXPECT_EQ(r->max, max);
        EXPECT_LE(r->in_use, max);
        if (r->admitted) {
            ids.insert(r->lease_id);
            admitted_in_use.insert(r->in_use);
        } else {
            EXPECT_EQ(r->in_use, max);
        }
    }
    EXPECT_EQ(ids.size(), std::size_t{max});
    EXPECT_EQ(admitted_in_use, (std::multiset<std::uint32_t>{1, 2, 3, 4, 5}));
    EXPECT_FALSE(this->reserve(k, max).admitted);
}

REGISTER_TYPED_TEST_SUITE_P(
    admission_store_conformance,
    reserves_up_to_max_slots,
    release_frees_a_slot_once,
    expired_lease_returns_its_slot,
    renew_extends_a_live_lease,
    lease_ids_are_unique,
    keys_are_independent_and_matched_exactly,
    concurrent_reservations_never_exceed_max
);

}  // namespace preflight::conformance
