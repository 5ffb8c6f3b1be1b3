// Fuzz target: the fact data loader `clients::load_fact_data` from raw bytes (parse + load).
// Acceptable outcomes: a JSON parse error, `fact_data_error`, or a load. Anything else is a finding, as is any
// sanitizer report (e.g. an overflow while converting a timestamp).

#include "fuzz_check.hpp"
#include <preflight/clients/facts/memory_fact_stores.hpp>

#include <boost/json/parse.hpp>

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
    if (ec) return 0;
    preflight::clients::memory_fact_stores stores;
    try {
        preflight::clients::load_fact_data(doc, stores);
    } catch (const preflight::clients::fact_data_error& e) {
        preflight::fuzz::require(
            std::string_view(e.what()).starts_with("fact data: "), "fact_data_error without prefix"
        );
    } catch (const std::exception& e) {
        preflight::fuzz::finding(std::string("load_fact_data threw something other than fact_data_error: ") + e.what());
    }
    return 0;
}
