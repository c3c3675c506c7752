// The outcomes of a request and, in one table, what each means on the wire and in the metrics:
// status, reject reason (faultline_rejected_requests_total), Retry-After, whether the connection
// closes, whether it is logged. Internal failures are 500 and never the client's 400.
// I/O-free and header-only (http_session.hpp, the tests).
#pragma once

#include "faultline/server/service.hpp"

#include <boost/beast/http/status.hpp>

#include <cstdint>
#include <optional>

namespace faultline::server::detail {

enum class outcome : std::uint8_t {
    ok,                 ///< answered (a read route), or counted (an ingest route)
    malformed_http,     ///< bad framing, request line or chunk: 400, close
    bad_request,        ///< a well-framed request with a bad parameter or header: 400
    decode_error,       ///< the body did not decode (JSON, base64, gzip, a contract): 400
    unsupported_media,  ///< Content-Encoding other than gzip/identity: 415
    unauthorized,       ///< missing or wrong credentials: 401
    forbidden,          ///< reload from where it is not allowed: 403
    not_found,          ///< 404
    method_not_allowed, ///< 405 with Allow
    timeout,            ///< head or body not received in time: 408, close
    body_too_large,     ///< body (with chunk framing) over limits.body_bytes: 413, close
    head_too_large,     ///< head, a field or the trailer section over limits.header_bytes: 431, close
    over_budget,        ///< the in-flight byte budget is spent: 503 + Retry-After, close
    queue_full,         ///< the worker queue is full: 429 + Retry-After
    queue_wait,         ///< the oldest queued delivery waited over limits.queue_wait: 429 + Retry-After
    draining,           ///< shutting down: 503 + Retry-After
    request_in_flight,  ///< a Firehose retry of a request still being processed: 503 + Retry-After
    rebuilding,     ///< a view while the counts are rebuilt after a failed journal write: 503 + Retry-After
    journal_failed, ///< the delivery's journal write failed (not counted): 503 + Retry-After
    internal_error, ///< a failure of the service itself: 500, close
};

struct outcome_rule {
    boost::beast::http::status status;
    std::optional<reject_reason> reason; ///< counted in faultline_rejected_requests_total
    bool retry_after = false;            ///< the client should retry (Retry-After: limits.retry_after)
    bool close = false;                  ///< the connection closes after the answer
    bool logged = true;                  ///< a "request refused" log line (rate-limited)
};

inline outcome_rule rule_of(outcome o) noexcept {
    using s = boost::beast::http::status;
    switch (o) {
    case outcome::ok:
        return {s::ok, std::nullopt, false, false, false};
    case outcome::malformed_http:
        return {s::bad_request, reject_reason::malformed_http, false, true};
    case outcome::bad_request:
        return {s::bad_request, std::nullopt, false, false};
    case outcome::decode_error:
        return {s::bad_request, std::nullopt, false, false}; // counted by kind in decode_errors_total
    case outcome::unsupported_media:
        return {s::unsupported_media_type, std::nullopt, false, false};
    case outcome::unauthorized:
        return {s::unauthorized, reject_reason::unauthorized, false, false};
    case outcome::forbidden:
        return {s::forbidden, reject_reason::unauthorized, false, false};
    case outcome::not_found:
        return {s::not_found, std::nullopt, false, false, false};
    case outcome::method_not_allowed:
        return {s::method_not_allowed, std::nullopt, false, false, false};
    case outcome::timeout:
        return {s::request_timeout, reject_reason::timeout, false, true};
    case outcome::body_too_large:
        return {s::payload_too_large, reject_reason::body_too_large, false, true};
    case outcome::head_too_large:
        return {s::request_header_fields_too_large, reject_reason::header_too_large, false, true};
    case outcome::over_budget:
        return {s::service_unavailable, reject_reason::inflight_bytes, true, true};
    case outcome::queue_full:
        return {s::too_many_requests, reject_reason::queue_full, true, false};
    case outcome::queue_wait:
        return {s::too_many_requests, reject_reason::queue_wait, true, false};
    case outcome::draining:
        return {s::service_unavailable, reject_reason::draining, true, false};
    case outcome::request_in_flight:
        return {s::service_unavailable, std::nullopt, true, false};
    case outcome::rebuilding:
        return {s::service_unavailable, std::nullopt, true, false};
    case outcome::journal_failed:
        return {s::service_unavailable, std::nullopt, true, false};
    case outcome::internal_error:
        return {s::internal_server_error, std::nullopt, false, true};
    }
    return {s::internal_server_error, std::nullopt, false, true};
}

} // namespace faultline::server::detail
