#include <preflight/server/field_allocator.hpp>

#include <array>

namespace preflight::server::detail {
namespace {

constexpr std::array<std::size_t, 4> class_bytes{64, 128, 256, 512};
constexpr std::size_t per_class = 32;

/// -1 when `bytes` is over the largest class.
int class_of(std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < class_bytes.size(); ++i) {
        if (bytes <= class_bytes[i]) return static_cast<int>(i);
    }
    return -1;
}

struct free_lists {
    std::array<std::array<void*, per_class>, class_bytes.size()> blocks{};
    std::array<std::size_t, class_bytes.size()> count{};

    ~free_lists();
};

// Trivially destructible, so still readable while the thread's other thread_locals are destroyed: blocks given back
// after `lists` went (a message destroyed by a later thread_local destructor) go straight to the heap.
thread_local bool lists_gone = false;
thread_local free_lists lists;

free_lists::~free_lists() {
    lists_gone = true;
    for (std::size_t c = 0; c < class_bytes.size(); ++c) {
        for (std::size_t i = 0; i < count[c]; ++i) ::operator delete(blocks[c][i]);
        count[c] = 0;
    }
}

}  // namespace

void* take_field_block(std::size_t bytes) {
    const int c = class_of(bytes);
    if (c < 0) return ::operator new(bytes);
    if (!lists_gone) {
        auto& l = lists;
        const auto i = static_cast<std::size_t>(c);
        if (l.count[i] > 0) return l.blocks[i][--l.count[i]];
    }
    return ::operator new(class_bytes[static_cast<std::size_t>(c)]);  // the whole class: reusable for any of it
}

void give_field_block(void* p, std::size_t bytes) noexcept {
    if (p == nullptr) return;
    const int c = class_of(bytes);
    if (c >= 0 && !lists_gone) {
        auto& l = lists;
        const auto i = static_cast<std::size_t>(c);
        if (l.count[i] < per_class) {
            l.blocks[i][l.count[i]++] = p;
            return;
        }
    }
    ::operator delete(p);
}

}  // namespace preflight::server::detail
