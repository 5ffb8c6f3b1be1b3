#include "conformance/fact_store_conformance.hpp"
#include "pg_fact_factory.hpp"

// The fact store conformance suites, instantiated for the Postgres fact stores (the in-memory stores instantiate
// the same suites in tests/unit/clients/memory_fact_conformance_test.cpp).
using pg_fact_factory = preflight::test::pg_fact_factory;

namespace preflight::conformance {
PREFLIGHT_INSTANTIATE_FACT_CONFORMANCE(postgres, pg_fact_factory);
}  // namespace preflight::conformance

// The deployed-state store conformance suite on Postgres (jsonb by version id).
#include "conformance/deployed_state_store_conformance.hpp"
#include <preflight/clients/pg_deployed_state_store.hpp>

namespace preflight::conformance {
namespace {
struct pg_deployed_state_factory {
    void set_up(boost::asio::io_context& io) {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(test::ensure_migrated(url)) << "the migrations failed (above)";
        clients::pool_params p;
        p.url = url;
        p.size = 1;
        pool = std::make_shared<clients::pg_pool>(io.get_executor(), p);
        store_ = std::make_shared<clients::pg_deployed_state_store>(*pool);
    }
    std::shared_ptr<clients::deployed_state_store> store() { return store_; }
    std::shared_ptr<clients::pg_pool> pool;
    std::shared_ptr<clients::pg_deployed_state_store> store_;
};
}  // namespace
INSTANTIATE_TYPED_TEST_SUITE_P(postgres, deployed_state_store_conformance, pg_deployed_state_factory);
}  // namespace preflight::conformance
