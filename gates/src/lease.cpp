#include <preflight/gates/lease.hpp>

#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <utility>

namespace preflight::gates {
namespace {

/// Completion of a detached release: reports failures (never swallowed).
struct report_release {
    std::string id;
    release_error_hook on_error;

    void operator()(std::exception_ptr ep, result<void> r) const {
        boost::system::error_code ec;
        if (ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            } catch (...) {
                ec = make_error_code(errc::store_unavailable);
            }
        } else if (!r) {
            ec = r.error();
        }
        if (ec && on_error) on_error(id, ec);
    }
};

/// Held by a spawned release until it starts: when its io_context is destroyed (or shut down) before running it, the
/// release never ran and this says so: a synchronous release where the lease has one, else the error hook with
/// `errc::cancelled`. Never silent.
struct release_watch {
    std::string id;
    release_now_function release_now;
    release_error_hook on_error;
    bool started = false;

    release_watch(std::string i, release_now_function now, release_error_hook err)
        : id(std::move(i)), release_now(std::move(now)), on_error(std::move(err)) {}
    release_watch(const release_watch&) = delete;
    release_watch& operator=(const release_watch&) = delete;
    ~release_watch() {
        if (started) return;
        try {
            if (release_now) {
                release_now();
            } else if (on_error) {
                on_error(id, make_error_code(errc::cancelled));
            }
        } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; the store's ttl is the backstop
        }
    }
};

/// The usage first (when the lease records it), then the release, which runs whatever the recording answered: the
/// slot must come back. The first error is the answer.
boost::asio::awaitable<result<void>> record_then_release(
    const usage_function& record, const release_function& fn, std::uint64_t requests, std::uint64_t tokens
) {
    result<void> recorded;
    if (record) recorded = co_await record(requests, tokens);
    result<void> released = co_await fn();
    if (!recorded) co_return recorded;
    co_return released;
}

}  // namespace

lease::lease(
    std::string id,
    release_function release,
    boost::asio::any_io_executor ex,
    release_error_hook on_error,
    lease_hooks hooks
)
    : id_(std::move(id)), state_(std::make_unique<state>()) {
    state_->fn = std::move(release);
    state_->ex = std::move(ex);
    state_->on_error = std::move(on_error);
    state_->hooks = std::move(hooks);
}

lease::lease(lease&& other) noexcept : id_(std::move(other.id_)), state_(std::move(other.state_)) {}

lease& lease::operator=(lease&& other) noexcept {
    if (this != &other) {
        release_detached();
        id_ = std::move(other.id_);
        state_ = std::move(other.state_);
    }
    return *this;
}

lease::~lease() {
    release_detached();
}

bool lease::held() const noexcept {
    return state_ && !state_->released.load(std::memory_order_acquire);
}

boost::asio::awaitable<result<void>> lease::release() {
    co_return co_await release(1, 0);
}

boost::asio::awaitable<result<void>> lease::release(std::uint64_t requests, std::uint64_t tokens) {
    if (!state_ || state_->released.exchange(true, std::memory_order_acq_rel)) co_return result<void>{};
    co_return co_await record_then_release(state_->hooks.record_usage, state_->fn, requests, tokens);
}

boost::asio::awaitable<result<bool>> lease::renew() {
    if (!held()) co_return false;
    if (!state_->hooks.renew) {
        co_return result<bool>{boost::system::in_place_error, make_error_code(errc::bad_input)};
    }
    co_return co_await state_->hooks.renew();
}

void lease::release_detached() {
    if (!state_ || state_->released.exchange(true, std::memory_order_acq_rel)) return;
    auto watch = std::make_shared<release_watch>(id_, std::move(state_->hooks.release_now), state_->on_error);
    if (!state_->ex) return;  // nothing can run a release: `watch` reports it now
    // The function objects move into the spawned coroutine's frame via the awaitable it returns.
    boost::asio::co_spawn(
        state_->ex,
        [fn = std::move(state_->fn), record = std::move(state_->hooks.record_usage), watch = std::move(watch)](
        ) -> boost::asio::awaitable<result<void>> {
            watch->started = true;
            co_return co_await record_then_release(record, fn, 1, 0);
        },
        report_release{id_, state_->on_error}
    );
}

}  // namespace preflight::gates
