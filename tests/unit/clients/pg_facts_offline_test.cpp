#include "offline_pool.hpp"
#include "run_coro.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_store_set.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

// What the Postgres fact stores decide before any I/O, and their typed error when the server cannot be reached
// (no server needed: the pool connects lazily to an address where nothing listens).
namespace {

namespace clients = preflight::clients;
using preflight::errc;
using preflight::test::run_coro;
using preflight::test::unreachable_pool;

class pg_facts_offline : public ::testing::Test {
protected:
    boost::asio::io_context io_;
    clients::pg_pool pool_{io_.get_executor(), unreachable_pool()};
    clients::pg_ban_store bans_{pool_};
    clients::pg_subscription_store subs_{pool_};
    clients::pg_usage_store usage_{pool_};
    clients::pg_member_store members_{pool_};
    clients::pg_balance_source balance_{pool_};
    clients::pg_fact_writer writer_{pool_};
};

TEST_F(pg_facts_offline, bad_keys_are_bad_input_without_a_statement) {
    const auto bad = make_error_code(errc::bad_input);
    for (const auto& k : {std::string(clients::max_key_bytes + 1, 'x'), std::string("a\0b", 3)}) {
        std::vector<std::string> ids{"fine", k};
        EXPECT_EQ(run_coro(io_, bans_.find_active(ids)).error(), bad);
        EXPECT_EQ(run_coro(io_, subs_.find_highest_priority(k, "")).error(), bad);
        EXPECT_EQ(run_coro(io_, subs_.find_highest_priority("fine", k)).error(), bad);
        EXPECT_EQ(run_coro(io_, usage_.get(k, "2026-11-01")).error(), bad);
        EXPECT_EQ(run_coro(io_, usage_.get("fine", k)).error(), bad);
        EXPECT_EQ(run_coro(io_, members_.find(k, "fine")).error(), bad);
        EXPECT_EQ(run_coro(io_, members_.find("fine", k)).error(), bad);
        EXPECT_EQ(run_coro(io_, balance_.check(k)).error(), bad);
        clients::ban b{k, "r", std::nullopt};
        EXPECT_EQ(run_coro(io_, writer_.put_ban(b)).error(), bad);
        EXPECT_EQ(run_coro(io_, writer_.remove_bans(k)).error(), bad);
        clients::subscription s;
        s.owner_id = k;
        EXPECT_EQ(run_coro(io_, writer_.put_subscription(s)).error(), bad);
        EXPECT_EQ(run_coro(io_, writer_.put_usage(k, "2026-11-01", {})).error(), bad);
        EXPECT_EQ(run_coro(io_, writer_.add_usage("fine", k, 1, 1)).error(), bad);
        clients::member m{"fine", k, "member", std::nullopt, 0};
        EXPECT_EQ(run_coro(io_, writer_.put_member(m)).error(), bad);
        EXPECT_EQ(run_coro(io_, writer_.put_balance(k, 1)).error(), bad);
    }
    EXPECT_EQ(pool_.stats().statements, 0u);
}

TEST_F(pg_facts_offline, nothing_to_look_up_needs_no_statement) {
    auto b = run_coro(io_, bans_.find_active({}));
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->has_value());
    auto s = run_coro(io_, subs_.find_highest_priority("", ""));
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->has_value());
    EXPECT_EQ(pool_.stats().statements, 0u);
}

TEST_F(pg_facts_offline, unreachable_server_is_store_unavailable_not_an_answer) {
    const auto down = make_error_code(errc::store_unavailable);
    EXPECT_EQ(run_coro(io_, bans_.find_active({"user_1"})).error(), down);
    EXPECT_EQ(run_coro(io_, subs_.find_highest_priority("user_1", "org_1")).error(), down);
    EXPECT_EQ(run_coro(io_, usage_.get("org_1", "2026-11-01")).error(), down);
    EXPECT_EQ(run_coro(io_, members_.find("org_1", "user_1")).error(), down);
    EXPECT_EQ(run_coro(io_, balance_.check("org_1")).error(), down);  // not not_found: the gate fails open
}

TEST_F(pg_facts_offline, malformed_fact_document_throws_before_any_statement) {
    const auto doc = boost::json::parse(R"({"balances": [{"org_id": "org_1", "remaining": 5}], "bans": [{}]})");
    EXPECT_THROW(run_coro(io_, clients::pg_load_fact_data(pool_, doc)), clients::fact_data_error);
    const auto bad_plan = boost::json::parse(R"({"subscriptions": [{"owner_id": "o", "plan": "gold"}]})");
    EXPECT_THROW(run_coro(io_, clients::pg_load_fact_data(pool_, bad_plan)), clients::fact_data_error);
    EXPECT_EQ(pool_.stats().statements, 0u);
}

TEST(pg_store_set_offline, every_store_is_set_and_a_null_pool_is_misuse) {
    boost::asio::io_context io;
    EXPECT_THROW((void)clients::make_pg_store_set(nullptr), std::invalid_argument);
    auto pool = std::make_shared<clients::pg_pool>(io.get_executor(), unreachable_pool());
    std::weak_ptr<clients::pg_pool> weak = pool;
    {
        auto set = clients::make_pg_store_set(std::move(pool));
        EXPECT_TRUE(
            set.bans && set.subscriptions && set.usage && set.members && set.balance && set.rate_limits &&
            set.windows && set.admissions
        );
        auto members = set.members;
        set = {};
        EXPECT_FALSE(weak.expired());  // the remaining store keeps the pool
    }
    EXPECT_TRUE(weak.expired());
}

TEST(embedded_migrations, fact_tables_are_in_002) {
    const auto all = clients::embedded_migrations();
    ASSERT_GE(all.size(), 2u);
    EXPECT_EQ(all[1].version, 2);
    EXPECT_EQ(all[1].name, "002_facts.sql");
    for (const char* table :
         {"preflight_bans",
          "preflight_subscriptions",
          "preflight_usage",
          "preflight_org_members",
          "preflight_balances",
          "preflight_deployed_state"}) {
        EXPECT_NE(all[1].sql.find(std::string("CREATE TABLE IF NOT EXISTS ") + table), std::string_view::npos) << table;
    }
}

}  // namespace
