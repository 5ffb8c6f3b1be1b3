// The store conformance suites, instantiated for the in-memory stores (the Postgres stores run the same
// cases in tests/integration/pg_conformance_test.cpp).
#include "conformance/admission_store_conformance.hpp"
#include "conformance/fixed_window_store_conformance.hpp"
#include "conformance/limit_chain_conformance.hpp"
#include "conformance/memory_factory.hpp"
#include "conformance/rate_limit_store_conformance.hpp"
#include "conformance/run_budget_store_conformance.hpp"
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_limit_chain.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

namespace preflight::conformance {
using memory_rate_factory = memory_store_factory<limits::memory_rate_limit_store>;
using memory_window_factory = memory_store_factory<limits::memory_fixed_window_store>;
using memory_admission_factory = memory_store_factory<limits::memory_admission_store>;
INSTANTIATE_TYPED_TEST_SUITE_P(memory, rate_limit_store_conformance, memory_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(memory, fixed_window_store_conformance, memory_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(memory, admission_store_conformance, memory_admission_factory);

/// The in-memory chain over three fresh in-memory stores on a manual clock.
struct memory_chain_factory {
    static constexpr std::chrono::milliseconds tolerance{0};
    void set_up(boost::asio::io_context&) {}
    limits::limit_chain& store() { return chain; }
    void advance(std::chrono::milliseconds d) { clock.advance(d); }

    manual_clock clock;
    limits::memory_fixed_window_store windows{clock};
    limits::memory_rate_limit_store buckets{clock};
    limits::memory_admission_store admissions{clock};
    limits::memory_limit_chain chain{windows, buckets, admissions};
};
INSTANTIATE_TYPED_TEST_SUITE_P(memory, limit_chain_conformance, memory_chain_factory);
using memory_run_budget_factory = memory_store_factory<limits::memory_run_budget_store>;
INSTANTIATE_TYPED_TEST_SUITE_P(memory, run_budget_store_conformance, memory_run_budget_factory);
}  // namespace preflight::conformance
