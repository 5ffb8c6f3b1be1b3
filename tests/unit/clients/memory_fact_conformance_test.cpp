#include "conformance/fact_store_conformance.hpp"
#include "conformance/memory_fact_factory.hpp"

// The fact store conformance suites, instantiated for the in-memory stores (Postgres: tests/integration/
// pg_fact_conformance_test.cpp).
namespace preflight::conformance {
PREFLIGHT_INSTANTIATE_FACT_CONFORMANCE(memory, memory_fact_factory);
}  // namespace preflight::conformance
