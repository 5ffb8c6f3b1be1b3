#pragma once

#include <preflight/gates/operation.hpp>

#include <boost/json/object.hpp>

#include <string>

namespace preflight::gates {

/// Who the request is about. Empty strings mean "not known"; gates decide what a missing key means.
struct subject_keys {
    std::string user;
    std::string org;
    std::string workspace;
    std::string ip;
    std::string api_key_id;
    std::string run_id;
    std::string request_id;
};

/// One preflight question: may `op` run for `subject`? `extension` carries free-form input for custom gates.
struct request {
    operation op = operation::execute;
    subject_keys subject;
    boost::json::object extension;
};

}  // namespace preflight::gates
