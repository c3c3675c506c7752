// What the server answers: the reply (serialized by hand), the reply of an outcome, and how a
// route words its refusals. I/O-free: used by the handlers (handlers.hpp) and the session.
#pragma once

#include "otlp_reply.hpp"
#include "outcome.hpp"

#include <boost/beast/http/status.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace faultline::server::detail {

namespace http = boost::beast::http;

std::int64_t unix_ms();
std::string json_error(std::string_view message);
std::string firehose_body(std::string_view request_id, std::string_view error_message = {});

/// The outcome of a request: what to send, and whether the connection must close after it.
/// Serialized by hand into one buffer (one allocation, one write) instead of through Beast's
/// fields and serializer: the replies are small and their headers few.
struct reply {
    unsigned status = 0; ///< 0: nothing to answer (the peer went away)
    unsigned version = 11;
    std::string_view content_type = "application/json";
    std::string allow;       ///< Allow header (405)
    std::string retry_after; ///< Retry-After header (429/503), seconds
    std::string body;
    bool close = false;
    bool head = false;   ///< HEAD: headers only (Content-Length of the body)
    bool logged = false; ///< a refusal worth a "request refused" log line (outcome_rule::logged)
    std::string note;    ///< what that line says of it when the body is not text (OTLP protobuf)

    void set_retry_after(std::chrono::seconds s) { retry_after = std::to_string(s.count()); }

    std::string serialize() const {
        const auto reason = http::obsolete_reason(static_cast<http::status>(status));
        std::string out;
        out.reserve(160 + allow.size() + retry_after.size() + body.size());
        auto number = [&out](std::uint64_t v) { // no temporary string (one allocation in all)
            char digits[24];
            const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
            out.append(digits, static_cast<std::size_t>(end - digits));
        };
        out += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
        number(status);
        out += ' ';
        out.append(reason.data(), reason.size());
        out += "\r\nServer: faultline\r\nContent-Type: ";
        out += content_type;
        if (!allow.empty()) out.append("\r\nAllow: ").append(allow);
        if (!retry_after.empty()) out.append("\r\nRetry-After: ").append(retry_after);
        out += "\r\nContent-Length: ";
        number(body.size());
        if (close)
            out += "\r\nConnection: close";
        else if (version < 11)
            out += "\r\nConnection: keep-alive";
        out += "\r\n\r\n";
        if (!head) out += body;
        return out;
    }
};

/// The reply of an outcome (outcome.hpp): its status, Retry-After and whether it closes.
inline reply make_reply(unsigned version, outcome o, std::string body, std::chrono::seconds retry_after) {
    const outcome_rule rule = rule_of(o);
    reply r;
    r.status = static_cast<unsigned>(rule.status);
    r.version = version;
    r.body = std::move(body);
    r.close = rule.close;
    r.logged = rule.logged;
    if (rule.retry_after) r.set_retry_after(retry_after);
    return r;
}

inline reply make_reply(unsigned version, http::status status, std::string body,
                        std::string_view content_type = "application/json") {
    reply r;
    r.status = static_cast<unsigned>(status);
    r.version = version;
    r.content_type = content_type;
    r.body = std::move(body);
    return r;
}

/// How a route words a refusal: Firehose's response JSON (with the request id), OTLP's Status
/// in the request's encoding, or {"error": "..."} (every other route).
struct wording {
    enum class kind : std::uint8_t { json, firehose, otlp } k = kind::json;
    otlp_encoding encoding = otlp_encoding::json;
    std::string request_id; ///< Firehose

    std::string body(unsigned status, const std::string& message) const {
        switch (k) {
        case kind::firehose:
            return firehose_body(request_id, message) + "\n";
        case kind::otlp:
            return otlp_status(encoding, status, message);
        case kind::json:
            break;
        }
        return json_error(message);
    }
    std::string_view content_type() const noexcept {
        return k == kind::otlp ? content_type_of(encoding) : std::string_view("application/json");
    }
};

/// The reply of an outcome in a route's wording (the body, its type, and the log line's note).
inline reply make_reply(unsigned version, outcome o, const wording& w, const std::string& message,
                        std::chrono::seconds retry_after) {
    reply r = make_reply(version, o, w.body(static_cast<unsigned>(rule_of(o).status), message), retry_after);
    r.content_type = w.content_type();
    if (w.k == wording::kind::otlp && w.encoding == otlp_encoding::protobuf) r.note = message;
    return r;
}

} // namespace faultline::server::detail
