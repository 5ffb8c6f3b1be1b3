#pragma once

#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/facts/subject_facts.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace preflight::conformance {

/// Fact conformance factory (contract in fact_store_conformance.hpp) for the in-memory fact stores: the ban
/// store's wall clock is a manual one, so expectations hold exactly (tolerance 0).
struct memory_fact_factory {
    static constexpr std::chrono::milliseconds tolerance{0};

    void set_up(boost::asio::io_context&) {
        stores_.bans = std::make_shared<clients::memory_ban_store>([this] { return now_; });
        combined_ = std::make_shared<clients::composed_subject_facts>(
            stores_.bans, stores_.subscriptions, stores_.usage, stores_.members
        );
    }
    clients::ban_store& bans() { return *stores_.bans; }
    clients::subscription_store& subscriptions() { return *stores_.subscriptions; }
    clients::usage_store& usage() { return *stores_.usage; }
    clients::member_store& members() { return *stores_.members; }
    clients::balance_source& balances() { return *stores_.balances; }
    clients::subject_facts_source& subject_facts() { return *combined_; }
    std::chrono::system_clock::time_point now() const { return now_; }
    void advance(std::chrono::milliseconds d) { now_ += d; }

    void put_ban(clients::ban b) { stores_.bans->put(std::move(b)); }
    void put_subscription(clients::subscription s) { stores_.subscriptions->put(std::move(s)); }
    void put_usage(const std::string& subject, const std::string& period_start, clients::usage u) {
        stores_.usage->put(subject, period_start, u);
    }
    void put_member(clients::member m) { stores_.members->put(std::move(m)); }
    void put_balance(const std::string& org_id, std::int64_t remaining) { stores_.balances->put(org_id, remaining); }

    std::chrono::system_clock::time_point now_ = std::chrono::system_clock::from_time_t(1'800'000'000);
    clients::memory_fact_stores stores_;
    std::shared_ptr<clients::composed_subject_facts> combined_;
};

}  // namespace preflight::conformance
