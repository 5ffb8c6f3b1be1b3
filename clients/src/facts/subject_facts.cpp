#include <preflight/clients/facts/subject_facts.hpp>

#include <stdexcept>
#include <utility>

namespace preflight::clients {

composed_subject_facts::composed_subject_facts(
    std::shared_ptr<ban_store> bans,
    std::shared_ptr<subscription_store> subscriptions,
    std::shared_ptr<usage_store> usage,
    std::shared_ptr<member_store> members
)
    : bans_(std::move(bans)),
      subscriptions_(std::move(subscriptions)),
      usage_(std::move(usage)),
      members_(std::move(members)) {
    if (!bans_ || !subscriptions_ || !usage_ || !members_) {
        throw std::invalid_argument("composed_subject_facts: a null store");
    }
}

boost::asio::awaitable<result<subject_facts>> composed_subject_facts::load(subject_facts_query q) {
    subject_facts out;
    if (!q.ban_subjects.empty()) {
        auto b = co_await bans_->find_active(std::move(q.ban_subjects));
        if (!b) co_return b.error();
        out.active_ban = std::move(*b);
    }
    if (!q.user_id.empty() || !q.org_id.empty()) {
        auto s = co_await subscriptions_->find_highest_priority(q.user_id, q.org_id);
        if (!s) co_return s.error();
        out.highest_subscription = std::move(*s);
    }
    if (!q.usage_subject.empty()) {
        auto u = co_await usage_->get(std::move(q.usage_subject), std::move(q.usage_period));
        if (!u) co_return u.error();
        out.period_usage = *u;
    }
    if (q.membership && !q.org_id.empty() && !q.user_id.empty()) {
        auto m = co_await members_->find(std::move(q.org_id), std::move(q.user_id));
        if (!m) co_return m.error();
        out.membership = std::move(*m);
    }
    co_return out;
}

bool composed_subject_facts::answers_for(
    const ban_store& bans,
    const subscription_store& subscriptions,
    const usage_store& usage,
    const member_store& members
) const noexcept {
    return &bans == bans_.get() && &subscriptions == subscriptions_.get() && &usage == usage_.get() &&
           &members == members_.get();
}

}  // namespace preflight::clients
