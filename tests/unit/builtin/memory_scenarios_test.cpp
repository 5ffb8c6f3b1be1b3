// The issue 7 seed scenarios on the in-memory stores (the embedded default).
#include "scenario_suite.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

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

/// The same with the speculative stateful phase (off by default on in-memory stores).
struct memory_speculative_factory : memory_scenario_factory {
    static constexpr const char* speculative = "on";
};
INSTANTIATE_TYPED_TEST_SUITE_P(memory_speculative, builtin_scenarios, memory_speculative_factory);

}  // namespace
}  // namespace preflight::builtin_test
