#pragma once

#include "conformance/conformance_support.hpp"
#include <preflight/clients/facts/balance_source.hpp>
#include <preflight/clients/facts/ban_store.hpp>
#include <preflight/clients/facts/member_store.hpp>
#include <preflight/clients/facts/subject_facts.hpp>
#include <preflight/clients/facts/subscription_store.hpp>
#include <preflight/clients/facts/usage_store.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Conformance suites of the five fact stores (ban_store, subscription_store, usage_store, member_store,
// balance_source) and of the combined lookup (subject_facts_source, checked against the four single stores).
// One Factory type serves all six:
//
//   struct my_fact_factory {
//       // Clock slack of the ban store's wall clock: 0 for a manual clock, ~100 ms for a real clock (Postgres).
//       static constexpr std::chrono::milliseconds tolerance{0};
//       void set_up(boost::asio::io_context& io);          // may GTEST_SKIP(); `io` outlives the factory
//       clients::ban_store& bans();                          // the stores under test
//       clients::subscription_store& subscriptions();
//       clients::usage_store& usage();
//       clients::member_store& members();
//       clients::balance_source& balances();
//       clients::subject_facts_source& subject_facts();    // answers for the four stores above
//       std::chrono::system_clock::time_point now();        // the ban store's wall clock
//       void advance(std::chrono::milliseconds d);          // moves it forward by at least d (<= 300 ms per call)
//       // Seeding (blocking; replace what is stored under the same key, like the in-memory `put`):
//       void put_ban(clients::ban);
//       void put_subscription(clients::subscription);
//       void put_usage(const std::string& subject, const std::string& period_start, clients::usage);
//       void put_member(clients::member);
//       void put_balance(const std::string& org_id, std::int64_t remaining);
//   };
//
// Keys come from `unique_key` (Postgres keeps rows between runs).
namespace preflight::conformance {

using namespace std::chrono_literals;

template <class Factory>
class fact_conformance_base : public ::testing::Test {
protected:
    void SetUp() override { factory_.set_up(io_); }

    template <class T>
    T ok(boost::asio::awaitable<result<T>> aw) {
        auto r = run(io_, std::move(aw));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? std::move(*r) : T{};
    }
    // Each lookup also asks the store's synchronous form (`try_…`): a store that answers at once (the in-memory ones)
    // must give the same answer as its coroutine; one that cannot (Postgres) says nullopt.
    template <class T, class Same>
    static void expect_same_answer(
        const std::optional<result<std::optional<T>>>& now, const std::optional<T>& found, Same same, const char* what
    ) {
        if (!now) return;  // the store cannot answer at once
        EXPECT_TRUE(now->has_value()) << what;
        if (!now->has_value()) return;
        EXPECT_EQ(now->value().has_value(), found.has_value()) << what << " differs";
        if (now->value() && found) {
            EXPECT_TRUE(same(*now->value(), *found)) << what << " differs";
        }
    }
    std::optional<clients::ban> find_ban(std::vector<std::string> ids) {
        const std::vector<std::string_view> views(ids.begin(), ids.end());
        auto now = factory_.bans().try_find_active(views);
        auto found = ok(factory_.bans().find_active(std::move(ids)));
        expect_same_answer(
            now,
            found,
            [](const clients::ban& a, const clients::ban& b) {
                return a.subject_id == b.subject_id && a.reason == b.reason && a.until == b.until;
            },
            "try_find_active"
        );
        return found;
    }
    std::optional<clients::subscription> find_sub(const std::string& user, const std::string& org) {
        auto now = factory_.subscriptions().try_find_highest_priority(user, org);
        auto found = ok(factory_.subscriptions().find_highest_priority(user, org));
        expect_same_answer(
            now,
            found,
            [](const clients::subscription& a, const clients::subscription& b) {
                return a.owner_id == b.owner_id && a.plan == b.plan && a.status == b.status;
            },
            "try_find_highest_priority"
        );
        return found;
    }
    clients::usage get_usage(const std::string& subject, const std::string& period) {
        return ok(factory_.usage().get(subject, period));
    }
    std::optional<clients::member> find_member(const std::string& org, const std::string& user) {
        auto now = factory_.members().try_find(org, user);
        auto found = ok(factory_.members().find(org, user));
        expect_same_answer(
            now,
            found,
            [](const clients::member& a, const clients::member& b) {
                return a.usage_cap == b.usage_cap && a.used == b.used && a.role == b.role;
            },
            "try_find"
        );
        return found;
    }
    result<clients::balance_outcome> check_balance(const std::string& org) {
        return run(io_, factory_.balances().check(org));
    }
    /// `t` truncated to whole microseconds (the precision every store keeps).
    static std::chrono::system_clock::time_point us(std::chrono::system_clock::time_point t) {
        return std::chrono::floor<std::chrono::microseconds>(t);
    }

    /// Keys that differ only in case, trailing space, SQL and array-literal metacharacters, and unicode.
    static std::vector<std::string> tricky_keys(const std::string& base) {
        return {
            base + "org",
            base + "org ",
            base + "ORG",
            base + "o'rg\"; DROP TABLE x; --",
            base + "{a,\"b\"}",
            base + "back\\slash",
            base + "组织 ✓",
            base + "🚀 émoji",
            base + "NULL",
            base + "%_ like *wild"};
    }

    boost::asio::io_context io_;
    Factory factory_;
};

// ---- ban_store ---------------------------------------------------------------------------------------------------

template <class Factory>
class ban_store_conformance : public fact_conformance_base<Factory> {};
TYPED_TEST_SUITE_P(ban_store_conformance);

TYPED_TEST_P(ban_store_conformance, first_active_ban_in_the_given_order) {
    const auto user = unique_key("user"), org = unique_key("org"), ip = unique_key("ip");
    this->factory_.put_ban({org, "fraud", std::nullopt});
    this->factory_.put_ban({user, "abuse", this->factory_.now() + 1h});

    auto a = this->find_ban({ip, user, org});
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->subject_id, user);
    EXPECT_EQ(a->reason, "abuse");
    auto b = this->find_ban({ip, org, user});
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->subject_id, org);
    EXPECT_EQ(b->reason, "fraud");
    EXPECT_FALSE(this->find_ban({ip}).has_value());
    EXPECT_FALSE(this->find_ban({}).has_value());
}

TYPED_TEST_P(ban_store_conformance, permanent_ban_has_no_end_and_timed_ban_keeps_its_end) {
    const auto perm = unique_key("perm"), timed = unique_key("timed");
    const auto until = this->us(this->factory_.now() + 24h);
    this->factory_.put_ban({perm, "spam", std::nullopt});
    this->factory_.put_ban({timed, "cooldown", until});
    auto p = this->find_ban({perm});
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->reason, "spam");
    EXPECT_FALSE(p->until.has_value());
    auto t = this->find_ban({timed});
    ASSERT_TRUE(t.has_value());
    ASSERT_TRUE(t->until.has_value());
    EXPECT_EQ(*t->until, until);
}

TYPED_TEST_P(ban_store_conformance, expired_ban_is_not_active_and_a_ban_expires_as_time_passes) {
    const auto old = unique_key("old"), soon = unique_key("soon"), later = unique_key("later");
    this->factory_.put_ban({old, "old", this->factory_.now() - 1s});
    this->factory_.put_ban({later, "later", this->factory_.now() + 1h});
    auto a = this->find_ban({old, later});
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->subject_id, later);

    this->factory_.put_ban({soon, "soon", this->factory_.now() + 400ms});
    auto b = this->find_ban({soon, later});
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->subject_id, soon);
    advance_by(this->factory_, 400ms + TypeParam::tolerance + 50ms);
    auto c = this->find_ban({soon, later});
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->subject_id, later);
    EXPECT_FALSE(this->find_ban({soon, old}).has_value());
}

TYPED_TEST_P(ban_store_conformance, put_replaces_the_subjects_ban) {
    const auto s = unique_key("s");
    this->factory_.put_ban({s, "first", std::nullopt});
    this->factory_.put_ban({s, "second", this->factory_.now() - 1s});  // replaced by an expired one: not banned
    EXPECT_FALSE(this->find_ban({s}).has_value());
    this->factory_.put_ban({s, "third", std::nullopt});
    auto b = this->find_ban({s});
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->reason, "third");
}

TYPED_TEST_P(ban_store_conformance, subject_ids_are_matched_exactly) {
    const auto keys = this->tricky_keys(unique_key(""));
    // Ban every other key; each lookup finds exactly its own ban (or none), alone and in a list with the others.
    for (std::size_t i = 0; i < keys.size(); i += 2) this->factory_.put_ban({keys[i], "r" + std::to_string(i), {}});
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto b = this->find_ban({keys[i]});
        EXPECT_EQ(b.has_value(), i % 2 == 0) << keys[i];
        if (b) {
            EXPECT_EQ(b->subject_id, keys[i]);
            EXPECT_EQ(b->reason, "r" + std::to_string(i));
        }
    }
    auto odd_then_all = std::vector<std::string>{keys[1], keys[3], keys[4], keys[0]};
    auto b = this->find_ban(odd_then_all);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->subject_id, keys[4]);
}

REGISTER_TYPED_TEST_SUITE_P(
    ban_store_conformance,
    first_active_ban_in_the_given_order,
    permanent_ban_has_no_end_and_timed_ban_keeps_its_end,
    expired_ban_is_not_active_and_a_ban_expires_as_time_passes,
    put_replaces_the_subjects_ban,
    subject_ids_are_matched_exactly
);

// ---- subscription_store ------------------------------------------------------------------------------------------

template <class Factory>
class subscription_store_conformance : public fact_conformance_base<Factory> {
protected:
    void put(const std::string& owner, clients::plan_tier plan, const std::string& status = "active", int seats = 1) {
        clients::subscription s;
        s.owner_id = owner;
        s.plan = plan;
        s.status = status;
        s.seats = seats;
        this->factory_.put_subscription(s);
    }
};
TYPED_TEST_SUITE_P(subscription_store_conformance);

using clients::plan_tier;

TYPED_TEST_P(subscription_store_conformance, highest_tier_of_personal_and_org_wins) {
    const auto user = unique_key("user"), org = unique_key("org"), big = unique_key("big");
    this->put(user, plan_tier::pro);
    this->put(org, plan_tier::team, "active", 5);
    this->put(big, plan_tier::free);
    auto a = this->find_sub(user, org);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->owner_id, org);
    EXPECT_EQ(a->plan, plan_tier::team);
    EXPECT_EQ(a->seats, 5);
    auto b = this->find_sub(user, big);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->owner_id, user);
    EXPECT_EQ(b->plan, plan_tier::pro);
}

TYPED_TEST_P(subscription_store_conformance, only_active_and_trialing_count) {
    const auto user = unique_key("user");
    const auto canceled = unique_key("canceled"), past_due = unique_key("past_due"), trial = unique_key("trial");
    this->put(user, plan_tier::pro);
    this->put(canceled, plan_tier::enterprise, "canceled");
    this->put(past_due, plan_tier::enterprise, "past_due");
    this->put(trial, plan_tier::team, "trialing");
    EXPECT_EQ(this->find_sub(user, canceled)->owner_id, user);
    EXPECT_EQ(this->find_sub(user, past_due)->owner_id, user);
    EXPECT_FALSE(this->find_sub("", canceled).has_value());
    auto t = this->find_sub(user, trial);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->owner_id, trial);
    EXPECT_EQ(t->status, "trialing");
    // A personal subscription that stops counting leaves the org's.
    this->put(user, plan_tier::enterprise, "canceled");
    EXPECT_EQ(this->find_sub(user, trial)->owner_id, trial);
    EXPECT_FALSE(this->find_sub(user, canceled).has_value());
}

TYPED_TEST_P(subscription_store_conformance, tie_goes_to_the_personal_subscription) {
    const auto user = unique_key("user"), org = unique_key("org");
    this->put(user, plan_tier::team, "active", 1);
    this->put(org, plan_tier::team, "active", 9);
    EXPECT_EQ(this->find_sub(user, org)->owner_id, user);
}

TYPED_TEST_P(subscription_store_conformance, empty_or_unknown_ids) {
    const auto user = unique_key("user"), org = unique_key("org"), nobody = unique_key("nobody");
    this->put(user, plan_tier::pro);
    this->put(org, plan_tier::enterprise);
    EXPECT_EQ(this->find_sub(user, "")->owner_id, user);
    EXPECT_EQ(this->find_sub("", org)->owner_id, org);
    EXPECT_EQ(this->find_sub(nobody, org)->owner_id, org);
    EXPECT_FALSE(this->find_sub(nobody, "").has_value());
    EXPECT_FALSE(this->find_sub("", "").has_value());
}

TYPED_TEST_P(subscription_store_conformance, fields_round_trip) {
    const auto org = unique_key("org");
    clients::subscription s;
    s.owner_id = org;
    s.plan = plan_tier::enterprise;
    s.status = "trialing";
    s.seats = 250;
    s.current_period_end = this->us(std::chrono::system_clock::now() + 24h * 30);
    this->factory_.put_subscription(s);
    auto got = this->find_sub("", org);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->owner_id, org);
    EXPECT_EQ(got->plan, plan_tier::enterprise);
    EXPECT_EQ(got->status, "trialing");
    EXPECT_EQ(got->seats, 250);
    EXPECT_EQ(got->current_period_end, s.current_period_end);
    this->put(org, plan_tier::pro);  // put replaces
    got = this->find_sub("", org);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->plan, plan_tier::pro);
    EXPECT_FALSE(got->current_period_end.has_value());
}

TYPED_TEST_P(subscription_store_conformance, owner_ids_are_matched_exactly) {
    const auto keys = this->tricky_keys(unique_key(""));
    for (std::size_t i = 0; i < keys.size(); i += 2) this->put(keys[i], plan_tier::pro, "active", static_cast<int>(i));
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto as_user = this->find_sub(keys[i], "");
        auto as_org = this->find_sub("", keys[i]);
        EXPECT_EQ(as_user.has_value(), i % 2 == 0) << keys[i];
        EXPECT_EQ(as_org.has_value(), i % 2 == 0) << keys[i];
        if (as_user) {
            EXPECT_EQ(as_user->owner_id, keys[i]);
            EXPECT_EQ(as_user->seats, static_cast<int>(i));
        }
    }
}

REGISTER_TYPED_TEST_SUITE_P(
    subscription_store_conformance,
    highest_tier_of_personal_and_org_wins,
    only_active_and_trialing_count,
    tie_goes_to_the_personal_subscription,
    empty_or_unknown_ids,
    fields_round_trip,
    owner_ids_are_matched_exactly
);

// ---- usage_store -------------------------------------------------------------------------------------------------

template <class Factory>
class usage_store_conformance : public fact_conformance_base<Factory> {};
TYPED_TEST_SUITE_P(usage_store_conformance);

TYPED_TEST_P(usage_store_conformance, usage_is_per_subject_and_period) {
    const auto org = unique_key("org"), other = unique_key("other");
    this->factory_.put_usage(org, "2026-11-01", {10, 2000});
    this->factory_.put_usage(org, "2026-10-01", {7, 1});
    this->factory_.put_usage(other, "2026-11-01", {1, 0});
    auto nov = this->get_usage(org, "2026-11-01");
    EXPECT_EQ(nov.requests, 10u);
    EXPECT_EQ(nov.tokens, 2000u);
    auto oct = this->get_usage(org, "2026-10-01");
    EXPECT_EQ(oct.requests, 7u);
    EXPECT_EQ(oct.tokens, 1u);
    auto dec = this->get_usage(org, "2026-12-01");
    EXPECT_EQ(dec.requests, 0u);
    EXPECT_EQ(dec.tokens, 0u);
    EXPECT_EQ(this->get_usage(other, "2026-11-01").requests, 1u);
    EXPECT_EQ(this->get_usage(unique_key("nobody"), "2026-11-01").requests, 0u);
}

TYPED_TEST_P(usage_store_conformance, put_replaces_and_large_counts_round_trip) {
    const auto org = unique_key("org");
    this->factory_.put_usage(org, "2026-11-01", {10, 20});
    this->factory_.put_usage(org, "2026-11-01", {3, 4'000'000'000'000ULL});
    auto u = this->get_usage(org, "2026-11-01");
    EXPECT_EQ(u.requests, 3u);
    EXPECT_EQ(u.tokens, 4'000'000'000'000ULL);
}

TYPED_TEST_P(usage_store_conformance, subjects_are_matched_exactly) {
    const auto keys = this->tricky_keys(unique_key(""));
    for (std::size_t i = 0; i < keys.size(); ++i) this->factory_.put_usage(keys[i], "2026-11-01", {i + 1, i});
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto u = this->get_usage(keys[i], "2026-11-01");
        EXPECT_EQ(u.requests, i + 1) << keys[i];
        EXPECT_EQ(u.tokens, i) << keys[i];
    }
}

TYPED_TEST_P(usage_store_conformance, a_record_adds_once_per_id) {
    const auto org = unique_key("org");
    const auto id = unique_key("lease-1");
    this->factory_.put_usage(org, "2026-11-01", {10, 5});
    EXPECT_TRUE(this->ok(this->factory_.usage().record(id, org, "2026-11-01", {1, 100})));
    EXPECT_FALSE(this->ok(this->factory_.usage().record(id, org, "2026-11-01", {1, 100}))) << "the same id again";
    EXPECT_TRUE(this->ok(this->factory_.usage().record(unique_key("lease-2"), org, "2026-11-01", {2, 0})));
    auto u = this->get_usage(org, "2026-11-01");
    EXPECT_EQ(u.requests, 13u);
    EXPECT_EQ(u.tokens, 105u);
    // A subject and period never seen start at zero.
    const auto fresh = unique_key("fresh");
    EXPECT_TRUE(this->ok(this->factory_.usage().record(unique_key("lease-3"), fresh, "2026-12-01", {1, 0})));
    EXPECT_EQ(this->get_usage(fresh, "2026-12-01").requests, 1u);
    EXPECT_EQ(this->get_usage(fresh, "2026-11-01").requests, 0u);
}

REGISTER_TYPED_TEST_SUITE_P(
    usage_store_conformance,
    a_record_adds_once_per_id,
    usage_is_per_subject_and_period,
    put_replaces_and_large_counts_round_trip,
    subjects_are_matched_exactly
);

// ---- member_store ------------------------------------------------------------------------------------------------

template <class Factory>
class member_store_conformance : public fact_conformance_base<Factory> {};
TYPED_TEST_SUITE_P(member_store_conformance);

TYPED_TEST_P(member_store_conformance, capped_member) {
    const auto org = unique_key("org"), user = unique_key("user");
    this->factory_.put_member({org, user, "admin", 100, 3});
    auto m = this->find_member(org, user);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->org_id, org);
    EXPECT_EQ(m->user_id, user);
    EXPECT_EQ(m->role, "admin");
    EXPECT_EQ(m->usage_cap, std::optional<std::uint64_t>{100});
    EXPECT_EQ(m->used, 3u);
}

TYPED_TEST_P(member_store_conformance, uncapped_member_and_zero_cap) {
    const auto org = unique_key("org"), free_user = unique_key("free"), blocked = unique_key("blocked");
    this->factory_.put_member({org, free_user, "member", std::nullopt, 0});
    this->factory_.put_member({org, blocked, "member", 0, 0});
    auto f = this->find_member(org, free_user);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->role, "member");
    EXPECT_FALSE(f->usage_cap.has_value());
    auto b = this->find_member(org, blocked);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->usage_cap, std::optional<std::uint64_t>{0});
    // put replaces: the cap can be lifted
    this->factory_.put_member({org, blocked, "owner", std::nullopt, 5});
    b = this->find_member(org, blocked);
    ASSERT_TRUE(b.has_value());
    EXPECT_FALSE(b->usage_cap.has_value());
    EXPECT_EQ(b->role, "owner");
    EXPECT_EQ(b->used, 5u);
}

TYPED_TEST_P(member_store_conformance, membership_is_per_org_and_user) {
    const auto org = unique_key("org"), org2 = unique_key("org2"), user = unique_key("user");
    this->factory_.put_member({org, user, "member", 10, 1});
    EXPECT_TRUE(this->find_member(org, user).has_value());
    EXPECT_FALSE(this->find_member(org2, user).has_value());
    EXPECT_FALSE(this->find_member(org, unique_key("nobody")).has_value());
    EXPECT_FALSE(this->find_member(user, org).has_value());  // not symmetric
}

TYPED_TEST_P(member_store_conformance, ids_are_matched_exactly) {
    const auto keys = this->tricky_keys(unique_key(""));
    const auto org = unique_key("the members' org");  // not one of the tricky keys
    for (std::size_t i = 0; i < keys.size(); i += 2) this->factory_.put_member({org, keys[i], "member", i, 0});
    for (std::size_t i = 0; i < keys.size(); i += 2) this->factory_.put_member({keys[i], keys[i], "admin", {}, i});
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto m = this->find_member(org, keys[i]);
        EXPECT_EQ(m.has_value(), i % 2 == 0) << keys[i];
        if (m) {
            EXPECT_EQ(m->usage_cap, std::optional<std::uint64_t>{i});
        }
        auto self = this->find_member(keys[i], keys[i]);
        EXPECT_EQ(self.has_value(), i % 2 == 0) << keys[i];
        if (self) {
            EXPECT_EQ(self->used, i);
        }
    }
}

REGISTER_TYPED_TEST_SUITE_P(
    member_store_conformance,
    capped_member,
    uncapped_member_and_zero_cap,
    membership_is_per_org_and_user,
    ids_are_matched_exactly
);

// ---- balance_source ----------------------------------------------------------------------------------------------

template <class Factory>
class balance_source_conformance : public fact_conformance_base<Factory> {};
TYPED_TEST_SUITE_P(balance_source_conformance);

TYPED_TEST_P(balance_source_conformance, allowed_while_executions_remain) {
    const auto org = unique_key("org");
    this->factory_.put_balance(org, 3);
    auto r = this->check_balance(org);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(r->allowed);
    EXPECT_EQ(r->remaining, std::optional<std::int64_t>{3});
    EXPECT_EQ(r->reason, "");
    this->factory_.put_balance(org, 1);
    EXPECT_TRUE(this->check_balance(org)->allowed);
}

TYPED_TEST_P(balance_source_conformance, blocked_at_zero_or_below) {
    const auto zero = unique_key("zero"), negative = unique_key("negative");
    this->factory_.put_balance(zero, 0);
    this->factory_.put_balance(negative, -2);
    for (const auto& org : {zero, negative}) {
        auto r = this->check_balance(org);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        EXPECT_FALSE(r->allowed) << org;
        EXPECT_EQ(r->reason, "no plan executions left");
    }
    EXPECT_EQ(this->check_balance(negative)->remaining, std::optional<std::int64_t>{-2});
}

TYPED_TEST_P(balance_source_conformance, unknown_org_is_not_found) {
    auto r = this->check_balance(unique_key("nobody"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), make_error_code(errc::not_found));
}

TYPED_TEST_P(balance_source_conformance, org_ids_are_matched_exactly) {
    const auto keys = this->tricky_keys(unique_key(""));
    for (std::size_t i = 0; i < keys.size(); i += 2) {
        this->factory_.put_balance(keys[i], static_cast<std::int64_t>(i) + 10);
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto r = this->check_balance(keys[i]);
        EXPECT_EQ(r.has_value(), i % 2 == 0) << keys[i];
        if (r) {
            EXPECT_EQ(r->remaining, std::optional<std::int64_t>{static_cast<std::int64_t>(i) + 10});
        } else {
            EXPECT_EQ(r.error(), make_error_code(errc::not_found));
        }
    }
}

REGISTER_TYPED_TEST_SUITE_P(
    balance_source_conformance,
    allowed_while_executions_remain,
    blocked_at_zero_or_below,
    unknown_org_is_not_found,
    org_ids_are_matched_exactly
);

// ---- subject_facts_source -----------------------------------------------------------------------------------------

template <class Factory>
class subject_facts_conformance : public fact_conformance_base<Factory> {
protected:
    clients::subject_facts load(clients::subject_facts_query q) {
        return this->ok(this->factory_.subject_facts().load(q));
    }

    /// The combined answer equals the four single lookups with the same arguments.
    void expect_like_single_stores(const clients::subject_facts_query& q) {
        const auto f = load(q);
        const auto ban = q.ban_subjects.empty() ? std::nullopt : this->find_ban(q.ban_subjects);
        ASSERT_EQ(f.active_ban.has_value(), ban.has_value());
        if (ban) {
            EXPECT_EQ(f.active_ban->subject_id, ban->subject_id);
            EXPECT_EQ(f.active_ban->reason, ban->reason);
            EXPECT_EQ(f.active_ban->until, ban->until);
        }
        const auto sub = q.user_id.empty() && q.org_id.empty() ? std::nullopt : this->find_sub(q.user_id, q.org_id);
        ASSERT_EQ(f.highest_subscription.has_value(), sub.has_value());
        if (sub) {
            EXPECT_EQ(f.highest_subscription->owner_id, sub->owner_id);
            EXPECT_EQ(f.highest_subscription->plan, sub->plan);
            EXPECT_EQ(f.highest_subscription->status, sub->status);
            EXPECT_EQ(f.highest_subscription->seats, sub->seats);
            EXPECT_EQ(f.highest_subscription->current_period_end, sub->current_period_end);
        }
        const auto used = q.usage_subject.empty() ? clients::usage{} : this->get_usage(q.usage_subject, q.usage_period);
        EXPECT_EQ(f.period_usage.requests, used.requests);
        EXPECT_EQ(f.period_usage.tokens, used.tokens);
        const bool wants_member = q.membership && !q.org_id.empty() && !q.user_id.empty();
        const auto m = wants_member ? this->find_member(q.org_id, q.user_id) : std::nullopt;
        ASSERT_EQ(f.membership.has_value(), m.has_value());
        if (m) {
            EXPECT_EQ(f.membership->org_id, m->org_id);
            EXPECT_EQ(f.membership->user_id, m->user_id);
            EXPECT_EQ(f.membership->role, m->role);
            EXPECT_EQ(f.membership->usage_cap, m->usage_cap);
            EXPECT_EQ(f.membership->used, m->used);
        }
    }

    static clients::subject_facts_query query(const std::string& user, const std::string& org) {
        clients::subject_facts_query q;
        q.ban_subjects = {user, org};
        q.user_id = user;
        q.org_id = org;
        q.usage_subject = org;
        q.usage_period = "2026-11-01";
        q.membership = true;
        return q;
    }
};
TYPED_TEST_SUITE_P(subject_facts_conformance);

TYPED_TEST_P(subject_facts_conformance, answers_every_lookup_at_once) {
    const auto user = unique_key("user"), org = unique_key("org");
    const auto until = this->us(this->factory_.now() + 1h);
    this->factory_.put_ban({user, "expired", this->factory_.now() - 1s});
    this->factory_.put_ban({org, "fraud", until});
    this->factory_.put_subscription({user, clients::plan_tier::pro, "active", 1, std::nullopt});
    this->factory_.put_subscription({org, clients::plan_tier::team, "trialing", 7, until});
    this->factory_.put_usage(org, "2026-11-01", {41, 9000});
    this->factory_.put_usage(org, "2026-10-01", {99, 0});
    this->factory_.put_member({org, user, "admin", 50, 3});

    const auto f = this->load(this->query(user, org));
    ASSERT_TRUE(f.active_ban.has_value());  // the user's ban expired: the org's is the first active one
    EXPECT_EQ(f.active_ban->subject_id, org);
    EXPECT_EQ(f.active_ban->reason, "fraud");
    EXPECT_EQ(f.active_ban->until, std::optional{until});
    ASSERT_TRUE(f.highest_subscription.has_value());
    EXPECT_EQ(f.highest_subscription->owner_id, org);
    EXPECT_EQ(f.highest_subscription->plan, clients::plan_tier::team);
    EXPECT_EQ(f.highest_subscription->seats, 7);
    EXPECT_EQ(f.period_usage.requests, 41u);
    EXPECT_EQ(f.period_usage.tokens, 9000u);
    ASSERT_TRUE(f.membership.has_value());
    EXPECT_EQ(f.membership->role, "admin");
    EXPECT_EQ(f.membership->usage_cap, std::optional<std::uint64_t>{50});
    EXPECT_EQ(f.membership->used, 3u);
    this->expect_like_single_stores(this->query(user, org));
}

TYPED_TEST_P(subject_facts_conformance, skipped_and_unknown_lookups_answer_nothing) {
    const auto user = unique_key("user"), org = unique_key("org");
    this->factory_.put_ban({user, "abuse", std::nullopt});
    this->factory_.put_subscription({org, clients::plan_tier::enterprise, "active", 1, std::nullopt});
    this->factory_.put_usage(org, "2026-11-01", {5, 5});
    this->factory_.put_member({org, user, "member", std::nullopt, 0});

    const auto none = this->load(clients::subject_facts_query{});
    EXPECT_FALSE(none.active_ban || none.highest_subscription || none.membership);
    EXPECT_EQ(none.period_usage.requests, 0u);

    auto q = this->query(user, org);
    q.ban_subjects.clear();
    q.usage_subject.clear();
    q.usage_period.clear();
    q.membership = false;
    const auto f = this->load(q);
    EXPECT_FALSE(f.active_ban.has_value());
    EXPECT_FALSE(f.membership.has_value());
    EXPECT_EQ(f.period_usage.requests, 0u);
    ASSERT_TRUE(f.highest_subscription.has_value());
    EXPECT_EQ(f.highest_subscription->plan, clients::plan_tier::enterprise);

    const auto stranger = unique_key("stranger"), nowhere = unique_key("nowhere");
    this->expect_like_single_stores(this->query(stranger, nowhere));
    this->expect_like_single_stores(this->query(user, ""));  // no org: no membership, personal subscription only
    this->expect_like_single_stores(this->query("", org));
}

TYPED_TEST_P(subject_facts_conformance, keys_are_matched_exactly) {
    const auto base = unique_key("k");
    const auto keys = this->tricky_keys(base);
    this->factory_.put_ban({keys[3], "tricky", std::nullopt});
    this->factory_.put_subscription({keys[4], clients::plan_tier::pro, "active", 1, std::nullopt});
    this->factory_.put_usage(keys[5], "2026-11-01", {7, 0});
    this->factory_.put_member({keys[5], keys[6], "member", 1, 0});
    for (const auto& user : keys) {
        for (const auto& org : {keys[4], keys[5], keys[0]}) this->expect_like_single_stores(this->query(user, org));
    }
}

REGISTER_TYPED_TEST_SUITE_P(
    subject_facts_conformance,
    answers_every_lookup_at_once,
    skipped_and_unknown_lookups_answer_nothing,
    keys_are_matched_exactly
);

}  // namespace preflight::conformance

/// Instantiates the six fact suites for `Factory` under `prefix`.
#define PREFLIGHT_INSTANTIATE_FACT_CONFORMANCE(prefix, Factory)                      \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, ban_store_conformance, Factory);          \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, subscription_store_conformance, Factory); \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, usage_store_conformance, Factory);        \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, member_store_conformance, Factory);       \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, balance_source_conformance, Factory);     \
    INSTANTIATE_TYPED_TEST_SUITE_P(prefix, subject_facts_conformance, Factory)
