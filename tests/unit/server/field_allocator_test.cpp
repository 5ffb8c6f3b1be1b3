#include <preflight/server/field_allocator.hpp>
#include <preflight/server/http_server.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace {

namespace d = preflight::server::detail;

// glibc hands a just-freed block straight back to the next allocation of its size, so a bare "the same pointer came
// back" would pass without any recycling. Each test first takes a decoy from the heap of the same size: had the
// block gone back to the heap, the decoy would be it.
TEST(field_allocator, a_given_block_is_taken_again_for_any_size_of_its_class) {
    void* p = d::take_field_block(100);
    std::memset(p, 0xab, 128);  // the whole class is usable
    d::give_field_block(p, 100);
    void* decoy = ::operator new(128);
    void* q = d::take_field_block(120);  // same class (65..128 bytes)
    EXPECT_EQ(q, p);
    EXPECT_NE(decoy, p) << "the block went back to the heap";
    ::operator delete(decoy);
    d::give_field_block(q, 120);
    void* r = d::take_field_block(20);  // another class: another block
    EXPECT_NE(r, p);
    d::give_field_block(r, 20);
}

TEST(field_allocator, large_blocks_and_a_full_list_go_to_the_heap) {
    void* big = d::take_field_block(4096);
    std::memset(big, 0, 4096);
    d::give_field_block(big, 4096);
    // More blocks than a list keeps: the list takes the first 32 given back, the rest go to the heap (ASan would flag
    // a leak or a double free among them).
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(d::take_field_block(300));
    for (void* b : blocks) d::give_field_block(b, 300);
    std::vector<void*> decoys;
    for (int i = 0; i < 100; ++i) decoys.push_back(::operator new(512));  // soak up what went to the heap
    std::vector<void*> again;
    for (int i = 0; i < 32; ++i) again.push_back(d::take_field_block(300));
    for (void* a : again) {
        EXPECT_NE(std::find(blocks.begin(), blocks.end(), a), blocks.end()) << "not from the list";
        EXPECT_EQ(std::find(decoys.begin(), decoys.end(), a), decoys.end());
    }
    for (void* a : again) d::give_field_block(a, 300);
    for (void* x : decoys) ::operator delete(x);
    d::give_field_block(nullptr, 10);  // a no-op
}

TEST(field_allocator, a_block_freed_on_another_thread_joins_that_threads_list) {
    void* p = d::take_field_block(50);
    void* taken_there = nullptr;
    void* decoy = nullptr;
    std::thread t([&] {
        d::give_field_block(p, 50);
        decoy = ::operator new(64);
        taken_there = d::take_field_block(60);
        d::give_field_block(taken_there, 60);
    });
    t.join();
    EXPECT_EQ(taken_there, p);
    EXPECT_NE(decoy, p) << "the block went back to the heap";
    ::operator delete(decoy);
}

TEST(field_allocator, messages_with_it_behave_as_beasts) {
    preflight::server::http_response res{boost::beast::http::status::ok, 11};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.set("RateLimit-Policy", std::string(300, 'q'));
    res.body() = "{}";
    res.prepare_payload();
    EXPECT_EQ(res[boost::beast::http::field::content_length], "2");
    EXPECT_EQ(res["RateLimit-Policy"].size(), 300U);
    auto copy = res;
    EXPECT_EQ(copy[boost::beast::http::field::content_type], "application/json");
    EXPECT_TRUE(preflight::server::field_allocator<char>{} == preflight::server::field_allocator<int>{});
}

}  // namespace
