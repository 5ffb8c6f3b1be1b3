#pragma once
// The pool parameters of the offline tests: a Postgres address where nothing listens. The pool connects lazily, so
// what the stores decide before any I/O is testable, and a call that does reach the pool fails with its typed error.

#include <preflight/clients/pg_pool.hpp>

namespace preflight::test {

inline clients::pool_params unreachable_pool() {
    clients::pool_params p;
    p.url = "postgresql://nobody@127.0.0.1:1/none";
    p.size = 1;
    return p;
}

}  // namespace preflight::test
