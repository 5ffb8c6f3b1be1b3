#include <preflight/limits/memory_limit_chain.hpp>

#include <cmath>

namespace preflight::limits {

namespace {

// The checks the stores would fail a part with, made before anything is applied (an error applies nothing).
bool valid(const chain_request& req) noexcept {
    if (req.window && (req.window->limit.period.count() <= 0 || req.window->limit.max == 0)) return false;
    if (req.bucket) {
        const auto& l = req.bucket->limit;
        if (!(l.rate_per_s > 0) || !std::isfinite(l.rate_per_s) || !(l.burst >= 1) || !std::isfinite(l.burst)) {
            return false;
        }
    }
    if (req.admission && (req.admission->max_slots == 0 || req.admission->ttl.count() <= 0)) return false;
    return true;
}

}  // namespace

result<chain_result> memory_limit_chain::apply_now(const chain_request& req) {
    if (!valid(req)) return errc::bad_input;
    chain_result out;
    const auto give_back_window = [&] {
        if (!out.window || !out.window->allowed) return;
        windows_.counter().refund(req.window->key, req.window->limit, req.window->n);
        out.window->count -= std::min(out.window->count, req.window->n);
    };
    if (req.window) {
        out.window = windows_.counter().consume(req.window->key, req.window->limit, req.window->n);
        if (!out.window->allowed) {
            out.denied_by = chain_part::window;
            return out;
        }
    }
    if (req.bucket) {
        auto r = buckets_.try_acquire(req.bucket->key, req.bucket->limit, req.bucket->quantity);
        if (!r) {
            give_back_window();
            return r.error();
        }
        out.bucket = *r;
        if (!r->allowed) {
            give_back_window();
            out.denied_by = chain_part::bucket;
            return out;
        }
    }
    if (req.admission) {
        auto r = admissions_.reserve_now(req.admission->key, req.admission->max_slots, req.admission->ttl);
        const bool stands = r && r->admitted;
        if (!stands) {
            if (out.bucket) {
                // Cannot fail: the limit was validated and taken by the acquire above.
                (void)buckets_.refund_now(req.bucket->key, req.bucket->limit, req.bucket->quantity);
                out.bucket->remaining += req.bucket->quantity;
            }
            give_back_window();
        }
        if (!r) return r.error();
        out.admission = *r;
        if (!stands) out.denied_by = chain_part::admission;
    }
    return out;
}

boost::asio::awaitable<result<chain_result>> memory_limit_chain::apply(chain_request req) {
    co_return apply_now(req);
}

}  // namespace preflight::limits
