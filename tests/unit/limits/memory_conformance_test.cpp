// The store conformance suites, instantiated for the in-memory stores (the Postgres stores run the same
// cases in tests/integration/pg_conformance_test.cpp).
#include "conformance/admission_store_conformance.hpp"
#include "conformance/fixed_window_store_conformance.hpp"
#include "conformance/memory_factory.hpp"
#include "conformance/rate_limit_store_conformance.hpp"
#include <preflight/limits/memory_admission_store.hpp>
#include <preflight/limits/memory_fixed_window_store.hpp>
#include <preflight/limits/memory_rate_limit_store.hpp>

namespace preflight::conformance {
using memory_rate_factory = memory_store_factory<limits::memory_rate_limit_store>;
using memory_window_factory = memory_store_factory<limits::memory_fixed_window_store>;
using memory_admission_factory = memory_store_factory<limits::memory_admission_store>;
INSTANTIATE_TYPED_TEST_SUITE_P(memory, rate_limit_store_conformance, memory_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(memory, fixed_window_store_conformance, memory_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(memory, admission_store_conformance, memory_admission_factory);
}  // namespace preflight::conformance
