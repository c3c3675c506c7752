#include "faultline/core/error.hpp"

namespace faultline::core {

std::string_view kind_name(errc code) noexcept {
    switch (code) {
    case errc::json:
        return "json";
    case errc::base64:
        return "base64";
    case errc::gzip:
        return "gzip";
    case errc::too_large:
        return "too_large";
    case errc::document:
        return "document";
    case errc::protobuf:
        return "protobuf";
    case errc::pattern:
        return "pattern";
    case errc::io:
        return "io";
    case errc::over_budget:
        return "over_budget";
    case errc::internal:
        return "internal";
    }
    return "unknown";
}

} // namespace faultline::core
