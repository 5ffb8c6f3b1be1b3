#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <boost/json.hpp>

#include <limits>
#include <mutex>

namespace preflight::clients {

namespace asio = boost::asio;

std::string_view to_string(plan_tier t) noexcept {
    switch (t) {
        case plan_tier::free: return "free";
        case plan_tier::pro: return "pro";
        case plan_tier::team: return "team";
        case plan_tier::enterprise: return "enterprise";
    }
    return "unknown";
}

std::optional<plan_tier> parse_plan_tier(std::string_view s) noexcept {
    if (s == "free") return plan_tier::free;
    if (s == "pro") return plan_tier::pro;
    if (s == "team") return plan_tier::team;
    if (s == "enterprise") return plan_tier::enterprise;
    return std::nullopt;
}

memory_ban_store::memory_ban_store(wall_clock_fn now)
    : now_(now ? std::move(now) : wall_clock_fn{[] { return std::chrono::system_clock::now(); }}) {}

asio::awaitable<result<std::optional<ban>>> memory_ban_store::find_active(std::vector<std::string> subject_ids) {
    const std::vector<std::string_view> ids(subject_ids.begin(), subject_ids.end());
    co_return *try_find_active(ids);
}

std::optional<result<std::optional<ban>>> memory_ban_store::try_find_active(
    std::span<const std::string_view> subject_ids
) {
    const auto now = now_();
    std::shared_lock lock(mutex_);
    for (const auto id : subject_ids) {
        auto it = bans_.find(id);
        if (it != bans_.end() && (!it->second.until || *it->second.until > now)) return std::optional<ban>{it->second};
    }
    return std::optional<ban>{};
}

void memory_ban_store::put(ban b) {
    std::unique_lock lock(mutex_);
    auto key = b.subject_id;
    bans_.insert_or_assign(std::move(key), std::move(b));
}

bool memory_ban_store::remove(const std::string& subject_id) {
    std::unique_lock lock(mutex_);
    return bans_.erase(subject_id) > 0;
}

asio::awaitable<result<std::optional<subscription>>> memory_subscription_store::find_highest_priority(
    std::string user_id, std::string org_id
) {
    co_return *try_find_highest_priority(user_id, org_id);
}

std::optional<result<std::optional<subscription>>> memory_subscription_store::try_find_highest_priority(
    std::string_view user_id, std::string_view org_id
) {
    std::shared_lock lock(mutex_);
    const subscription* best = nullptr;
    for (const auto owner : {user_id, org_id}) {
        if (owner.empty()) continue;
        auto it = by_owner_.find(owner);
        if (it == by_owner_.end() || !it->second.counts()) continue;
        if (best == nullptr || it->second.plan > best->plan) best = &it->second;
    }
    return best == nullptr ? std::optional<subscription>{} : std::optional<subscription>{*best};
}

void memory_subscription_store::put(subscription s) {
    std::unique_lock lock(mutex_);
    auto key = s.owner_id;
    by_owner_.insert_or_assign(std::move(key), std::move(s));
}

asio::awaitable<result<usage>> memory_usage_store::get(std::string subject_id, std::string period_start) {
    co_return get_now(subject_id, period_start);
}

usage memory_usage_store::get_now(const std::string& subject_id, const std::string& period_start) const {
    std::shared_lock lock(mutex_);
    auto it = usage_.find(std::pair<std::string_view, std::string_view>{subject_id, period_start});
    return it == usage_.end() ? usage{} : it->second;
}

asio::awaitable<result<bool>> memory_usage_store::record(
    std::string record_id, std::string subject_id, std::string period_start, usage delta
) {
    {
        std::lock_guard ids(records_mutex_);
        if (previous_.contains(record_id) || !recorded_.insert(std::move(record_id)).second) co_return false;
        if (recorded_.size() >= max_records / 2) {
            previous_ = std::move(recorded_);
            recorded_ = {};
        }
    }
    std::unique_lock lock(mutex_);
    auto it = usage_.find(std::pair<std::string_view, std::string_view>{subject_id, period_start});
    if (it == usage_.end()) it = usage_.try_emplace(std::pair{std::move(subject_id), std::move(period_start)}).first;
    it->second.requests += delta.requests;
    it->second.tokens += delta.tokens;
    co_return true;
}

void memory_usage_store::put(const std::string& subject_id, const std::string& period_start, usage u) {
    std::unique_lock lock(mutex_);
    usage_.insert_or_assign(std::pair{subject_id, period_start}, u);
}

void memory_usage_store::add(
    const std::string& subject_id, const std::string& period_start, std::uint64_t requests, std::uint64_t tokens
) {
    std::unique_lock lock(mutex_);
    auto it = usage_.find(std::pair<std::string_view, std::string_view>{subject_id, period_start});
    if (it == usage_.end()) it = usage_.try_emplace(std::pair{subject_id, period_start}).first;
    it->second.requests += requests;
    it->second.tokens += tokens;
}

asio::awaitable<result<std::optional<member>>> memory_member_store::find(std::string org_id, std::string user_id) {
    co_return *try_find(org_id, user_id);
}

std::optional<result<std::optional<member>>> memory_member_store::try_find(
    std::string_view org_id, std::string_view user_id
) {
    std::shared_lock lock(mutex_);
    auto it = members_.find(std::pair<std::string_view, std::string_view>{org_id, user_id});
    return it == members_.end() ? std::optional<member>{} : std::optional<member>{it->second};
}

void memory_member_store::put(member m) {
    std::unique_lock lock(mutex_);
    auto key = std::pair{m.org_id, m.user_id};
    members_.insert_or_assign(std::move(key), std::move(m));
}

asio::awaitable<result<balance_outcome>> memory_balance_source::check(std::string org_id) {
    std::shared_lock lock(mutex_);
    auto it = remaining_.find(org_id);
    if (it == remaining_.end()) co_return make_error_code(errc::not_found);
    balance_outcome out;
    out.remaining = it->second;
    out.allowed = it->second > 0;
    if (!out.allowed) out.reason = "no plan executions left";
    co_return out;
}

void memory_balance_source::put(const std::string& org_id, std::int64_t remaining) {
    std::unique_lock lock(mutex_);
    remaining_.insert_or_assign(org_id, remaining);
}

namespace {

namespace json = boost::json;

[[noreturn]] void fail(const std::string& path, std::string_view problem, const json::value* v = nullptr) {
    std::string msg = "fact data: " + path + ": " + std::string(problem);
    if (v) msg += " (got " + json::serialize(*v) + ")";
    throw fact_data_error(msg);
}

class reader {
public:
    reader(const json::value& v, std::string path) : path_(std::move(path)) {
        if (!v.is_object()) fail(path_, "expected an object", &v);
        obj_ = &v.get_object();
    }

    void allow_only(std::initializer_list<std::string_view> keys) const {
        for (const auto& kv : *obj_) {
            bool known = false;
            for (auto k : keys) known = known || kv.key() == k;
            if (!known) fail(path_ + "." + std::string(kv.key()), "unknown key");
        }
    }

    std::string str(std::string_view key, std::optional<std::string> fallback = std::nullopt) const {
        const auto* v = obj_->if_contains(key);
        if (!v) {
            if (fallback) return *fallback;
            fail(path_ + "." + std::string(key), "required");
        }
        if (!v->is_string() || v->get_string().empty()) fail(at(key), "expected a non-empty string", v);
        return std::string(v->get_string());
    }

    std::optional<std::int64_t> integer(std::string_view key, bool non_negative = true) const {
        const auto* v = obj_->if_contains(key);
        if (!v || v->is_null()) return std::nullopt;
        if (!v->is_int64() && !v->is_uint64()) fail(at(key), "expected an integer", v);
        if (v->is_uint64() && v->get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) fail(at(key), "too large", v);
        auto n = v->is_int64() ? v->get_int64() : static_cast<std::int64_t>(v->get_uint64());
        if (non_negative && n < 0) fail(at(key), "must not be negative", v);
        return n;
    }

    std::string at(std::string_view key) const { return path_ + "." + std::string(key); }

private:
    std::string path_;
    const json::object* obj_ = nullptr;
};

template <class F>
void each(const json::object& doc, std::string_view section, F&& f) {
    const auto* v = doc.if_contains(section);
    if (!v) return;
    if (!v->is_array()) fail(std::string(section), "expected an array", v);
    std::size_t i = 0;
    for (const auto& item : v->get_array()) {
        f(reader(item, std::string(section) + "[" + std::to_string(i++) + "]"));
    }
}

}  // namespace

void load_fact_data(const json::value& doc, memory_fact_stores& stores) {
    if (!doc.is_object()) fail("$", "expected an object", &doc);
    const auto& obj = doc.get_object();
    for (const auto& kv : obj) {
        const auto k = kv.key();
        if (k != "bans" && k != "subscriptions" && k != "usage" && k != "members" && k != "balances") {
            fail(std::string(k), "unknown section");
        }
    }
    each(obj, "bans", [&](const reader& r) {
        r.allow_only({"subject_id", "reason", "until_unix_s"});
        ban b{r.str("subject_id"), r.str("reason", std::string("banned")), std::nullopt};
        if (auto until = r.integer("until_unix_s")) {
            // system_clock counts nanoseconds in 64 bits (to year 2262): a larger value overflowed in
            // from_time_t (undefined behaviour; found by fuzz/fuzz_fact_data.cpp).
            constexpr std::int64_t max_unix_s =
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max()).count();
            if (*until > max_unix_s) fail(r.at("until_unix_s"), "too large (max " + std::to_string(max_unix_s) + ")");
            b.until = std::chrono::system_clock::from_time_t(*until);
        }
        stores.bans->put(std::move(b));
    });
    each(obj, "subscriptions", [&](const reader& r) {
        r.allow_only({"owner_id", "plan", "status", "seats"});
        subscription s;
        s.owner_id = r.str("owner_id");
        auto plan_name = r.str("plan");
        auto plan = parse_plan_tier(plan_name);
        if (!plan) fail(r.at("plan"), "unknown plan '" + plan_name + "' (free, pro, team, enterprise)");
        s.plan = *plan;
        s.status = r.str("status", std::string("active"));
        const auto seats = r.integer("seats").value_or(1);
        if (seats > std::numeric_limits<int>::max()) fail(r.at("seats"), "too large");  // was silently truncated
        s.seats = static_cast<int>(seats);
        stores.subscriptions->put(std::move(s));
    });
    each(obj, "usage", [&](const reader& r) {
        r.allow_only({"subject_id", "period_start", "requests", "tokens"});
        usage u{
            static_cast<std::uint64_t>(r.integer("requests").value_or(0)),
            static_cast<std::uint64_t>(r.integer("tokens").value_or(0))};
        stores.usage->put(r.str("subject_id"), r.str("period_start"), u);
    });
    each(obj, "members", [&](const reader& r) {
        r.allow_only({"org_id", "user_id", "role", "usage_cap", "used"});
        member m;
        m.org_id = r.str("org_id");
        m.user_id = r.str("user_id");
        m.role = r.str("role", std::string("member"));
        if (auto cap = r.integer("usage_cap")) m.usage_cap = static_cast<std::uint64_t>(*cap);
        m.used = static_cast<std::uint64_t>(r.integer("used").value_or(0));
        stores.members->put(std::move(m));
    });
    each(obj, "balances", [&](const reader& r) {
        r.allow_only({"org_id", "remaining"});
        auto remaining = r.integer("remaining", false);
        if (!remaining) fail(r.at("remaining"), "required");
        stores.balances->put(r.str("org_id"), *remaining);
    });
}

}  // namespace preflight::clients
