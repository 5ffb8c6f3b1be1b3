#pragma once
// Type erasure of fact values; used by pipeline_builder::add_fact (a template) and the engine.

#include <preflight/gates/request.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <functional>
#include <string>
#include <typeindex>
#include <utility>

namespace preflight::gates::detail {

/// A loaded fact value (owned) or the loader's error.
class fact_box {
public:
    fact_box() = default;
    fact_box(fact_box&& o) noexcept
        : value_(std::exchange(o.value_, nullptr)), destroy_(o.destroy_), ec_(o.ec_), message_(std::move(o.message_)) {}
    fact_box& operator=(fact_box&& o) noexcept {
        if (this != &o) {
            reset();
            value_ = std::exchange(o.value_, nullptr);
            destroy_ = o.destroy_;
            ec_ = o.ec_;
            message_ = std::move(o.message_);
        }
        return *this;
    }
    fact_box(const fact_box&) = delete;
    fact_box& operator=(const fact_box&) = delete;
    ~fact_box() { reset(); }

    template <class T>
    static fact_box of(T&& v) {
        using V = std::decay_t<T>;
        fact_box b;
        b.value_ = new V(std::forward<T>(v));
        b.destroy_ = [](void* p) { delete static_cast<V*>(p); };
        return b;
    }
    static fact_box failure(boost::system::error_code ec, std::string message) {
        fact_box b;
        b.ec_ = ec;
        b.message_ = std::move(message);
        return b;
    }

    [[nodiscard]] bool ok() const noexcept { return value_ != nullptr; }
    [[nodiscard]] const void* value() const noexcept { return value_; }
    [[nodiscard]] boost::system::error_code error() const noexcept { return ec_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
    void reset() noexcept {
        if (value_ != nullptr) destroy_(value_);
        value_ = nullptr;
    }
    void* value_ = nullptr;
    void (*destroy_)(void*) = nullptr;
    boost::system::error_code ec_;
    std::string message_;
};

using erased_loader = std::function<boost::asio::awaitable<fact_box>(const request&)>;
/// Synchronous fast path: true and `out` filled when the fact was at hand.
using erased_try_loader = std::function<bool(const request&, fact_box& out)>;

struct fact_def {
    std::string name;
    std::type_index type;
    erased_loader load;
    erased_try_loader try_load;  // may be empty
};

}  // namespace preflight::gates::detail
