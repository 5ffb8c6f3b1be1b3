#pragma once

#include <cstddef>
#include <cstdint>

namespace preflight::clients {

/// How concurrent statements of one kind are gathered into few calls (`pg_limit_batch` for the limiter writes,
/// `pg_subject_facts_source` for the combined reads).
struct pg_gather_options {
    /// Calls in flight at once. While this many are, the next call keeps taking the statements of the callers that
    /// follow until one finishes: under load many callers share a call; alone, a caller's call leaves at once.
    /// At least 1.
    std::size_t max_in_flight = 2;
    /// Items of one kind per call, at most. At least 1.
    std::size_t max_per_call = 64;
};

/// Counters of a gathering (monotonic).
struct pg_gather_stats {
    std::uint64_t calls = 0;       ///< calls sent, retries not counted
    std::uint64_t many_calls = 0;  ///< of which carried more than one item of a kind
    std::uint64_t items = 0;       ///< items those calls carried
    std::uint64_t retried = 0;     ///< items retried alone after their shared call failed on the server
};

}  // namespace preflight::clients
