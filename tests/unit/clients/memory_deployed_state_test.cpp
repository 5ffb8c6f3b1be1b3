#include "conformance/deployed_state_store_conformance.hpp"

// The deployed-state store conformance suite on the in-memory store (Postgres: tests/integration/
// pg_fact_conformance_test.cpp).
namespace preflight::conformance {
namespace {
struct memory_deployed_state_factory {
    void set_up(boost::asio::io_context&) {}
    std::shared_ptr<clients::deployed_state_store> store() { return store_; }
    std::shared_ptr<clients::memory_deployed_state_store> store_ =
        std::make_shared<clients::memory_deployed_state_store>();
};
}  // namespace
INSTANTIATE_TYPED_TEST_SUITE_P(memory, deployed_state_store_conformance, memory_deployed_state_factory);
}  // namespace preflight::conformance
