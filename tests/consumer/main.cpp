#include <preflight/preflight.hpp>

#include <iostream>

int main() {
    auto op = preflight::gates::parse_operation("execute");
    const auto fp = preflight::cache::sha256_hex("secret");
    if (!op || fp.size() != 64) return 1;
    std::cout << "consumer: linked preflight, operation " << preflight::gates::to_string(*op) << '\n';
    return 0;
}
