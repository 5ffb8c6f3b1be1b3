#pragma once

// A default pipeline on the in-memory stores of the standard seed, on a manual clock, with its events logged: the
// fixture of the tests that look at one behaviour of the assembled pipeline (leases, shadow mode, HTTP answers).
#include "scenario_support.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <gtest/gtest.h>

#include <string>

namespace preflight::builtin_test {

class memory_pipeline_test : public ::testing::Test {
protected:
    void SetUp() override {
        clients::load_fact_data(seed_document(), facts_);
        stores_ = clients::make_memory_store_set(facts_, clock_);
    }

    /// The fact data loaded before each test (`load_fact_data` format).
    [[nodiscard]] virtual boost::json::value seed_document() const { return boost::json::parse(standard_seed); }

    /// The default pipeline over the stores with `o` as configuration (dotted keys), the fixed wall time.
    g::pipeline build(const boost::json::object& o = {}) {
        g::default_pipeline_deps deps;
        deps.stores = stores_;
        deps.on_event = events_.hook();
        g::default_pipeline_options opts;
        opts.wall_clock = [] { return fixed_wall_time(); };
        return g::default_pipeline_with_options(make_config(o), std::move(deps), std::move(opts));
    }

    g::decision decide(
        const g::pipeline& p, std::string org, std::string user, g::operation op = g::operation::execute
    ) {
        g::request r;
        r.op = op;
        r.subject.org = std::move(org);
        r.subject.user = std::move(user);
        return run(io_, p.run(std::move(r)));
    }

    manual_clock clock_;
    clients::memory_fact_stores facts_;
    clients::store_set stores_;
    event_log events_;
    // Last, so destroyed first: a lease dropped in a test queues its release here, and the io_context's destruction
    // runs it (release_now) against the stores and the clock, which must still be alive.
    asio::io_context io_;
};

}  // namespace preflight::builtin_test
