#include <preflight/core/errc.hpp>

#include <string>

namespace preflight {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "preflight"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::store_unavailable: return "store unavailable";
            case errc::timeout: return "time budget exceeded";
            case errc::pool_exhausted: return "connection pool exhausted";
            case errc::connection_broken: return "connection broken";
            case errc::bad_input: return "bad input";
            case errc::not_found: return "not found";
            case errc::budget_exhausted: return "budget exhausted";
            case errc::cancelled: return "operation cancelled";
            case errc::protocol_error: return "protocol error";
        }
        return "unknown preflight error " + std::to_string(ev);
    }
};

}  // namespace

const boost::system::error_category& preflight_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace preflight
