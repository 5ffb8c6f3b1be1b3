#include "pg_env.hpp"
#include "pg_fixture.hpp"
#include "unit/builtin/scenario_support.hpp"
#include <preflight/clients/pg_facts.hpp>
#include <preflight/clients/pg_store_set.hpp>

#include <boost/json/object.hpp>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

// Talks to the throwaway Postgres started by scripts/pg.sh (PREFLIGHT_TEST_PG_URL).
TEST(pg_roundtrip, parameterized_upsert_returning) {
    PREFLIGHT_REQUIRE_PG(url);
    pqxx::connection conn{url};
    {
        pqxx::nontransaction tx{conn};
        tx.exec("CREATE TEMP TABLE roundtrip (id text PRIMARY KEY, hits bigint NOT NULL)");
    }
    conn.prepare(
        "upsert",
        "INSERT INTO roundtrip (id, hits) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET hits = roundtrip.hits + EXCLUDED.hits "
        "RETURNING hits, (xmax = 0) AS inserted"
    );
    // A key full of SQL metacharacters and unicode is stored and matched exactly.
    const std::string key = "org'; DROP TABLE roundtrip; -- ünï 🚀";
    pqxx::nontransaction tx{conn};
    auto first = tx.exec_prepared1("upsert", key, 5);
    EXPECT_EQ(first[0].as<long>(), 5);
    EXPECT_TRUE(first[1].as<bool>());
    auto second = tx.exec_prepared1("upsert", key, 7);
    EXPECT_EQ(second[0].as<long>(), 12);
    EXPECT_FALSE(second[1].as<bool>());
    auto row = tx.exec_params1("SELECT id, hits FROM roundtrip WHERE id = $1", key);
    EXPECT_EQ(row[0].as<std::string>(), key);
    EXPECT_EQ(row[1].as<long>(), 12);
}

// ---- round trips of a full default preflight (issue 6) ---------------------------------------------------------
//
// The pool's statement hook records every statement sent and completed. The critical path is the longest chain of
// statements each sent after the previous one completed: depth(s) = 1 + the largest depth among the statements that
// completed before s was sent (within one preflight, every completed statement may be what s waited for, so this
// never under-counts).

namespace preflight::builtin_test {
namespace {

struct statement_log {
    struct entry {
        std::string name;
        bool internal = false;
        int depth = 0;
        bool done = false;
        bool failed = false;
    };
    std::map<std::uint64_t, entry> statements;
    int max_done_depth = 0;

    void on(const clients::pg_statement_event& e) {
        if (e.what == clients::pg_statement_event::kind::sent) {
            statements[e.id] = entry{std::string(e.statement), e.internal, max_done_depth + 1, false, false};
            return;
        }
        auto it = statements.find(e.id);
        if (it == statements.end()) return;
        it->second.done = true;
        it->second.failed = static_cast<bool>(e.error);
        max_done_depth = std::max(max_done_depth, it->second.depth);
    }
    void clear() {
        statements.clear();
        max_done_depth = 0;
    }
    /// Longest chain of sequential round trips.
    [[nodiscard]] int critical_path() const {
        int d = 0;
        for (const auto& [id, s] : statements) d = std::max(d, s.depth);
        return d;
    }
    /// Statements the stores sent (PREPAREs of first use excluded).
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [id, s] : statements) {
            if (!s.internal) out.push_back(s.name);
        }
        std::sort(out.begin(), out.end());
        return out;
    }
    [[nodiscard]] std::vector<std::string> names_at_depth(int depth) const {
        std::vector<std::string> out;
        for (const auto& [id, s] : statements) {
            if (!s.internal && s.depth == depth) out.push_back(s.name);
        }
        std::sort(out.begin(), out.end());
        return out;
    }
};

class pg_preflight_roundtrips : public ::testing::Test {
protected:
    void SetUp() override {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(test::ensure_migrated(url)) << "the migrations failed (above)";
        const std::string p = "rt" + std::to_string(::getpid()) + "_";
        org = p + "org";
        warm_org = p + "org_warm";
        user = p + "user";
        banned = p + "banned";
        over_org = p + "org_over";
        const auto period = g::usage_period_start(std::chrono::system_clock::now());
        {
            pqxx::connection c{url};
            pqxx::nontransaction tx{c};
            for (const auto& id : {org, warm_org, user, banned, over_org}) {
                tx.exec_params("DELETE FROM preflight_bans WHERE subject_id = $1", id);
                tx.exec_params("DELETE FROM preflight_subscriptions WHERE owner_id = $1", id);
                tx.exec_params("DELETE FROM preflight_usage WHERE subject_id = $1", id);
                tx.exec_params("DELETE FROM preflight_balances WHERE org_id = $1", id);
                tx.exec_params("DELETE FROM preflight_org_members WHERE org_id = $1", id);
                g::request of;
                of.op = g::operation::execute;
                of.subject.org = id;
                tx.exec_params("DELETE FROM preflight_windows WHERE key = $1", g::backstop_key(of));
                tx.exec_params("DELETE FROM preflight_rate_limits WHERE key = $1", g::rate_limit_key(of));
                tx.exec_params("DELETE FROM preflight_leases WHERE key = $1", g::admission_key(of));
            }
            tx.exec_params("INSERT INTO preflight_bans (subject_id, reason) VALUES ($1, 'abuse')", banned);
            for (const auto& [o, plan, used] :
                 {std::tuple{org, "pro", 10}, std::tuple{warm_org, "pro", 10}, std::tuple{over_org, "free", 1000}}) {
                tx.exec_params(
                    "INSERT INTO preflight_subscriptions (owner_id, plan, status) VALUES ($1, $2, 'active')", o, plan
                );
                tx.exec_params(
                    "INSERT INTO preflight_usage (subject_id, period_start, requests) VALUES ($1, $2::date, $3)",
                    o,
                    period,
                    used
                );
                tx.exec_params("INSERT INTO preflight_balances (org_id, remaining) VALUES ($1, 100)", o);
                // Uncapped members: the member cap gate reads the membership and passes.
                tx.exec_params("INSERT INTO preflight_org_members (org_id, user_id) VALUES ($1, $2)", o, user);
                tx.exec_params("INSERT INTO preflight_org_members (org_id, user_id) VALUES ($1, $2)", o, banned);
            }
        }
        clients::pool_params pp;
        pp.url = url;
        pp.size = 4;
        pp.on_statement = [this](const clients::pg_statement_event& e) { log.on(e); };
        pool = std::make_shared<clients::pg_pool>(io.get_executor(), pp);
        ASSERT_TRUE(run(io, pool->connect_all()).has_value());
        build({});
    }

    // (Re)builds the pipeline on the pool with store options `o`.
    void build(clients::pg_store_options o, const boost::json::object& config = {}) {
        g::default_pipeline_deps deps;
        deps.stores = clients::make_pg_store_set(pool, o);
        pipe.reset();
        pipe.emplace(g::default_pipeline(make_config(config), std::move(deps)));
    }

    // The allowed path: every read at depth 1, the stateful phase's `writes` together at depth 2.
    void expect_allowed_path(const std::vector<std::string>& writes);

    g::decision preflight(const std::string& o, const std::string& u) {
        g::request r;
        r.op = g::operation::execute;
        r.subject.org = o;
        r.subject.user = u;
        log.clear();
        auto d = run(io, pipe->run(std::move(r)));
        return d;
    }

    // Every statement of the run has completed (a cancelled read may still be in flight: wait for it).
    void settle() {
        for (int i = 0; i < 1000; ++i) {
            bool all = std::all_of(log.statements.begin(), log.statements.end(), [](const auto& kv) {
                return kv.second.done;
            });
            if (all) return;
            io.run_one_for(std::chrono::milliseconds(5));
        }
    }

    asio::io_context io;
    statement_log log;
    std::shared_ptr<clients::pg_pool> pool;
    std::optional<g::pipeline> pipe;
    std::string org, warm_org, user, banned, over_org;
};

// The ban, subscription, usage and membership lookups are one statement (`pg_subject_facts_source`); the balance is
// its own source (it may be another backend, and its outcome is cached per org).
const std::vector<std::string> reads{"preflight_balance_get", "preflight_subject_facts"};
// The backstop consume, rate-limit acquire and admission reserve: one ordered call by default (pg_limit_chain).
const std::vector<std::string> chained_writes{"preflight_limit_chain"};

void pg_preflight_roundtrips::expect_allowed_path(const std::vector<std::string>& writes) {
    {
        auto warm = preflight(warm_org, user);  // prepares every statement on first use (another org: no cache hit)
        ASSERT_TRUE(warm.allowed) << warm.message;
        settle();
        ASSERT_TRUE(run(io, warm.lease.release()).has_value());
    }
    auto d = preflight(org, user);
    ASSERT_TRUE(d.allowed) << d.gate << ": " << d.message;
    settle();
    std::vector<std::string> all = reads;
    all.insert(all.end(), writes.begin(), writes.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(log.names(), all) << "the combined read, the balance, backstop + rate limit + admission";
    EXPECT_LE(log.critical_path(), 2) << "reads in one round trip, consume + reserve in the next";
    EXPECT_EQ(log.names_at_depth(1), reads) << "every read starts when the run begins";
    EXPECT_EQ(log.names_at_depth(2), writes) << "the stateful gates and the commit are one ordered call";
    ASSERT_TRUE(run(io, d.lease.release()).has_value());

    // The same org again: its balance outcome is cached (60 s), one statement fewer, still two round trips.
    auto again = preflight(org, user);
    ASSERT_TRUE(again.allowed) << again.gate << ": " << again.message;
    settle();
    EXPECT_EQ(log.names().size(), all.size() - 1);
    EXPECT_LE(log.critical_path(), 2);
    ASSERT_TRUE(run(io, again.lease.release()).has_value());
}

TEST_F(pg_preflight_roundtrips, AllowedPathHasTwoSequentialRoundTripsAndOneWriteStatement) {
    expect_allowed_path(chained_writes);
}

// pipeline.stateful_call = separate: one statement per stateful gate, one after another, admission last.
TEST_F(pg_preflight_roundtrips, SeparateStatefulCallsGoOneAfterAnotherAdmissionLast) {
    boost::json::object o;
    o["pipeline.stateful_call"] = "separate";
    build({.batch_limit_writes = false, .gather_reads = true, .gather = {}}, o);
    auto warm = preflight(warm_org, user);
    ASSERT_TRUE(warm.allowed) << warm.message;
    settle();
    ASSERT_TRUE(run(io, warm.lease.release()).has_value());
    auto d = preflight(org, user);
    ASSERT_TRUE(d.allowed) << d.gate << ": " << d.message;
    settle();
    EXPECT_EQ(log.critical_path(), 4);
    EXPECT_EQ(log.names_at_depth(2), std::vector<std::string>{"preflight_fw_consume"});
    EXPECT_EQ(log.names_at_depth(3), std::vector<std::string>{"preflight_rl_acquire"});
    EXPECT_EQ(log.names_at_depth(4), std::vector<std::string>{"preflight_adm_reserve"});
    ASSERT_TRUE(run(io, d.lease.release()).has_value());
}

TEST_F(pg_preflight_roundtrips, DeniedByAReadWritesNothing) {
    auto banned_d = preflight(over_org, banned);
    EXPECT_EQ(banned_d.status, 403);
    settle();
    EXPECT_EQ(log.critical_path(), 1);
    for (const auto& n : log.names()) EXPECT_NE(n, chained_writes[0]);

    auto over = preflight(over_org, user);
    EXPECT_EQ(over.status, 402);
    EXPECT_EQ(over.code, "usage_limit_exceeded");
    settle();
    EXPECT_EQ(log.critical_path(), 1) << "the usage read started with the subscription's";
    for (const auto& n : log.names()) EXPECT_NE(n, chained_writes[0]);
}

}  // namespace
}  // namespace preflight::builtin_test
