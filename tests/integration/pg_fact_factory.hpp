#pragma once

#include "conformance/conformance_support.hpp"
#include "pg_fixture.hpp"
#include <preflight/clients/pg_facts.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace preflight::test {

/// Fact conformance factory (contract in tests/conformance/fact_store_conformance.hpp) for the Postgres fact
/// stores: a small pool on the test's io_context, seeding through `pg_fact_writer`; the ban store's clock is the
/// server's real clock, so `advance` waits.
struct pg_fact_factory {
    static constexpr std::chrono::milliseconds tolerance{100};

    void set_up(boost::asio::io_context& io) {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(ensure_migrated(url)) << "the migrations failed (above)";
        io_ = &io;
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        pool = std::make_unique<clients::pg_pool>(io.get_executor(), p);
        ban_store = std::make_unique<clients::pg_ban_store>(*pool);
        subscription_store = std::make_unique<clients::pg_subscription_store>(*pool);
        usage_store = std::make_unique<clients::pg_usage_store>(*pool);
        member_store = std::make_unique<clients::pg_member_store>(*pool);
        balance_source = std::make_unique<clients::pg_balance_source>(*pool);
        combined = std::make_unique<clients::pg_subject_facts_source>(*pool);
        writer = std::make_unique<clients::pg_fact_writer>(*pool);
    }
    clients::ban_store& bans() { return *ban_store; }
    clients::subscription_store& subscriptions() { return *subscription_store; }
    clients::usage_store& usage() { return *usage_store; }
    clients::member_store& members() { return *member_store; }
    clients::balance_source& balances() { return *balance_source; }
    clients::subject_facts_source& subject_facts() { return *combined; }
    std::chrono::system_clock::time_point now() const { return std::chrono::system_clock::now(); }
    void advance(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

    void put_ban(clients::ban b) { seeded(writer->put_ban(std::move(b))); }
    void put_subscription(clients::subscription s) { seeded(writer->put_subscription(std::move(s))); }
    void put_usage(const std::string& subject, const std::string& period_start, clients::usage u) {
        seeded(writer->put_usage(subject, period_start, u));
    }
    void put_member(clients::member m) { seeded(writer->put_member(std::move(m))); }
    void put_balance(const std::string& org_id, std::int64_t remaining) {
        seeded(writer->put_balance(org_id, remaining));
    }

    void seeded(boost::asio::awaitable<result<void>> aw) {
        auto r = conformance::run(*io_, std::move(aw));
        ASSERT_TRUE(r.has_value()) << "seeding: " << r.error().message();
    }

    boost::asio::io_context* io_ = nullptr;
    std::unique_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::pg_ban_store> ban_store;
    std::unique_ptr<clients::pg_subscription_store> subscription_store;
    std::unique_ptr<clients::pg_usage_store> usage_store;
    std::unique_ptr<clients::pg_member_store> member_store;
    std::unique_ptr<clients::pg_balance_source> balance_source;
    std::unique_ptr<clients::pg_subject_facts_source> combined;
    std::unique_ptr<clients::pg_fact_writer> writer;
};

}  // namespace preflight::test
