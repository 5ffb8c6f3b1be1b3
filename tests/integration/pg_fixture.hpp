#pragma once

#include "pg_env.hpp"
#include <preflight/clients/migrations.hpp>
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_limit_batch.hpp>
#include <preflight/clients/pg_limit_chain.hpp>
#include <preflight/clients/pg_pool.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>
#include <preflight/clients/pg_run_budget_store.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>

namespace preflight::test {

/// Applies the migrations to `url` once per process and URL; ADD_FAILURE on error (every call that fails records
/// one). Callers `ASSERT_TRUE` it: a test whose set-up could not migrate fails, it never returns early as passed.
inline bool ensure_migrated(const std::string& url) {
    static std::set<std::string> done;
    if (done.contains(url)) return true;
    std::string diag;
    auto r = clients::migrate(url, &diag);
    if (!r) {
        ADD_FAILURE() << "migrate: " << r.error().message() << ": " << diag;
        return false;
    }
    done.insert(url);
    return true;
}

/// Conformance factory for a Postgres store `Store`: a small pool on the test's io_context; time is the server's
/// real clock, so `advance` waits. `Batched`: the store's limiter writes go through a `pg_limit_batch` (the default of
/// `make_pg_store_set`), which must keep every store semantic.
template <class Store, bool Batched = false>
struct pg_store_factory {
    static constexpr std::chrono::milliseconds tolerance{100};

    void set_up(boost::asio::io_context& io) {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(ensure_migrated(url)) << "the migrations failed (above)";
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        pool = std::make_unique<clients::pg_pool>(io.get_executor(), p);
        if constexpr (Batched) {
            batch = std::make_unique<clients::pg_limit_batch>(*pool);
            st = std::make_unique<Store>(*pool, batch.get());
        } else {
            st = std::make_unique<Store>(*pool);
        }
    }
    Store& store() { return *st; }
    void advance(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

    std::unique_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::pg_limit_batch> batch;
    std::unique_ptr<Store> st;
};

template <class Store>
using pg_batched_store_factory = pg_store_factory<Store, true>;

/// Conformance factory for `pg_limit_chain` (limit_chain_conformance.hpp).
struct pg_chain_factory {
    static constexpr std::chrono::milliseconds tolerance{100};

    void set_up(boost::asio::io_context& io) {
        PREFLIGHT_REQUIRE_PG(url);
        ASSERT_TRUE(ensure_migrated(url)) << "the migrations failed (above)";
        clients::pool_params p;
        p.url = url;
        p.size = 2;
        pool = std::make_unique<clients::pg_pool>(io.get_executor(), p);
        chain = std::make_unique<clients::pg_limit_chain>(*pool);
    }
    limits::limit_chain& store() { return *chain; }
    void advance(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

    std::unique_ptr<clients::pg_pool> pool;
    std::unique_ptr<clients::pg_limit_chain> chain;
};

}  // namespace preflight::test
