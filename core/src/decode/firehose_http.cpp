#include "faultline/core/decode/firehose_http.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/constant_time.hpp"

namespace faultline::core::decode::firehose_http {

std::optional<refusal> check_head(const header_fn& header, std::span<const std::string> access_keys) {
    if (!access_keys.empty()) {
        const std::string_view given = header(access_key_header);
        bool ok = false;
        for (const auto& k : access_keys)
            ok |= core::constant_time_equal(given, k);
        if (!ok)
            return refusal{refusal::kind::unauthorized,
                           std::string(access_key_header) +
                               (given.empty() ? " is missing" : " is not valid")};
    }
    if (const std::string_view proto = header(protocol_version_header); !proto.empty() && proto != "1.0")
        return refusal{refusal::kind::bad_request,
                       "unsupported " + std::string(protocol_version_header) + " (expected 1.0)"};
    return std::nullopt;
}

std::string text_group(const header_fn& header) {
    // {"commonAttributes":{"logGroup":"..."}}: a small header, read without a JSON library; a
    // value that does not close is ignored.
    if (const std::string_view attrs = header(common_attributes_header); !attrs.empty()) {
        const std::size_t k = attrs.find("\"logGroup\"");
        if (k != std::string_view::npos) {
            const std::size_t colon = attrs.find(':', k + 10);
            const std::size_t q1 = colon == std::string_view::npos ? colon : attrs.find('"', colon + 1);
            const std::size_t q2 = q1 == std::string_view::npos ? q1 : attrs.find('"', q1 + 1);
            if (q2 != std::string_view::npos && q2 > q1 + 1)
                return std::string(attrs.substr(q1 + 1, q2 - q1 - 1));
        }
    }
    if (const std::string_view arn = header(source_arn_header); !arn.empty()) {
        const std::size_t slash = arn.rfind('/');
        const std::string_view stream = slash == std::string_view::npos ? arn : arn.substr(slash + 1);
        if (!stream.empty()) return std::string(stream);
    }
    return std::string(default_group);
}

std::string response_body(std::string_view request_id, std::int64_t timestamp_ms,
                          std::string_view error_message) {
    std::string out = "{\"requestId\":";
    aggregate::append_json_string(out, request_id);
    out += ",\"timestamp\":" + std::to_string(timestamp_ms);
    if (!error_message.empty()) {
        out += ",\"errorMessage\":";
        aggregate::append_json_string(out, error_message);
    }
    out += "}";
    return out;
}

} // namespace faultline::core::decode::firehose_http
