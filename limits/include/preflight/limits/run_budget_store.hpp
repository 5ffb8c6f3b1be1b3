#pragma once

#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace preflight::limits {

/// The outcome of one charge of a run's budget.
struct run_charge {
    bool allowed = false;
    std::uint64_t used = 0;  ///< mutating calls counted for the run after this call
    std::uint64_t max = 0;   ///< the budget applied
};

/// Per-run budgets (mutating calls per flow run), kept by run id so that every process serving one run shares its
/// count: the budget belongs to the run, never to a process (DESIGN.md, "Run budget"). A run's count is forgotten
/// `ttl` after its last charge (a finished run's budget does not outlive it). Implementations:
/// `memory_run_budget_store` and `clients::pg_run_budget_store`; both pass
/// tests/conformance/run_budget_store_conformance.hpp.
/// Thread safety: every member may be called concurrently from any thread.
class run_budget_store {
public:
    virtual ~run_budget_store() = default;

    /// Counts `n` mutating calls for run `run_id` when `used + n <= max`; a denied charge counts nothing. Extends the
    /// run's life to now + `ttl`. Errors: `bad_input` for max 0 or ttl <= 0 (and keys the store cannot hold); store
    /// failures.
    virtual boost::asio::awaitable<result<run_charge>> charge(
        std::string run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
    ) = 0;

    /// Gives `n` calls back (never below zero), when a later gate denied the request that was charged. An unknown or
    /// forgotten run is left alone.
    virtual boost::asio::awaitable<result<void>> refund(std::string run_id, std::uint64_t n) = 0;
};

/// Options of `memory_run_budget_store`.
struct memory_run_budget_store_params {
    /// Upper bound on runs held. Forgotten runs go first; when every run is live, the one idle longest goes (its
    /// count restarts: the bound wins over the budget, never memory).
    std::size_t max_runs = 100'000;
};

/// The embedded (one process) `run_budget_store`, on the injected clock. The coroutines complete synchronously;
/// `charge_now` / `refund_now` are the same without a coroutine frame.
class memory_run_budget_store final : public run_budget_store {
public:
    explicit memory_run_budget_store(
        const preflight::clock& c = preflight::clock::steady(), memory_run_budget_store_params p = {}
    );
    ~memory_run_budget_store() override;
    memory_run_budget_store(const memory_run_budget_store&) = delete;
    memory_run_budget_store& operator=(const memory_run_budget_store&) = delete;

    boost::asio::awaitable<result<run_charge>> charge(
        std::string run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
    ) override;
    boost::asio::awaitable<result<void>> refund(std::string run_id, std::uint64_t n) override;

    [[nodiscard]] result<run_charge> charge_now(
        std::string_view run_id, std::uint64_t max, std::uint64_t n, std::chrono::milliseconds ttl
    );
    void refund_now(std::string_view run_id, std::uint64_t n);

    /// Runs held now (live or forgotten but not yet swept).
    [[nodiscard]] std::size_t size() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace preflight::limits
