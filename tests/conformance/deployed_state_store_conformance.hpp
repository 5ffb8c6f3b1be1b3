#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/cache/deployed_state_cache.hpp>
#include <preflight/clients/deployed_state_store.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <string>

// Conformance suite of `clients::deployed_state_store` (in-memory and Postgres, same cases):
//
//   struct my_factory {
//       void set_up(boost::asio::io_context& io);   // may GTEST_SKIP(); `io` outlives the factory
//       std::shared_ptr<clients::deployed_state_store> store();
//   };
//
// Version ids come from `unique_key` (Postgres keeps rows between runs).
namespace preflight::conformance {

template <class Factory>
class deployed_state_store_conformance : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    result<boost::json::value> get(const std::string& id) { return run(io_, factory_.store()->get(id)); }
    void put(const std::string& id, const boost::json::value& v) {
        auto r = run(io_, factory_.store()->put(id, v));
        ASSERT_TRUE(r.has_value()) << r.error().message();
    }

    boost::asio::io_context io_;
    Factory factory_;
};

TYPED_TEST_SUITE_P(deployed_state_store_conformance);

/// A deployed-state document in the shape of BENCHMARKS.md (nested 3 levels, strings, numbers, booleans, arrays).
inline boost::json::value sample_deployed_state(int j) {
    return boost::json::parse(
        R"({"deploymentId": "dep_)" + std::to_string(j) +
        R"(", "version": 7, "paused": false, "createdAt": 1700000000007, "ratio": 0.25, "big": 18446744073709551615,
            "neg": -9223372036854775807,
            "config": {"runtime": "node20", "env": {"NODE_ENV": "production", "EMOJI": "ünï 🚀 \"q\" \\ ;--"},
                       "scaling": {"min": 1, "max": 10}},
            "tags": ["prod", "web", "tier-1"], "nothing": null, "empty": {}, "none": []})"
    );
}

TYPED_TEST_P(deployed_state_store_conformance, unknown_version_is_not_found) {
    auto r = this->get(unique_key("ds_unknown"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_found);
}

TYPED_TEST_P(deployed_state_store_conformance, put_then_get_round_trips_the_document_exactly) {
    const auto id = unique_key("ds_doc");
    const auto doc = sample_deployed_state(3);
    this->put(id, doc);
    auto r = this->get(id);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, doc) << boost::json::serialize(*r);
}

TYPED_TEST_P(deployed_state_store_conformance, non_object_documents_round_trip) {
    for (const char* text : {R"([1, "two", {"three": 3}])", R"("just text")", "42", "true", "null"}) {
        const auto id = unique_key(std::string("ds_scalar_") + std::to_string(std::string_view(text).size()));
        const auto doc = boost::json::parse(text);
        this->put(id, doc);
        auto r = this->get(id);
        ASSERT_TRUE(r.has_value()) << text;
        EXPECT_EQ(*r, doc) << text;
    }
}

TYPED_TEST_P(deployed_state_store_conformance, reads_are_independent_copies_and_put_replaces) {
    const auto id = unique_key("ds_copy");
    this->put(id, sample_deployed_state(1));
    auto first = this->get(id);
    ASSERT_TRUE(first.has_value());
    first->as_object()["paused"] = true;  // the caller's own copy
    auto second = this->get(id);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->at("paused"), false);
    this->put(id, sample_deployed_state(2));
    auto third = this->get(id);
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(third->at("deploymentId"), "dep_2");
}

TYPED_TEST_P(deployed_state_store_conformance, ids_are_matched_exactly_and_bad_ids_rejected) {
    const auto a = unique_key("ds_'; DROP TABLE x; -- ünï");
    const auto b = a + " ";
    this->put(a, boost::json::parse(R"({"which": "a"})"));
    this->put(b, boost::json::parse(R"({"which": "b"})"));
    EXPECT_EQ(this->get(a)->at("which"), "a");
    EXPECT_EQ(this->get(b)->at("which"), "b");
    for (const std::string& bad : {std::string(), std::string(1025, 'v'), std::string("nul\0id", 6)}) {
        auto g = this->get(bad);
        ASSERT_FALSE(g.has_value());
        EXPECT_EQ(g.error(), errc::bad_input);
        auto p = run(this->io_, this->factory_.store()->put(bad, boost::json::value(1)));
        ASSERT_FALSE(p.has_value());
        EXPECT_EQ(p.error(), errc::bad_input);
    }
}

TYPED_TEST_P(deployed_state_store_conformance, behind_the_deployed_state_cache_loads_once_and_never_caches_errors) {
    const auto id = unique_key("ds_cached");
    cache::deployed_state_cache c;
    auto missing = run(this->io_, clients::load_deployed_state(c, this->factory_.store(), id));
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error(), errc::not_found);
    this->put(id, sample_deployed_state(5));
    auto loaded = run(this->io_, clients::load_deployed_state(c, this->factory_.store(), id));
    ASSERT_TRUE(loaded.has_value()) << "not_found was not cached";
    EXPECT_EQ(*loaded, sample_deployed_state(5));
    loaded->as_object()["version"] = 8;       // clone-on-read: the cached document is untouched
    this->put(id, sample_deployed_state(6));  // the cache serves its copy until the TTL ends
    auto cached = run(this->io_, clients::load_deployed_state(c, this->factory_.store(), id));
    ASSERT_TRUE(cached.has_value());
    EXPECT_EQ(*cached, sample_deployed_state(5));
}

REGISTER_TYPED_TEST_SUITE_P(
    deployed_state_store_conformance,
    unknown_version_is_not_found,
    put_then_get_round_trips_the_document_exactly,
    non_object_documents_round_trip,
    reads_are_independent_copies_and_put_replaces,
    ids_are_matched_exactly_and_bad_ids_rejected,
    behind_the_deployed_state_cache_loads_once_and_never_caches_errors
);

}  // namespace preflight::conformance
