#include <preflight/gates/builtin/builtin_errc.hpp>

#include <string>

namespace preflight::gates {

namespace {

class builtin_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "preflight.builtin"; }
    std::string message(int ev) const override {
        switch (static_cast<builtin_errc>(ev)) {
            case builtin_errc::rate_limit_degraded:
                return "shared rate-limit store unavailable: degraded to the local limiter (limit / fleet.size), "
                       "allowed";
        }
        return "unknown preflight.builtin error";
    }
};

}  // namespace

const boost::system::error_category& builtin_category() noexcept {
    static const builtin_category_impl cat;
    return cat;
}

}  // namespace preflight::gates
