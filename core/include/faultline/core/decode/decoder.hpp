// Decoders for everything faultline ingests: CloudWatch Logs subscription documents (one or
// several concatenated), Firehose HTTP-endpoint request bodies (base64 + optional gzip records),
// the Lambda `{"awslogs":{"data":…}}` form and plain text lines. Pure functions of their input:
// no I/O, no global state; one `decoder` per worker (it owns its JSON parsers and buffers).
#pragma once

#include "faultline/core/budget.hpp"
#include "faultline/core/decode/event_sink.hpp"
#include "faultline/core/error.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::core::decode {

/// Bytes that must be readable (allocated) past the end of any buffer handed to a JSON
/// decoder (simdjson's SIMDJSON_PADDING). Their contents do not matter.
inline constexpr std::size_t json_padding = 64;

/// Slack Events API's handshake: the `challenge` of a body that is a JSON object with
/// "type": "url_verification" and a string "challenge" (nullopt for anything else). Bodies
/// over 64 KiB are not handshakes.
std::optional<std::string> slack_challenge(std::string_view body);

struct decode_limits {
    /// Total decompressed bytes per request (the body and all of its records together).
    std::size_t max_decompressed_bytes = std::size_t{256} << 20;
    /// When set, what a request's decoding holds (decoded and decompressed buffers, and the JSON
    /// parsers' working memory, taken as the size of the document they parse) is reserved here
    /// before it is buffered, and given back when the decoding ends. A reservation the budget
    /// cannot give fails the request with errc::over_budget (the server answers 503).
    byte_budget* budget = nullptr;
};

enum class record_format {
    cloudwatch,         ///< CloudWatch JSON only; anything else is an error
    cloudwatch_or_text, ///< CloudWatch JSON, else each non-empty line is one raw event
};

struct firehose_options {
    bool body_gzipped = false; ///< Content-Encoding: gzip on the whole body
    record_format records = record_format::cloudwatch_or_text;
    std::string_view text_group; ///< group of raw text records
};

struct firehose_summary {
    bool has_request_id = false;
    std::string request_id;
    std::size_t records = 0;
};

/// How a generic JSON webhook is read (per configured source).
struct webhook_options {
    std::vector<std::string> message_fields{"message", "msg", "log", "text"}; ///< first present; dotted paths
    std::string group;       ///< group of every event, unless group_field is present in it
    std::string group_field; ///< dotted path of a per-event group (optional)
    bool text = false;       ///< the body is text/plain: one event per non-blank line
    bool gzipped = false;    ///< Content-Encoding: gzip
};

/// How an OTLP/HTTP logs request (ExportLogsServiceRequest) is read.
struct otlp_options {
    bool json = false;    ///< application/json (OTLP's JSON encoding), else application/x-protobuf
    bool gzipped = false; ///< Content-Encoding: gzip
    /// Resource attributes naming the group of its records, the first present (a non-empty
    /// string) wins; none: `group`.
    std::vector<std::string> group_attributes{"service.name", "log.file.path"};
    std::string group = "otlp";
    /// Keys of a map body whose value is the message, the first present wins (else the whole
    /// map, as JSON).
    std::vector<std::string> message_fields{"message", "msg", "log", "text"};
};

struct otlp_summary {
    std::uint64_t records = 0;  ///< log records counted as events
    std::uint64_t rejected = 0; ///< log records without a body (ExportLogsPartialSuccess)
};

class decoder {
public:
    explicit decoder(decode_limits limits = {});
    ~decoder();
    decoder(const decoder&) = delete;
    decoder& operator=(const decoder&) = delete;

    /// One or more CloudWatch Logs documents, concatenated with or without whitespace.
    /// `data` must have json_padding readable bytes past its end. With `cloudwatch_or_text`,
    /// returns false (and emits nothing) when the data is not CloudWatch JSON.
    result<bool> cloudwatch(std::string_view data, event_sink& sink,
                            record_format format = record_format::cloudwatch);

    /// A Firehose HTTP-endpoint request body (`{"requestId", "timestamp", "records":[{"data"}]}`).
    /// `body` must have json_padding readable bytes past its end (unless body_gzipped).
    result<firehose_summary> firehose(std::string_view body, event_sink& sink,
                                      const firehose_options& options);

    /// A CloudWatch delivery as posted to /v1/cloudwatch: plain or gzip'd (detected by magic)
    /// CloudWatch JSON, or the Lambda form {"awslogs":{"data":base64(gzip(json))}}.
    /// `body` must have json_padding readable bytes past its end.
    /// At least one document must be a subscription document (messageType DATA_MESSAGE or
    /// CONTROL_MESSAGE); others are skipped.
    result<void> cloudwatch_delivery(std::string_view body, event_sink& sink);

    /// A generic webhook body: a JSON object, a JSON array of objects, NDJSON (objects separated
    /// by newlines), or text lines. Each object is one event; its message is the first present of
    /// `message_fields` (a string, or any other JSON value as its JSON text). Returns the number of
    /// events. `body` must have json_padding readable bytes past its end (unless gzipped).
    result<std::size_t> webhook(std::string_view body, const webhook_options& options, event_sink& sink);

    /// An OTLP/HTTP logs request body (ExportLogsServiceRequest, protobuf or JSON). Each log
    /// record with a body is one event: its message is the body (a string; for a map, the first
    /// of message_fields, else the map as JSON; any other value as JSON), after the severity
    /// when the record has one (its SeverityNumber's short name, ERROR for 17-20, else its
    /// severity_text). A JSON `body` must have json_padding readable bytes past its end.
    result<otlp_summary> otlp(std::string_view body, const otlp_options& options, event_sink& sink);

    /// Plain text: each line (LF or CRLF) that is not blank is one event of `group`.
    static void lines(std::string_view data, std::string_view group, event_sink& sink);

    const decode_limits& limits() const noexcept;

    /// The parsers, buffers and budget accounting (src/decode/decoder_impl.hpp).
    struct impl;

private:
    result<void> cloudwatch_delivery_impl(std::string_view body, event_sink& sink);
    std::unique_ptr<impl> impl_;
};

} // namespace faultline::core::decode
