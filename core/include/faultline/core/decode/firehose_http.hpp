// Amazon Kinesis Data Firehose's HTTP endpoint delivery: the rules of its request head and of its
// response, in one place (decoder::firehose reads the body: requestId, timestamp, records of
// base64 data). I/O-free: the server hands over a header lookup and sends what comes back.
//
// Request head: X-Amz-Firehose-Request-Id (the retry identity), X-Amz-Firehose-Access-Key
// (when access keys are configured: one of them), X-Amz-Firehose-Protocol-Version (1.0 when
// given), X-Amz-Firehose-Source-Arn and X-Amz-Firehose-Common-Attributes (where raw-text
// records get their group). Response: {"requestId": .., "timestamp": .. [, "errorMessage": ..]}
// with the request's id, for every status.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace faultline::core::decode::firehose_http {

inline constexpr std::string_view request_id_header = "X-Amz-Firehose-Request-Id";
inline constexpr std::string_view access_key_header = "X-Amz-Firehose-Access-Key";
inline constexpr std::string_view protocol_version_header = "X-Amz-Firehose-Protocol-Version";
inline constexpr std::string_view source_arn_header = "X-Amz-Firehose-Source-Arn";
inline constexpr std::string_view common_attributes_header = "X-Amz-Firehose-Common-Attributes";
/// The group of raw-text records when neither header names one.
inline constexpr std::string_view default_group = "firehose";

/// A header's value by name (empty when absent).
using header_fn = std::function<std::string_view(std::string_view name)>;

/// Why a head is refused before its body is read.
struct refusal {
    enum class kind : std::uint8_t { unauthorized, bad_request } why;
    std::string message;
};

/// The head's checks, before a byte of the body is read: with access keys configured, the
/// access-key header equals one of them (compared in constant time, every key tried); the
/// protocol version, when given, is 1.0.
std::optional<refusal> check_head(const header_fn& header, std::span<const std::string> access_keys);

/// The group of raw-text records: the logGroup of the common attributes
/// ({"commonAttributes":{"logGroup":"..."}}), else the last segment of the source ARN (the
/// delivery stream's name), else "firehose".
std::string text_group(const header_fn& header);

/// The response body (no trailing newline): the request's id, the time, and the error message
/// when there is one.
std::string response_body(std::string_view request_id, std::int64_t timestamp_ms,
                          std::string_view error_message = {});

} // namespace faultline::core::decode::firehose_http
