#pragma once

#include <cstddef>
#include <new>

namespace preflight::server {

namespace detail {
/// Small blocks for the header fields of requests and responses, recycled per thread: a handful of size classes,
/// each a free list of at most `per_class` blocks (so a thread keeps at most ~60 KiB); larger blocks, and blocks
/// given back to a full list, go to the global heap. A block may be freed on another thread than it was taken on
/// (it then joins that thread's list). Thread-safe (all state is per thread).
[[nodiscard]] void* take_field_block(std::size_t bytes);
void give_field_block(void* p, std::size_t bytes) noexcept;
}  // namespace detail

/// The allocator of the fields of `http_request` and `http_response`: Beast allocates one block per header field
/// (name and value in it) and one for the request target, and frees them with the message, i.e. several blocks per
/// request; recycled per thread, they cost no malloc once the server is warm. Stateless: every instance is equal.
template <class T>
class field_allocator {
public:
    using value_type = T;
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "field_allocator: over-aligned type");

    field_allocator() noexcept = default;
    template <class U>
    field_allocator(const field_allocator<U>&) noexcept {}  // NOLINT: allocators convert implicitly

    [[nodiscard]] T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(detail::take_field_block(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { detail::give_field_block(p, n * sizeof(T)); }

    template <class U>
    friend bool operator==(const field_allocator&, const field_allocator<U>&) noexcept {
        return true;
    }
};

}  // namespace preflight::server
