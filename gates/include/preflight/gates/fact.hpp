#pragma once

#include <preflight/core/errc.hpp>
#include <preflight/gates/request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <typeindex>

namespace preflight::gates {

class pipeline_builder;

/// A typed handle to a fact registered with `pipeline_builder::add_fact<T>`. Copyable, cheap.
template <class T>
class fact_key {
public:
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t index() const noexcept { return index_; }

private:
    friend class pipeline_builder;
    fact_key(std::string name, std::size_t index) : name_(std::move(name)), index_(index) {}
    std::string name_;
    std::size_t index_;
};

/// Loads one fact for a run. The result's error (or an exception) becomes the error of every gate awaiting it.
template <class T>
using fact_loader = std::function<boost::asio::awaitable<result<T>>(const request&)>;

/// Optional synchronous fast path of a fact loader: the value when it is at hand without waiting (in memory,
/// cached), nullopt to fall back to the asynchronous loader. Must not block.
template <class T>
using fact_try_loader = std::function<std::optional<result<T>>(const request&)>;

/// Thrown into a gate that awaits a fact whose loader failed; the pipeline turns it into that gate's error
/// (then the gate's failure policy applies). `code()` is the loader's error.
class fact_error : public boost::system::system_error {
public:
    fact_error(std::string fact, boost::system::error_code ec, const std::string& what)
        : boost::system::system_error(ec, "fact '" + fact + "' failed: " + what), fact_(std::move(fact)) {}
    [[nodiscard]] const std::string& fact() const noexcept { return fact_; }

private:
    std::string fact_;
};

namespace detail {
class run_state;
}

/// What a gate's check sees of its run: the request and the run's facts.
/// Lifetime: valid while the check runs. Thread safety: use only from the check's coroutine.
class gate_context {
public:
    [[nodiscard]] const request& req() const noexcept { return *req_; }
    [[nodiscard]] const std::string& gate_name() const noexcept { return *name_; }

    /// Waits for fact `key` of this run (started eagerly when the run began; loaded at most once per run) and
    /// returns a reference valid until the check returns. Throws `fact_error` when the loader failed.
    /// Cancellation: honours terminal cancellation of the check while waiting (throws operation_aborted).
    template <class T>
    boost::asio::awaitable<std::reference_wrapper<const T>> fact(fact_key<T> key) {
        const void* p = co_await fact_erased(key.index(), std::type_index(typeid(T)));
        co_return std::cref(*static_cast<const T*>(p));
    }

    /// For `try_check`: the fact if it is loaded now, nullptr while it is still loading (then return nullopt
    /// from try_check to fall back to `check`). Starts the fact if nothing started it. Throws `fact_error` when
    /// its loader failed.
    template <class T>
    const T* try_fact(fact_key<T> key) {
        return static_cast<const T*>(try_fact_erased(key.index(), std::type_index(typeid(T))));
    }

private:
    friend class detail::run_state;
    boost::asio::awaitable<const void*> fact_erased(std::size_t index, std::type_index type);
    const void* try_fact_erased(std::size_t index, std::type_index type);

    detail::run_state* run_ = nullptr;
    const request* req_ = nullptr;
    const std::string* name_ = nullptr;
};

}  // namespace preflight::gates
