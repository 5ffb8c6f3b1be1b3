#pragma once

#include <preflight/core/errc.hpp>
#include <preflight/limits/admission_store.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/rate_limit_store.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace preflight::limits {

/// The stateful writes of one preflight, in precedence order: a fixed-window consume (the backstop), a token-bucket
/// acquire (the rate limit), an admission reservation (always last). Each part is optional.
struct chain_request {
    struct window_part {
        std::string key;
        window_limit limit;
        std::uint64_t n = 1;
    };
    struct bucket_part {
        std::string key;
        bucket_limit limit;
        std::uint32_t quantity = 1;
    };
    struct admission_part {
        std::string key;
        std::uint32_t max_slots = 1;
        std::chrono::milliseconds ttl{300'000};
    };
    std::optional<window_part> window;
    std::optional<bucket_part> bucket;
    std::optional<admission_part> admission;
};

/// Which part of a chain.
enum class chain_part { window, bucket, admission };

/// The outcome of a chain. A part that was asked has its result unless the chain stopped before it (nullopt: never
/// attempted, nothing written). `denied_by` names the part that stopped the chain.
struct chain_result {
    std::optional<window_result> window;
    std::optional<acquire_result> bucket;
    std::optional<lease_grant> admission;
    std::optional<chain_part> denied_by;  ///< nullopt: every part asked was allowed (and stands)

    [[nodiscard]] bool allowed() const noexcept { return !denied_by.has_value(); }
};

/// The stateful parts of a preflight as ONE call that applies them in order and stops at the first denial
/// (DESIGN.md, "Decisions on the Postgres path"):
/// - the parts asked are applied in the order window, bucket, admission;
/// - the first that denies stops the chain: the later parts are never attempted (nothing of theirs is written, so
///   a rate-limited request never holds an admission slot, not even for a moment), and the earlier parts that
///   passed are given back inside the same atomic step (the window's count and the bucket's tokens as they were),
///   so a denied chain leaves every counter as a sequential evaluation with refunds would, and no other caller can
///   see the transient consume;
/// - an error leaves everything as it was (nothing applied).
/// A denied part's result is what its standalone call would answer (count, retry_after, in_use); a part given back
/// keeps the result of its consume (`allowed` true) with the state after the give-back.
/// Implementations: `memory_limit_chain` (over the three in-memory stores) and `clients::pg_limit_chain` (one
/// statement; several preflights' chains share a call under load). Both pass
/// tests/conformance/limit_chain_conformance.hpp.
/// Thread safety: every member may be called concurrently from any thread.
class limit_chain {
public:
    virtual ~limit_chain() = default;

    /// Applies `req` (see the class comment). Errors: the stores' (bad_input for an invalid limit or key,
    /// store_unavailable, ...); nothing is applied then.
    virtual boost::asio::awaitable<result<chain_result>> apply(chain_request req) = 0;

    /// Whether `apply` writes exactly where these stores do (`windows` may be null: no window part is ever asked).
    /// The default pipeline uses the chain only then, so a store set whose limit stores were replaced (a wrapper, a
    /// test double, another backend) falls back to one call per gate on its own.
    [[nodiscard]] virtual bool answers_for(
        const fixed_window_store* windows, const rate_limit_store& buckets, const admission_store& admissions
    ) const noexcept = 0;
};

}  // namespace preflight::limits
