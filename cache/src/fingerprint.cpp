#include <preflight/cache/fingerprint.hpp>

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace preflight::cache {

std::string sha256_hex(std::string_view secret) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    if (EVP_Digest(secret.data(), secret.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("sha256_hex: OpenSSL EVP_Digest failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(static_cast<std::size_t>(len) * 2, '0');
    for (unsigned int i = 0; i < len; ++i) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    return out;
}

}  // namespace preflight::cache
