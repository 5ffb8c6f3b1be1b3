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

}  // namespace

lease::lease(std::string id, release_function release, boost::asio::any_io_executor ex, release_error_hook on_error)
    : id_(std::move(id)), state_(std::make_unique<state>()) {
    state_->fn = std::move(release);
    state_->ex = std::move(ex);
    state_->on_error = std::move(on_error);
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
    if (!state_ || state_->released.exchange(true, std::memory_order_acq_rel)) co_return result<void>{};
    co_return co_await state_->fn();
}

void lease::release_detached() {
    if (!state_ || state_->released.exchange(true, std::memory_order_acq_rel)) return;
    if (!state_->ex) {
        if (state_->on_error) state_->on_error(id_, make_error_code(errc::cancelled));
        return;
    }
    // The function object moves into the spawned coroutine's frame via the awaitable it returns.
    auto fn = std::move(state_->fn);
    boost::asio::co_spawn(
        state_->ex,
        [fn = std::move(fn)]() -> boost::asio::awaitable<result<void>> { co_return co_await fn(); },
        report_release{id_, state_->on_error}
    );
}

}  // namespace preflight::gates
