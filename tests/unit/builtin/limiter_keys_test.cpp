// The public limiter keys (gates/builtin/limiter_keys.hpp): the exact strings the default pipeline's limiters write
// under, so that operators and tests never rebuild them by hand; and that the pipeline really counts under them.
#include "scenario_support.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <gtest/gtest.h>

namespace preflight::builtin_test {
namespace {

g::request req(g::operation op, std::string org, std::string user = {}, std::string key = {}, std::string ip = {}) {
    g::request r;
    r.op = op;
    r.subject.org = std::move(org);
    r.subject.user = std::move(user);
    r.subject.api_key_id = std::move(key);
    r.subject.ip = std::move(ip);
    return r;
}

TEST(limiter_keys, EachLimiterKeyFollowsItsSubjectOrder) {
    using g::operation;
    EXPECT_EQ(g::backstop_key(req(operation::execute, "o1", "u1")), "backstop:o1");
    EXPECT_EQ(g::backstop_key(req(operation::execute, "", "u1")), "") << "the backstop counts orgs only";
    EXPECT_EQ(g::rate_limit_key(req(operation::execute, "o1", "u1")), "rl:write:org:o1");
    EXPECT_EQ(g::rate_limit_key(req(operation::read, "o1", "u1")), "rl:read:org:o1");
    EXPECT_EQ(g::rate_limit_key(req(operation::cancel, "", "u1")), "rl:write:user:u1");
    EXPECT_EQ(g::rate_limit_key(req(operation::execute, "", "", "k1", "10.0.0.1")), "rl:write:key:k1");
    EXPECT_EQ(g::rate_limit_key(req(operation::read, "", "", "", "10.0.0.1")), "rl:read:ip:10.0.0.1");
    EXPECT_EQ(g::rate_limit_key(req(operation::read, "", "")), "");
    EXPECT_EQ(g::admission_key(req(operation::execute, "o1", "u1")), "org:o1");
    EXPECT_EQ(g::admission_key(req(operation::execute, "", "u1")), "user:u1");
    EXPECT_EQ(g::admission_key(req(operation::execute, "", "", "k1")), "");
    auto with_run = req(operation::execute, "o1");
    with_run.subject.run_id = "run-7";
    EXPECT_EQ(g::run_budget_key(with_run), "run-7");
    EXPECT_EQ(g::limiter_key("rate_limit", with_run), "rl:write:org:o1");
    EXPECT_EQ(g::limiter_key("backstop", with_run), "backstop:o1");
    EXPECT_EQ(g::limiter_key("admission", with_run), "org:o1");
    EXPECT_EQ(g::limiter_key("run_budget", with_run), "run-7");
    EXPECT_EQ(g::limiter_key("ban", with_run), "") << "not a limiter";
}

TEST(limiter_keys, ThePipelineCountsUnderThoseKeys) {
    manual_clock clock;
    clients::memory_fact_stores facts;
    clients::load_fact_data(boost::json::parse(standard_seed), facts);
    auto stores = clients::make_memory_store_set(facts, clock);
    g::default_pipeline_deps deps;
    deps.stores = stores;
    g::default_pipeline_options opts;
    opts.wall_clock = [] { return fixed_wall_time(); };
    auto p = g::default_pipeline_with_options(make_config(), std::move(deps), std::move(opts));
    asio::io_context io;
    auto r = req(g::operation::execute, "org_ok", "user_ok");
    auto d = run(io, p.run(r));
    ASSERT_TRUE(d.allowed) << d.code;
    limits::window_limit w;
    EXPECT_EQ(run(io, stores.windows->consume(g::backstop_key(r), w, 0))->count, 1U);
    limits::bucket_limit pro_write{5, 100};  // the pro tier's write bucket (docs/gates.md)
    EXPECT_DOUBLE_EQ(run(io, stores.rate_limits->acquire(g::rate_limit_key(r), pro_write, 0))->remaining, 99.0);
    EXPECT_EQ(dynamic_cast<limits::memory_admission_store&>(*stores.admissions).in_use(g::admission_key(r)), 1U);
    EXPECT_TRUE(run(io, d.lease.release()).has_value());
}

}  // namespace
}  // namespace preflight::builtin_test
