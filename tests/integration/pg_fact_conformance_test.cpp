#include "conformance/fact_store_conformance.hpp"
#include "pg_fact_factory.hpp"

// The fact store conformance suites, instantiated for the Postgres fact stores (the in-memory stores instantiate
// the same suites in tests/unit/clients/memory_fact_conformance_test.cpp).
using pg_fact_factory = preflight::test::pg_fact_factory;

namespace preflight::conformance {
PREFLIGHT_INSTANTIATE_FACT_CONFORMANCE(postgres, pg_fact_factory);
}  // namespace preflight::conformance
