// OTLP/HTTP's rules for replies (opentelemetry-proto v1.11.0, docs/specification.md, "OTLP/HTTP
// Response"): the reply is in the request's encoding (Content-Type: application/x-protobuf or
// application/json); a success is an ExportLogsServiceResponse, with partial_success set only
// when records were rejected; a 4xx or 5xx is a google.rpc.Status (code, message). I/O-free and
// header-only (http_session.hpp, http_server.cpp, the tests).
#pragma once

#include "http_request.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faultline::server::detail {

enum class otlp_encoding { protobuf, json };

/// The encoding a Content-Type names (its parameters, e.g. charset, ignored); nullopt: not one
/// of OTLP/HTTP's (the request is answered 415).
inline std::optional<otlp_encoding> otlp_encoding_of(std::string_view content_type) {
    std::string_view media = content_type.substr(0, content_type.find(';'));
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t'))
        media.remove_suffix(1);
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t'))
        media.remove_prefix(1);
    if (iequals(media, "application/x-protobuf")) return otlp_encoding::protobuf;
    if (iequals(media, "application/json")) return otlp_encoding::json;
    return std::nullopt;
}

inline std::string_view content_type_of(otlp_encoding e) noexcept {
    return e == otlp_encoding::protobuf ? "application/x-protobuf" : "application/json";
}

/// The google.rpc.Code of an HTTP status (as OTLP/gRPC would answer it).
inline int grpc_code_of(unsigned status) noexcept {
    switch (status) {
    case 400:
    case 413:
    case 415:
    case 431:
        return 3; // INVALID_ARGUMENT
    case 401:
        return 16; // UNAUTHENTICATED
    case 403:
        return 7; // PERMISSION_DENIED
    case 404:
        return 5; // NOT_FOUND
    case 408:
        return 4; // DEADLINE_EXCEEDED
    case 429:
        return 8; // RESOURCE_EXHAUSTED
    case 503:
        return 14; // UNAVAILABLE
    default:
        return 13; // INTERNAL
    }
}

namespace otlp_wire {
inline void varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}
inline void bytes_field(std::string& out, std::uint32_t field, std::string_view b) {
    varint(out, (std::uint64_t{field} << 3) | 2);
    varint(out, b.size());
    out.append(b);
}
} // namespace otlp_wire

/// A google.rpc.Status for an HTTP error status: {code = 1, message = 2}.
inline std::string otlp_status(otlp_encoding e, unsigned status, std::string_view message) {
    const int code = grpc_code_of(status);
    std::string out;
    if (e == otlp_encoding::protobuf) {
        otlp_wire::varint(out, (1 << 3) | 0);
        otlp_wire::varint(out, static_cast<std::uint64_t>(code));
        if (!message.empty()) otlp_wire::bytes_field(out, 2, message);
        return out;
    }
    out = "{\"code\":" + std::to_string(code) + ",\"message\":";
    core::aggregate::append_json_string(out, message);
    out += "}\n";
    return out;
}

/// An ExportLogsServiceResponse: empty when every record was taken, else partial_success (1)
/// {rejected_log_records = 1, error_message = 2}.
inline std::string otlp_success(otlp_encoding e, std::uint64_t rejected, std::string_view error_message) {
    std::string out;
    if (e == otlp_encoding::protobuf) {
        if (rejected == 0) return out;
        std::string partial;
        otlp_wire::varint(partial, (1 << 3) | 0);
        otlp_wire::varint(partial, rejected);
        if (!error_message.empty()) otlp_wire::bytes_field(partial, 2, error_message);
        otlp_wire::bytes_field(out, 1, partial);
        return out;
    }
    if (rejected == 0) return "{}\n";
    // proto3 JSON: an int64 is a decimal string.
    out =
        "{\"partialSuccess\":{\"rejectedLogRecords\":\"" + std::to_string(rejected) + "\",\"errorMessage\":";
    core::aggregate::append_json_string(out, error_message);
    out += "}}\n";
    return out;
}

} // namespace faultline::server::detail
