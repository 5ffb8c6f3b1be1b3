// The issue 7 seed scenarios on the in-memory stores (the embedded default).
#include "scenario_suite.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/facts/subject_facts.hpp>
#include <preflight/limits/memory_limit_chain.hpp>

namespace preflight::builtin_test {
namespace {

/// Scenario factory for the in-memory store set (`clients::make_memory_store_set` on the suite's clock).
struct memory_scenario_factory {
    void set_up(asio::io_context&, const preflight::clock& clk) {
        stores_ = clients::make_memory_store_set(facts_, clk);
    }
    clients::store_set stores() { return stores_; }
    void seed(const boost::json::value& facts) { clients::load_fact_data(facts, facts_); }

    clients::memory_fact_stores facts_;
    clients::store_set stores_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(memory, builtin_scenarios, memory_scenario_factory);

/// The same with the stateful gates as one ordered call (`limits::memory_limit_chain`; the in-memory set offers none
/// by default, its gates answering synchronously one after another).
struct memory_chain_factory : memory_scenario_factory {
    void set_up(asio::io_context& io, const preflight::clock& clk) {
        memory_scenario_factory::set_up(io, clk);
        chain_ = std::make_shared<limits::memory_limit_chain>(
            dynamic_cast<limits::memory_fixed_window_store&>(*stores_.windows),
            dynamic_cast<limits::memory_rate_limit_store&>(*stores_.rate_limits),
            dynamic_cast<limits::memory_admission_store&>(*stores_.admissions)
        );
        stores_.limit_chain = chain_;
    }
    std::shared_ptr<limits::memory_limit_chain> chain_;
};
INSTANTIATE_TYPED_TEST_SUITE_P(memory_chain, builtin_scenarios, memory_chain_factory);

/// The same with the read-only gates reading through one combined lookup (`store_set::subject_facts`), as on
/// Postgres.
struct memory_combined_reads_factory : memory_scenario_factory {
    void set_up(asio::io_context& io, const preflight::clock& clk) {
        memory_scenario_factory::set_up(io, clk);
        stores_.subject_facts = std::make_shared<clients::composed_subject_facts>(
            stores_.bans, stores_.subscriptions, stores_.usage, stores_.members
        );
    }
};
INSTANTIATE_TYPED_TEST_SUITE_P(memory_combined_reads, builtin_scenarios, memory_combined_reads_factory);

}  // namespace
}  // namespace preflight::builtin_test
