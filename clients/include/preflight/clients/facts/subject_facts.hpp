#pragma once

#include <preflight/clients/facts/ban_store.hpp>
#include <preflight/clients/facts/member_store.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/facts/usage_store.hpp>
#include <preflight/core/errc.hpp>

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace preflight::clients {

/// What the read-only gates of one request look up: the four fact lookups of `ban_store`, `subscription_store`,
/// `usage_store` and `member_store`, with the same arguments. An empty field skips its lookup.
struct subject_facts_query {
    std::vector<std::string> ban_subjects;  ///< `ban_store::find_active` (in order); empty: no ban lookup
    std::string user_id;                    ///< subscription owner (personal) and member user
    std::string org_id;                     ///< subscription owner (org) and member org
    std::string usage_subject;              ///< `usage_store::get`; "" = no usage lookup
    std::string usage_period;               ///< "YYYY-MM-DD" (with `usage_subject`)
    bool membership = false;                ///< `member_store::find(org_id, user_id)`; needs both ids
};

/// The answers to a `subject_facts_query`: each field is exactly what the single lookup answers (nullopt / zero
/// usage when skipped).
struct subject_facts {
    std::optional<ban> active_ban;
    std::optional<subscription> highest_subscription;
    usage period_usage;
    std::optional<member> membership;
};

/// Answers a whole `subject_facts_query` at once (in Postgres: one statement, so one round trip instead of four).
/// Implementations: `composed_subject_facts` (over the four stores; the in-memory default) and
/// `pg_subject_facts_source`; both pass tests/conformance/subject_facts_conformance.hpp.
/// Thread safety: every member may be called concurrently from any thread.
class subject_facts_source {
public:
    virtual ~subject_facts_source() = default;

    /// Every lookup of `q`. Fails as a whole when any lookup fails (the first failure's error).
    virtual boost::asio::awaitable<result<subject_facts>> load(subject_facts_query q) = 0;

    /// Whether `load` answers exactly what these four stores answer. The built-in gates read through this source
    /// only then, so a store set whose fact stores were replaced (a test double, another backend) falls back to
    /// the four lookups on its own.
    [[nodiscard]] virtual bool answers_for(
        const ban_store& bans,
        const subscription_store& subscriptions,
        const usage_store& usage,
        const member_store& members
    ) const noexcept = 0;
};

/// A `subject_facts_source` that asks the four stores one after another (no statement of its own). The oracle of
/// the conformance suite and the answer for stores that have no combined lookup.
/// Lifetime: shares ownership of the stores.
class composed_subject_facts final : public subject_facts_source {
public:
    composed_subject_facts(
        std::shared_ptr<ban_store> bans,
        std::shared_ptr<subscription_store> subscriptions,
        std::shared_ptr<usage_store> usage,
        std::shared_ptr<member_store> members
    );

    boost::asio::awaitable<result<subject_facts>> load(subject_facts_query q) override;

    /// True for the very stores it was built on.
    [[nodiscard]] bool answers_for(
        const ban_store& bans,
        const subscription_store& subscriptions,
        const usage_store& usage,
        const member_store& members
    ) const noexcept override;

private:
    std::shared_ptr<ban_store> bans_;
    std::shared_ptr<subscription_store> subscriptions_;
    std::shared_ptr<usage_store> usage_;
    std::shared_ptr<member_store> members_;
};

}  // namespace preflight::clients
