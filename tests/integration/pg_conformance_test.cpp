#include "conformance/admission_store_conformance.hpp"
#include "conformance/fixed_window_store_conformance.hpp"
#include "conformance/rate_limit_store_conformance.hpp"
#include "pg_fixture.hpp"

// The store conformance suites, instantiated for the Postgres stores (the in-memory twins instantiate the same
// suites with a manual_clock factory).
using pg_rate_factory = preflight::test::pg_store_factory<preflight::clients::pg_rate_limit_store>;
using pg_window_factory = preflight::test::pg_store_factory<preflight::clients::pg_fixed_window_store>;
using pg_admission_factory = preflight::test::pg_store_factory<preflight::clients::pg_admission_store>;
// The same stores with their writes batched (pg_limit_batch, the default of make_pg_store_set).
using pg_batched_rate_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_rate_limit_store>;
using pg_batched_window_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_fixed_window_store>;
using pg_batched_admission_factory = preflight::test::pg_batched_store_factory<preflight::clients::pg_admission_store>;

namespace preflight::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, rate_limit_store_conformance, pg_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, fixed_window_store_conformance, pg_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, admission_store_conformance, pg_admission_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, rate_limit_store_conformance, pg_batched_rate_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, fixed_window_store_conformance, pg_batched_window_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(postgres_batched, admission_store_conformance, pg_batched_admission_factory);
}  // namespace preflight::conformance
