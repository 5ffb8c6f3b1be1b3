#include "conformance/conformance_support.hpp"
#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_store_set.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Postgres fact stores beyond the conformance suites: statements per call, input rejected before or by the server,
// the fact data loader, the Postgres store set, pipelining of one preflight's concurrent fact reads, and the combined
// reads of several requests gathered into one call.
namespace {

namespace asio = boost::asio;
namespace clients = preflight::clients;
using namespace std::chrono_literals;
using preflight::errc;
using preflight::conformance::run;
using preflight::conformance::unique_key;

clients::pool_params params_for(const std::string& url, std::size_t size) {
    clients::pool_params p;
    p.url = url;
    p.size = size;
    return p;
}

/// Pool counters consumed by `op`.
template <class F>
clients::pool_stats cost(clients::pg_pool& pool, F&& op) {
    const auto before = pool.stats();
    op();
    const auto after = pool.stats();
    return {after.statements - before.statements, after.syncs - before.syncs, 0, 0};
}

class pg_facts : public ::testing::Test {
protected:
    void SetUp() override {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(preflight::test::ensure_migrated(url));
        url_ = url;
        pool_ = std::make_unique<clients::pg_pool>(io_.get_executor(), params_for(url, 1));
    }

    asio::io_context io_;
    std::string url_;
    std::unique_ptr<clients::pg_pool> pool_;
};

TEST_F(pg_facts, every_fact_call_is_one_statement_and_one_round_trip) {
    clients::pg_ban_store bans{*pool_};
    clients::pg_subscription_store subs{*pool_};
    clients::pg_usage_store usage{*pool_};
    clients::pg_member_store members{*pool_};
    clients::pg_balance_source balance{*pool_};
    clients::pg_fact_writer w{*pool_};
    const auto user = unique_key("user"), org = unique_key("org"), ip = unique_key("ip");
    ASSERT_TRUE(run(io_, w.put_ban({org, "fraud", std::nullopt})));  // also prepares each statement once
    ASSERT_TRUE(run(io_, w.put_subscription({org, clients::plan_tier::team, "active", 3, std::nullopt})));
    ASSERT_TRUE(run(io_, w.put_usage(org, "2026-11-01", {5, 6})));
    ASSERT_TRUE(run(io_, w.put_member({org, user, "member", 10, 2})));
    ASSERT_TRUE(run(io_, w.put_balance(org, 7)));
    const std::vector<std::string> three{user, ip, org};
    // Warm up the read statements (the first use on a connection adds one PREPARE).
    ASSERT_TRUE(run(io_, bans.find_active(three)));
    ASSERT_TRUE(run(io_, subs.find_highest_priority(user, org)));
    ASSERT_TRUE(run(io_, usage.get(org, "2026-11-01")));
    ASSERT_TRUE(run(io_, members.find(org, user)));
    ASSERT_TRUE(run(io_, balance.check(org)));

    auto one = [&](const char* what, auto&& op) {
        const auto c = cost(*pool_, op);
        EXPECT_EQ(c.statements, 1u) << what;
        EXPECT_EQ(c.syncs, 1u) << what;
    };
    one("ban: three subjects", [&] {
        auto b = run(io_, bans.find_active(three));
        ASSERT_TRUE(b && b->has_value());
        EXPECT_EQ((*b)->subject_id, org);
    });
    one("subscription: personal and org", [&] {
        auto s = run(io_, subs.find_highest_priority(user, org));
        ASSERT_TRUE(s && s->has_value());
        EXPECT_EQ((*s)->plan, clients::plan_tier::team);
    });
    one("usage", [&] { EXPECT_EQ(run(io_, usage.get(org, "2026-11-01"))->requests, 5u); });
    one("member", [&] { EXPECT_TRUE(run(io_, members.find(org, user))->has_value()); });
    one("balance", [&] { EXPECT_EQ(run(io_, balance.check(org))->remaining, 7); });
    one("unknown balance", [&] { EXPECT_EQ(run(io_, balance.check(ip)).error(), errc::not_found); });

    // Nothing to look up: no statement at all.
    auto none = [&](const char* what, auto&& op) { EXPECT_EQ(cost(*pool_, op).statements, 0u) << what; };
    none("ban: no subjects", [&] { EXPECT_FALSE(run(io_, bans.find_active({}))->has_value()); });
    none("subscription: no ids", [&] { EXPECT_FALSE(run(io_, subs.find_highest_priority("", ""))->has_value()); });
}

TEST_F(pg_facts, over_long_or_nul_keys_are_bad_input_before_the_server) {
    clients::pg_ban_store bans{*pool_};
    clients::pg_subscription_store subs{*pool_};
    clients::pg_usage_store usage{*pool_};
    clients::pg_member_store members{*pool_};
    clients::pg_balance_source balance{*pool_};
    clients::pg_fact_writer w{*pool_};
    const std::string long_key(clients::max_key_bytes + 1, 'k');
    const std::string nul_key = std::string("a\0b", 3);
    const auto bad = make_error_code(errc::bad_input);
    const auto c = cost(*pool_, [&] {
        for (const auto& k : {long_key, nul_key}) {
            EXPECT_EQ(run(io_, bans.find_active({"fine", k})).error(), bad);
            EXPECT_EQ(run(io_, subs.find_highest_priority("fine", k)).error(), bad);
            EXPECT_EQ(run(io_, usage.get(k, "2026-11-01")).error(), bad);
            EXPECT_EQ(run(io_, members.find("fine", k)).error(), bad);
            EXPECT_EQ(run(io_, balance.check(k)).error(), bad);
            EXPECT_EQ(run(io_, w.put_ban({k, "r", std::nullopt})).error(), bad);
            EXPECT_EQ(run(io_, w.put_balance(k, 1)).error(), bad);
        }
    });
    EXPECT_EQ(c.statements, 0u);
    // A key of exactly max_key_bytes is stored and matched.
    const std::string longest(clients::max_key_bytes - 8, 'k');
    const auto key = longest + unique_key("").substr(0, 8);
    ASSERT_TRUE(run(io_, w.put_balance(key, 4)));
    EXPECT_EQ(run(io_, balance.check(key))->remaining, 4);
}

TEST_F(pg_facts, a_period_that_is_not_a_date_is_bad_input_from_the_server) {
    clients::pg_usage_store usage{*pool_};
    auto r = run(io_, usage.get(unique_key("org"), "November"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), make_error_code(errc::bad_input));
    auto ok = run(io_, usage.get(unique_key("org"), "2026-11-01"));  // the connection is still usable
    ASSERT_TRUE(ok.has_value()) << ok.error().message();
}

TEST_F(pg_facts, remove_bans_lifts_every_ban_of_the_subject) {
    clients::pg_ban_store bans{*pool_};
    clients::pg_fact_writer w{*pool_};
    const auto s = unique_key("s");
    ASSERT_TRUE(run(io_, w.put_ban({s, "r", std::nullopt})));
    EXPECT_TRUE(run(io_, bans.find_active({s}))->has_value());
    EXPECT_TRUE(*run(io_, w.remove_bans(s)));
    EXPECT_FALSE(run(io_, bans.find_active({s}))->has_value());
    EXPECT_FALSE(*run(io_, w.remove_bans(s)));
}

TEST_F(pg_facts, add_usage_accumulates_concurrent_adds) {
    clients::pg_usage_store usage{*pool_};
    clients::pg_fact_writer w{*pool_};
    const auto org = unique_key("org");
    int done = 0;
    for (int i = 0; i < 20; ++i) {
        asio::co_spawn(
            io_,
            w.add_usage(org, "2026-11-01", 1, 10),
            [&](std::exception_ptr e, preflight::result<void> r) {
                EXPECT_FALSE(e);
                EXPECT_TRUE(r.has_value());
                ++done;
            }
        );
    }
    io_.restart();
    while (done < 20 && io_.run_one() > 0) {
    }
    ASSERT_EQ(done, 20);
    auto u = run(io_, usage.get(org, "2026-11-01"));
    EXPECT_EQ(u->requests, 20u);
    EXPECT_EQ(u->tokens, 200u);
}

TEST_F(pg_facts, purge_records_forgets_the_record_ids_of_periods_before_the_previous_month) {
    clients::pg_usage_store usage{*pool_};
    const auto org = unique_key("org");
    const auto old_id = unique_key("lease-old");
    const auto new_id = unique_key("lease-new");
    ASSERT_TRUE(*run(io_, usage.record(old_id, org, "2020-01-01", {1, 0})));
    const auto now = std::chrono::system_clock::now();  // the server's clock on this machine, within a second
    const auto ymd = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)};
    char current[16];
    std::snprintf(
        current, sizeof current, "%04d-%02u-01", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month())
    );
    ASSERT_TRUE(*run(io_, usage.record(new_id, org, current, {1, 0})));
    auto purged = run(io_, usage.purge_records());
    ASSERT_TRUE(purged.has_value()) << purged.error().message();
    EXPECT_GE(*purged, 1U);
    EXPECT_TRUE(*run(io_, usage.record(old_id, org, "2020-01-01", {1, 0}))) << "forgotten: counted again";
    EXPECT_FALSE(*run(io_, usage.record(new_id, org, current, {1, 0}))) << "this month's record is kept";
    EXPECT_EQ(run(io_, usage.get(org, current))->requests, 1U);
}

// ---- the fact data loader ----------------------------------------------------------------------------------------

TEST_F(pg_facts, load_fact_data_document_reads_back_like_the_memory_stores) {
    const auto k = unique_key("");
    // The same document goes to both kinds of store; every read must agree.
    const std::string text = R"({
        "bans": [{"subject_id": ")" +
                             k + R"(user_9", "reason": "abuse", "until_unix_s": 4000000000},
                 {"subject_id": ")" +
                             k + R"(user_8"},
                 {"subject_id": ")" +
                             k + R"(user_7", "until_unix_s": 1000000000}],
        "subscriptions": [{"owner_id": ")" +
                             k + R"(org_1", "plan": "team", "seats": 5},
                          {"owner_id": ")" +
                             k + R"(user_1", "plan": "enterprise", "status": "canceled"}],
        "usage": [{"subject_id": ")" +
                             k + R"(org_1", "period_start": "2026-11-01", "requests": 10, "tokens": 3}],
        "members": [{"org_id": ")" +
                             k + R"(org_1", "user_id": ")" + k +
                             R"(user_1", "role": "admin", "usage_cap": 100, "used": 3},
                    {"org_id": ")" +
                             k + R"(org_1", "user_id": ")" + k + R"(user_2"}],
        "balances": [{"org_id": ")" +
                             k + R"(org_1", "remaining": 500}, {"org_id": ")" + k + R"(org_2", "remaining": 0}]
    })";
    const auto doc = boost::json::parse(text);
    ASSERT_TRUE(run(io_, clients::pg_load_fact_data(*pool_, doc))) << "load";
    clients::memory_fact_stores mem;
    clients::load_fact_data(doc, mem);
    auto pg = clients::make_pg_store_set(std::shared_ptr<clients::pg_pool>(std::move(pool_)));

    for (const auto* subject : {"user_9", "user_8", "user_7", "nobody"}) {
        const std::vector<std::string> ids{k + subject};
        auto a = run(io_, pg.bans->find_active(ids));
        auto b = run(io_, mem.bans->find_active(ids));
        ASSERT_TRUE(a && b);
        ASSERT_EQ(a->has_value(), b->has_value()) << subject;
        if (*a) {
            EXPECT_EQ((*a)->reason, (*b)->reason);
            EXPECT_EQ((*a)->until, (*b)->until);
        }
    }
    for (const auto& [user, org] : std::vector<std::pair<std::string, std::string>>{
             {k + "user_1", k + "org_1"}, {k + "user_1", ""}, {"", k + "org_1"}}) {
        auto a = run(io_, pg.subscriptions->find_highest_priority(user, org));
        auto b = run(io_, mem.subscriptions->find_highest_priority(user, org));
        ASSERT_TRUE(a && b);
        ASSERT_EQ(a->has_value(), b->has_value()) << user << "/" << org;
        if (*a) {
            EXPECT_EQ((*a)->owner_id, (*b)->owner_id);
            EXPECT_EQ((*a)->plan, (*b)->plan);
            EXPECT_EQ((*a)->seats, (*b)->seats);
            EXPECT_EQ((*a)->status, (*b)->status);
        }
    }
    auto u = run(io_, pg.usage->get(k + "org_1", "2026-11-01"));
    EXPECT_EQ(u->requests, 10u);
    EXPECT_EQ(u->tokens, 3u);
    for (const auto* user : {"user_1", "user_2", "user_3"}) {
        auto a = run(io_, pg.members->find(k + "org_1", k + user));
        auto b = run(io_, mem.members->find(k + "org_1", k + user));
        ASSERT_TRUE(a && b);
        ASSERT_EQ(a->has_value(), b->has_value()) << user;
        if (*a) {
            EXPECT_EQ((*a)->role, (*b)->role);
            EXPECT_EQ((*a)->usage_cap, (*b)->usage_cap);
            EXPECT_EQ((*a)->used, (*b)->used);
        }
    }
    for (const auto* org : {"org_1", "org_2", "org_3"}) {
        auto a = run(io_, pg.balance->check(k + org));
        auto b = run(io_, mem.balances->check(k + org));
        ASSERT_EQ(a.has_value(), b.has_value()) << org;
        if (a) {
            EXPECT_EQ(a->allowed, b->allowed);
            EXPECT_EQ(a->remaining, b->remaining);
            EXPECT_EQ(a->reason, b->reason);
        } else {
            EXPECT_EQ(a.error(), b.error());
        }
    }
}

TEST_F(pg_facts, malformed_document_throws_and_writes_nothing) {
    const auto k = unique_key("org");
    const auto doc = boost::json::parse(
        R"({"balances": [{"org_id": ")" + k + R"(", "remaining": 5}], "members": [{"org_id": "o", "user_id": 7}]})"
    );
    try {
        (void)run(io_, clients::pg_load_fact_data(*pool_, doc));
        ADD_FAILURE() << "expected fact_data_error";
    } catch (const clients::fact_data_error& e) {
        EXPECT_NE(std::string(e.what()).find("members[0].user_id"), std::string::npos) << e.what();
    }
    clients::pg_balance_source balance{*pool_};
    EXPECT_EQ(run(io_, balance.check(k)).error(), errc::not_found);  // the valid section before it was not written
}

// ---- the Postgres store set --------------------------------------------------------------------------------------

TEST_F(pg_facts, store_set_is_complete_and_keeps_the_pool_alive) {
    std::weak_ptr<clients::pg_pool> weak;
    {
        auto shared = std::shared_ptr<clients::pg_pool>(std::move(pool_));
        weak = shared;
        auto set = clients::make_pg_store_set(std::move(shared));
        EXPECT_TRUE(
            set.bans && set.subscriptions && set.usage && set.members && set.balance && set.rate_limits &&
            set.windows && set.admissions
        );
        auto balance = set.balance;
        auto rate_limits = set.rate_limits;
        set = {};
        EXPECT_FALSE(weak.expired());  // still owned by the stores kept above
        const auto key = unique_key("k");
        auto a = run(io_, rate_limits->acquire(key, {10, 2}, 1));
        ASSERT_TRUE(a.has_value()) << a.error().message();
        EXPECT_TRUE(a->allowed);
        EXPECT_EQ(run(io_, balance->check(key)).error(), errc::not_found);
    }
    EXPECT_TRUE(weak.expired());
    EXPECT_THROW((void)clients::make_pg_store_set(nullptr), std::invalid_argument);
}

// ---- one preflight's fact reads: pipelined on one connection -------------------------------------------------------

// The four read-only facts of one preflight (ban, subscription, usage, member), awaited concurrently, go out on ONE
// connection back to back, without waiting for each other's results: one network round trip on the critical path.
// Shown without timing: the ban table is locked by another session, so the first statement blocks on the server;
// all four are nevertheless sent (pool counters) before any completes. Each carries its own sync point (each is
// its own implicit transaction), so the counters show 4 statements and 4 syncs in one flight.
TEST_F(pg_facts, four_concurrent_fact_reads_are_pipelined_in_one_flight) {
    clients::pg_ban_store bans{*pool_};
    clients::pg_subscription_store subs{*pool_};
    clients::pg_usage_store usage{*pool_};
    clients::pg_member_store members{*pool_};
    const auto user = unique_key("user"), org = unique_key("org");
    const std::vector<std::string> ids{user, org};
    // Prepare the four statements on the pool's single connection first (PREPARE itself needs the table).
    ASSERT_TRUE(run(io_, bans.find_active(ids)));
    ASSERT_TRUE(run(io_, subs.find_highest_priority(user, org)));
    ASSERT_TRUE(run(io_, usage.get(org, "2026-11-01")));
    ASSERT_TRUE(run(io_, members.find(org, user)));

    pqxx::connection locker{url_};
    pqxx::work lock_tx{locker};
    lock_tx.exec("SET LOCAL lock_timeout = '10s'");
    lock_tx.exec("LOCK TABLE preflight_bans IN ACCESS EXCLUSIVE MODE");

    const auto before = pool_->stats();
    int done = 0;
    bool all_ok = true;
    auto finished = [&](std::exception_ptr e, const auto& r) {
        all_ok = all_ok && !e && r.has_value();
        ++done;
    };
    asio::co_spawn(io_, bans.find_active(ids), finished);
    asio::co_spawn(io_, subs.find_highest_priority(user, org), finished);
    asio::co_spawn(io_, usage.get(org, "2026-11-01"), finished);
    asio::co_spawn(io_, members.find(org, user), finished);
    io_.restart();
    // Run until all four are on the wire (bounded: 10 s), then check that none has completed.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (pool_->stats().statements - before.statements < 4 && std::chrono::steady_clock::now() < deadline) {
        io_.run_for(10ms);
    }
    const auto sent = pool_->stats();
    EXPECT_EQ(sent.statements - before.statements, 4u);
    EXPECT_EQ(sent.syncs - before.syncs, 4u);
    EXPECT_EQ(done, 0) << "a later statement completed before the first (blocked) one: not pipelined";
    lock_tx.abort();
    while (done < 4 && io_.run_one() > 0) {
    }
    EXPECT_EQ(done, 4);
    EXPECT_TRUE(all_ok);
    EXPECT_EQ(pool_->stats().statements - before.statements, 4u);
}

}  // namespace

namespace {

// Every answer of `f` as text, to compare two sources' answers field by field.
std::string describe(const clients::subject_facts& f) {
    std::string out;
    const auto us = [](const std::optional<std::chrono::system_clock::time_point>& t) {
        return t ? std::to_string(std::chrono::floor<std::chrono::microseconds>(t->time_since_epoch()).count())
                 : std::string("-");
    };
    if (f.active_ban)
        out += "ban " + f.active_ban->subject_id + " " + f.active_ban->reason + " " + us(f.active_ban->until);
    out += " | ";
    if (f.highest_subscription) {
        const auto& s = *f.highest_subscription;
        out += "sub " + s.owner_id + " " + std::to_string(static_cast<int>(s.plan)) + " " + s.status + " " +
               std::to_string(s.seats) + " " + us(s.current_period_end);
    }
    out += " | usage " + std::to_string(f.period_usage.requests) + " " + std::to_string(f.period_usage.tokens) + " | ";
    if (f.membership) {
        const auto& m = *f.membership;
        out += "member " + m.org_id + " " + m.user_id + " " + m.role + " " +
               (m.usage_cap ? std::to_string(*m.usage_cap) : std::string("-")) + " " + std::to_string(m.used);
    }
    return out;
}

}  // namespace

TEST_F(pg_facts, gathered_reads_of_several_requests_share_a_call_and_answer_as_each_alone) {
    clients::pg_fact_writer w{*pool_};
    const auto ua = unique_key("user-a"), oa = unique_key("org-a");
    const auto ub = unique_key("user-b"), ob = unique_key("org-b");
    const auto uc = unique_key("user-c");
    const auto od = unique_key("org-d, \"quoted\" {braces} \\ backslash");  // survives the array literal
    const auto soon = std::chrono::system_clock::now() + 1h;
    ASSERT_TRUE(run(io_, w.put_subscription({oa, clients::plan_tier::team, "active", 3, soon})));
    ASSERT_TRUE(run(io_, w.put_subscription({ua, clients::plan_tier::pro, "active", 1, std::nullopt})));
    ASSERT_TRUE(run(io_, w.put_usage(oa, "2026-11-01", {5, 6})));
    ASSERT_TRUE(run(io_, w.put_member({oa, ua, "admin", 10, 2})));
    ASSERT_TRUE(run(io_, w.put_ban({ob, "fraud", std::nullopt})));
    ASSERT_TRUE(run(io_, w.put_subscription({ob, clients::plan_tier::free, "active", 1, std::nullopt})));
    ASSERT_TRUE(run(io_, w.put_member({ob, ub, "member", std::nullopt, 0})));
    ASSERT_TRUE(run(io_, w.put_ban({uc, "abuse", soon})));
    ASSERT_TRUE(run(io_, w.put_subscription({od, clients::plan_tier::enterprise, "trialing", 9, std::nullopt})));
    ASSERT_TRUE(run(io_, w.put_ban({od, "chargeback", std::nullopt})));

    std::vector<clients::subject_facts_query> qs;
    qs.push_back({{ua, oa}, ua, oa, oa, "2026-11-01", true});
    qs.push_back({{ub, ob}, ub, ob, ob, "2026-11-01", true});
    qs.push_back({{uc}, uc, "", "", "", false});
    qs.push_back({{}, ua, ob, oa, "2026-11-01", true});  // no such membership; usage of another subject
    qs.push_back({{ua, od}, ua, od, "", "", true});
    qs.push_back(qs[1]);  // the same request twice in one call

    clients::pg_subject_facts_source alone{*pool_};
    std::vector<std::string> expected;
    for (const auto& q : qs) {
        auto f = run(io_, alone.load(q));
        ASSERT_TRUE(f.has_value()) << f.error().message();
        expected.push_back(describe(*f));
    }
    EXPECT_NE(expected[0], expected[1]);
    EXPECT_NE(expected[0].find("member"), std::string::npos);
    EXPECT_NE(expected[4].find("chargeback"), std::string::npos);

    clients::pg_subject_facts_source gathered{
        *pool_, clients::pg_gather_options{.max_in_flight = 1, .max_per_call = 64}};
    std::vector<std::future<preflight::result<clients::subject_facts>>> fs;
    for (const auto& q : qs) fs.push_back(asio::co_spawn(io_, gathered.load(q), asio::use_future));
    io_.restart();
    while (std::any_of(fs.begin(), fs.end(), [](auto& f) { return f.wait_for(0s) != std::future_status::ready; })) {
        ASSERT_GT(io_.run_one_for(5s), 0U);
    }
    for (std::size_t i = 0; i < fs.size(); ++i) {
        auto f = fs[i].get();
        ASSERT_TRUE(f.has_value()) << i << ": " << f.error().message();
        EXPECT_EQ(describe(*f), expected[i]) << "request " << i;
    }
    // The first read found nothing in flight and left at once, alone; the five after it gathered into one call.
    const auto st = gathered.gather_stats();
    EXPECT_EQ(st.calls, 2U);
    EXPECT_EQ(st.many_calls, 1U);
    EXPECT_EQ(st.items, qs.size());
    EXPECT_EQ(st.retried, 0U);
}

TEST_F(pg_facts, a_bad_read_in_a_gathered_call_fails_by_itself) {
    clients::pg_fact_writer w{*pool_};
    const auto org = unique_key("org");
    ASSERT_TRUE(run(io_, w.put_usage(org, "2026-11-01", {3, 4})));
    clients::pg_subject_facts_source gathered{*pool_, clients::pg_gather_options{}};
    std::vector<clients::subject_facts_query> qs;
    qs.push_back({{}, "", org, org, "2026-11-01", false});
    qs.push_back({{}, "", org, org, "not a date", false});  // the server rejects it: the shared call fails
    qs.push_back({{}, "", org, org, "2026-11-01", false});
    std::vector<std::future<preflight::result<clients::subject_facts>>> fs;
    for (const auto& q : qs) fs.push_back(asio::co_spawn(io_, gathered.load(q), asio::use_future));
    io_.restart();
    while (std::any_of(fs.begin(), fs.end(), [](auto& f) { return f.wait_for(0s) != std::future_status::ready; })) {
        ASSERT_GT(io_.run_one_for(5s), 0U);
    }
    auto r0 = fs[0].get();
    auto r1 = fs[1].get();
    auto r2 = fs[2].get();
    ASSERT_TRUE(r0.has_value()) << r0.error().message();
    EXPECT_EQ(r0->period_usage.requests, 3U);
    ASSERT_FALSE(r1.has_value());
    EXPECT_EQ(r1.error(), errc::bad_input);
    ASSERT_TRUE(r2.has_value()) << r2.error().message();
    EXPECT_EQ(r2->period_usage.tokens, 4U);
    EXPECT_EQ(gathered.gather_stats().many_calls, 1U) << "the first read left alone, the other two together";
    EXPECT_EQ(gathered.gather_stats().retried, 2U) << "each read of the shared call again alone";
}

TEST_F(pg_facts, a_lone_gathered_read_leaves_at_once_within_its_callers_turn_unless_load_was_seen) {
    const auto org = unique_key("org");
    clients::pg_subject_facts_source gathered{*pool_, clients::pg_gather_options{}};
    const clients::subject_facts_query q{{org}, "", org, "", "", false};
    ASSERT_TRUE(run(io_, gathered.load(q)));  // connects and prepares
    ASSERT_EQ(pool_->busy(), 0U);
    // Statements sent within the turn that starts one read (from the io_context's own thread, the read runs inline
    // until it waits for its answer), then the read's success.
    const auto sent_in_turn = [&] {
        return run(io_, [&]() -> asio::awaitable<std::uint64_t> {
            auto ex = co_await asio::this_coro::executor;
            const auto before = pool_->stats().statements;
            auto f = asio::co_spawn(ex, gathered.load(q), asio::use_future);
            const auto in_turn = pool_->stats().statements - before;
            while (f.wait_for(0s) != std::future_status::ready) co_await asio::post(ex, asio::use_awaitable);
            EXPECT_TRUE(f.get().has_value());
            co_return in_turn;
        }());
    };
    EXPECT_EQ(sent_in_turn(), 1U) << "nothing in flight: on the wire when co_spawn returns";
    EXPECT_EQ(pool_->busy(), 0U) << "every statement answered";

    // Load: three reads in one turn (the first leaves alone, the other two share a call).
    std::vector<std::future<preflight::result<clients::subject_facts>>> fs;
    for (int i = 0; i < 3; ++i) fs.push_back(asio::co_spawn(io_, gathered.load(q), asio::use_future));
    io_.restart();
    while (std::any_of(fs.begin(), fs.end(), [](auto& f) { return f.wait_for(0s) != std::future_status::ready; })) {
        ASSERT_GT(io_.run_one_for(5s), 0U);
    }
    ASSERT_EQ(gathered.gather_stats().many_calls, 1U);
    EXPECT_EQ(sent_in_turn(), 0U) << "the last call was shared: the next read waits for the end of its turn";
    EXPECT_EQ(sent_in_turn(), 1U) << "that one was alone: at once again";
}
