#include "run_coro.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <array>
#include <string_view>

using namespace preflight::clients;
using preflight::test::run_coro;
using namespace std::chrono_literals;

namespace {

class memory_facts : public ::testing::Test {
protected:
    boost::asio::io_context ctx_;
};

TEST_F(memory_facts, ban_found_in_subject_order_and_expires) {
    auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
    memory_ban_store bans([&] { return now; });
    bans.put({"org_1", "fraud", std::nullopt});
    bans.put({"user_1", "abuse", now + 10s});

    auto hit = run_coro(ctx_, bans.find_active({"user_1", "org_1"}));
    ASSERT_TRUE(hit.has_value());
    ASSERT_TRUE(hit->has_value());
    EXPECT_EQ((*hit)->subject_id, "user_1");
    EXPECT_EQ((*hit)->reason, "abuse");

    now += 11s;  // the user's ban ended; the org's is permanent
    auto later = run_coro(ctx_, bans.find_active({"user_1", "org_1"}));
    ASSERT_TRUE(later->has_value());
    EXPECT_EQ((*later)->subject_id, "org_1");

    EXPECT_FALSE(run_coro(ctx_, bans.find_active({"user_2"}))->has_value());
    EXPECT_TRUE(bans.remove("org_1"));
    EXPECT_FALSE(run_coro(ctx_, bans.find_active({"user_1", "org_1"}))->has_value());
}

TEST_F(memory_facts, subscription_highest_priority_of_personal_and_org) {
    memory_subscription_store subs;
    subs.put({"user_1", plan_tier::pro, "active", 1, std::nullopt});
    subs.put({"org_1", plan_tier::team, "active", 5, std::nullopt});
    subs.put({"org_2", plan_tier::enterprise, "canceled", 5, std::nullopt});

    auto both = run_coro(ctx_, subs.find_highest_priority("user_1", "org_1"));
    ASSERT_TRUE(both->has_value());
    EXPECT_EQ((*both)->owner_id, "org_1");
    EXPECT_EQ((*both)->plan, plan_tier::team);

    // A canceled enterprise subscription does not count; the personal pro one wins.
    auto canceled = run_coro(ctx_, subs.find_highest_priority("user_1", "org_2"));
    ASSERT_TRUE(canceled->has_value());
    EXPECT_EQ((*canceled)->plan, plan_tier::pro);

    EXPECT_FALSE(run_coro(ctx_, subs.find_highest_priority("user_9", ""))->has_value());
}

// The in-memory stores always answer their synchronous forms (the default pipeline's fast path), and the answer is
// the coroutine's (the conformance suites compare the two on every lookup).
TEST_F(memory_facts, synchronous_lookups_always_answer) {
    auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
    memory_ban_store bans([&] { return now; });
    bans.put({"org_1", "fraud", std::nullopt});
    const std::array<std::string_view, 2> ids{"user_1", "org_1"};
    auto ban = bans.try_find_active(ids);
    ASSERT_TRUE(ban.has_value());
    ASSERT_TRUE(ban->has_value());
    ASSERT_TRUE(ban->value().has_value());
    EXPECT_EQ(ban->value()->subject_id, "org_1");
    EXPECT_FALSE(bans.try_find_active({})->value().has_value());

    memory_subscription_store subs;
    subs.put({"org_1", plan_tier::team, "active", 5, std::nullopt});
    auto sub = subs.try_find_highest_priority("user_1", "org_1");
    ASSERT_TRUE(sub.has_value() && sub->has_value() && sub->value().has_value());
    EXPECT_EQ(sub->value()->plan, plan_tier::team);
    EXPECT_FALSE(subs.try_find_highest_priority("", "")->value().has_value());

    memory_member_store members;
    members.put({"org_1", "user_1", "member", 10, 3});
    auto m = members.try_find("org_1", "user_1");
    ASSERT_TRUE(m.has_value() && m->has_value() && m->value().has_value());
    EXPECT_EQ(m->value()->usage_cap, std::optional<std::uint64_t>(10));
    EXPECT_FALSE(members.try_find("org_1", "user_2")->value().has_value());
}

TEST_F(memory_facts, usage_and_members) {
    memory_usage_store usage;
    usage.put("org_1", "2026-11-01", {10, 20});
    usage.add("org_1", "2026-11-01", 5, 1);
    auto u = run_coro(ctx_, usage.get("org_1", "2026-11-01"));
    EXPECT_EQ(u->requests, 15u);
    EXPECT_EQ(u->tokens, 21u);
    EXPECT_EQ(run_coro(ctx_, usage.get("org_1", "2026-10-01"))->requests, 0u);

    memory_member_store members;
    members.put({"org_1", "user_1", "admin", 100, 3});
    auto m = run_coro(ctx_, members.find("org_1", "user_1"));
    ASSERT_TRUE(m->has_value());
    EXPECT_EQ((*m)->usage_cap, 100u);
    EXPECT_FALSE(run_coro(ctx_, members.find("org_1", "user_2"))->has_value());
}

TEST_F(memory_facts, balance_unknown_is_not_found) {
    memory_balance_source balances;
    balances.put("org_1", 3);
    balances.put("org_2", 0);
    auto ok = run_coro(ctx_, balances.check("org_1"));
    ASSERT_TRUE(ok.has_value());
    EXPECT_TRUE(ok->allowed);
    EXPECT_EQ(ok->remaining, 3);
    auto blocked = run_coro(ctx_, balances.check("org_2"));
    EXPECT_FALSE(blocked->allowed);
    auto unknown = run_coro(ctx_, balances.check("org_x"));
    ASSERT_TRUE(unknown.has_error());
    EXPECT_EQ(unknown.error(), preflight::errc::not_found);
}

TEST_F(memory_facts, load_fact_data_fills_every_store) {
    memory_fact_stores stores;
    load_fact_data(
        boost::json::parse(R"({
        "bans": [{"subject_id": "user_9", "reason": "abuse"}],
        "subscriptions": [{"owner_id": "org_1", "plan": "pro", "seats": 5}],
        "usage": [{"subject_id": "org_1", "period_start": "2026-11-01", "requests": 7}],
        "members": [{"org_id": "org_1", "user_id": "user_1", "usage_cap": 50}],
        "balances": [{"org_id": "org_1", "remaining": 10}]})"),
        stores
    );
    EXPECT_TRUE(run_coro(ctx_, stores.bans->find_active({"user_9"}))->has_value());
    EXPECT_EQ((*run_coro(ctx_, stores.subscriptions->find_highest_priority("", "org_1")))->seats, 5);
    EXPECT_EQ(run_coro(ctx_, stores.usage->get("org_1", "2026-11-01"))->requests, 7u);
    EXPECT_EQ((*run_coro(ctx_, stores.members->find("org_1", "user_1")))->usage_cap, 50u);
    EXPECT_EQ(run_coro(ctx_, stores.balances->check("org_1"))->remaining, 10);
}

TEST_F(memory_facts, load_fact_data_errors_name_path_and_value) {
    memory_fact_stores stores;
    auto message_of = [&](const char* doc) {
        try {
            load_fact_data(boost::json::parse(doc), stores);
        } catch (const fact_data_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(message_of(R"({"bannz": []})"), "fact data: bannz: unknown section");
    EXPECT_EQ(
        message_of(R"({"usage": [{"subject_id": "o", "period_start": "p", "requests": -1}]})"),
        "fact data: usage[0].requests: must not be negative (got -1)"
    );
    EXPECT_EQ(
        message_of(R"({"subscriptions": [{"owner_id": "o", "plan": "gold"}]})"),
        "fact data: subscriptions[0].plan: unknown plan 'gold' (free, pro, team, enterprise)"
    );
    EXPECT_EQ(
        message_of(R"({"members": [{"org_id": "o", "user_id": "u", "colour": 1}]})"),
        "fact data: members[0].colour: unknown key"
    );
    EXPECT_EQ(message_of(R"({"bans": [{"reason": "x"}]})"), "fact data: bans[0].subject_id: required");
}

// Regressions from fuzz/fuzz_fact_data.cpp (docs/reliability.md): a ban end past year 2262 overflowed in
// from_time_t (undefined behaviour), and seats above INT_MAX were silently truncated (a negative seat count).
TEST_F(memory_facts, load_fact_data_rejects_out_of_range_times_and_seats) {
    memory_fact_stores stores;
    EXPECT_THROW(
        load_fact_data(
            boost::json::parse(R"({"bans": [{"subject_id": "u", "until_unix_s": 1900000001111110}]})"), stores
        ),
        fact_data_error
    );
    try {
        load_fact_data(boost::json::parse(R"({"bans": [{"subject_id": "u", "until_unix_s": 9223372037}]})"), stores);
        FAIL() << "expected fact_data_error";
    } catch (const fact_data_error& e) {
        EXPECT_EQ(std::string(e.what()), "fact data: bans[0].until_unix_s: too large (max 9223372036)");
    }
    EXPECT_NO_THROW(
        load_fact_data(boost::json::parse(R"({"bans": [{"subject_id": "u", "until_unix_s": 9223372036}]})"), stores)
    );
    EXPECT_THROW(
        load_fact_data(
            boost::json::parse(R"({"subscriptions": [{"owner_id": "o", "plan": "pro", "seats": 4294967295}]})"), stores
        ),
        fact_data_error
    );
    EXPECT_TRUE((*run_coro(ctx_, stores.bans->find_active({"u"})))->until.has_value());
}

}  // namespace
