// preflightd with a stand-in pipeline (W7 before the built-in gates land): the same program
// (`run_preflightd`: config, in-memory stores from --data, API, lease registry, drain) over four gates on the
// in-memory store set: ban (403), member usage cap (402), a per-user write token bucket (429, rate and burst
// from `standin.rate_per_s` / `standin.burst`) and admission slots per org (commit, lease).
// With --postgres the limit stores (rate limit, admission, windows) are the Postgres ones and the facts stay in
// memory (loaded from --data). Only for measuring the HTTP path; preflightd itself uses gates::default_pipeline.
#include <preflight/clients/facts/memory_fact_stores.hpp>
#include <preflight/clients/pg_admission_store.hpp>
#include <preflight/clients/pg_fixed_window_store.hpp>
#include <preflight/clients/pg_rate_limit_store.hpp>
#include <preflight/limits/rate_limit_store.hpp>
#include <preflight/server/preflightd.hpp>

namespace {

namespace asio = boost::asio;
namespace g = preflight::gates;
using preflight::result;

g::pipeline standin_pipeline(const preflight::config& cfg, preflight::clients::store_set stores, g::event_hook hook) {
    g::pipeline_config pc;
    pc.on_event = std::move(hook);
    g::pipeline_builder b(pc);
    g::gate_spec ban;
    ban.name = "ban";
    ban.check = [bans = stores.bans](g::gate_context& ctx) -> asio::awaitable<result<g::verdict>> {
        std::vector<std::string> ids;
        if (!ctx.req().subject.user.empty()) ids.push_back(ctx.req().subject.user);
        if (!ctx.req().subject.org.empty()) ids.push_back(ctx.req().subject.org);
        auto found = co_await bans->find_active(std::move(ids));
        if (!found) co_return found.error();
        if (*found) co_return g::verdict::deny(g::denial{403, "banned", "banned", std::nullopt, std::nullopt});
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(ban));
    g::gate_spec cap;
    cap.name = "member_cap";
    cap.check = [members = stores.members](g::gate_context& ctx) -> asio::awaitable<result<g::verdict>> {
        auto m = co_await members->find(ctx.req().subject.org, ctx.req().subject.user);
        if (!m) co_return m.error();
        if (*m && (*m)->usage_cap && (*m)->used >= *(*m)->usage_cap) {
            co_return g::verdict::deny(g::denial{402, "member_usage_cap_exceeded", "cap", std::nullopt, std::nullopt});
        }
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(cap));
    g::gate_spec rate;
    rate.name = "rate_limit";
    rate.phase = g::phase::stateful;
    rate.on_failure = g::failure_policy::fail_open;
    preflight::limits::bucket_limit limit{cfg.get_number("standin.rate_per_s"), cfg.get_number("standin.burst")};
    rate.check = [store = stores.rate_limits, limit](g::gate_context& ctx) -> asio::awaitable<result<g::verdict>> {
        std::string key = "user:" + ctx.req().subject.user;
        auto r = co_await store->acquire(std::move(key), limit, 1);
        if (!r) co_return r.error();
        if (!r->allowed) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r->retry_after);
            co_return g::verdict::deny(g::denial{429, "rate_limited", "rate limited", ms, std::nullopt});
        }
        co_return g::verdict::pass();
    };
    b.add_gate(std::move(rate));
    g::gate_spec admission;
    admission.name = "admission";
    admission.phase = g::phase::commit;
    const auto slots = static_cast<std::uint32_t>(cfg.get_int("standin.max_concurrent"));
    admission.check = [store = stores.admissions, slots](g::gate_context& ctx) -> asio::awaitable<result<g::verdict>> {
        std::string key = "org:" + ctx.req().subject.org;
        auto r = co_await store->reserve(std::move(key), slots, std::chrono::minutes{5});
        if (!r) co_return r.error();
        if (!r->admitted) {
            co_return g::verdict::deny(g::denial{
                429, "too_many_concurrent_executions", "slots", std::nullopt, std::nullopt});
        }
        g::release_function release = [store, id = r->lease_id]() -> asio::awaitable<result<void>> {
            auto rr = co_await store->release(id);
            if (!rr) co_return rr.error();
            co_return result<void>{};
        };
        co_return g::verdict::pass_with_lease(r->lease_id, std::move(release));
    };
    b.add_gate(std::move(admission));
    return b.build();
}

// The fact stores of the stand-in in Postgres mode (facts stay in memory).
preflight::clients::memory_fact_stores& pg_mode_facts() {
    static preflight::clients::memory_fact_stores facts;
    return facts;
}

template <class Store>
std::shared_ptr<Store> pool_store(const std::shared_ptr<preflight::clients::pg_pool>& pool) {
    return std::shared_ptr<Store>(new Store(*pool), [pool](Store* p) { delete p; });  // keeps the pool alive
}

}  // namespace

int main(int argc, char** argv) {
    preflight::server::preflightd_parts parts;
    parts.register_config = [](preflight::config_registry& r) {
        preflight::config_key k;
        k.path = "standin.rate_per_s";
        k.type = preflight::config_type::number;
        k.default_value = 1e9;
        k.min = 0;
        k.min_exclusive = true;
        r.add(k);
        k.path = "standin.burst";
        k.default_value = 1e9;
        k.min = 1;
        k.min_exclusive = false;
        r.add(k);
        k.path = "standin.max_concurrent";
        k.type = preflight::config_type::integer;
        k.default_value = 1000;
        r.add(k);
    };
    parts.make_pipeline = standin_pipeline;
    // The limit stores one statement per write (no pg_limit_batch): the stand-in's workload is W7's.
    parts.make_pg_stores = [](std::shared_ptr<preflight::clients::pg_pool> pool,
                              const preflight::clients::pg_store_options&) {
        auto set = preflight::clients::make_memory_store_set(pg_mode_facts(), preflight::clock::steady());
        set.rate_limits = pool_store<preflight::clients::pg_rate_limit_store>(pool);
        set.admissions = pool_store<preflight::clients::pg_admission_store>(pool);
        set.windows = pool_store<preflight::clients::pg_fixed_window_store>(pool);
        return set;
    };
    parts.load_pg_data = [](std::shared_ptr<preflight::clients::pg_pool>,
                            boost::json::value doc) -> asio::awaitable<void> {
        preflight::clients::load_fact_data(doc, pg_mode_facts());
        co_return;
    };
    return preflight::server::run_preflightd(argc, argv, parts);
}
