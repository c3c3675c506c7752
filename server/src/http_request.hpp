// The request rules faultline lays over Beast's parser (RFC 9112 framing checks Beast 1.81 leaves
// to the application), the route table and query parameters. I/O-free and header-only: used by
// the session code (http_session.hpp) and by the HTTP fuzz target (tests/fuzz/).
#pragma once

#include "faultline/core/decode/firehose_http.hpp"
#include "faultline/server/service.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace faultline::server::detail {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;

/// ASCII lower case; every other byte (also >= 0x80) as it is. Not std::tolower: undefined for
/// negative chars, and locale-dependent.
constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII comparison.
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

/// The value of the first field named `name` (ASCII case-insensitive; empty when absent), as
/// `fields[name]` gives it: a pass over the few fields of a request in their order, where most
/// names differ in length and cost one comparison, instead of Beast's ordered lookup (a
/// case-insensitive comparison at each step; six lookups were 3 % of a tiny webhook's cost).
template <class Fields>
std::string_view field_value(const Fields& fields, std::string_view name) {
    for (const auto& f : fields) {
        const auto n = f.name_string();
        if (n.size() == name.size() && iequals(std::string_view(n.data(), n.size()), name))
            return std::string_view(f.value().data(), f.value().size());
    }
    return {};
}

/// A header lookup over a request's fields (empty when absent), for the I/O-free rules (Firehose's
/// head, webhook authentication).
template <class Fields>
core::decode::firehose_http::header_fn header_of(const Fields& fields) {
    return [&fields](std::string_view name) { return field_value(fields, name); };
}

/// RFC 9112 checks Beast 1.81 leaves to us. Returns the problem, or empty.
inline std::string framing_problem(const request& req) {
    std::size_t content_length = 0, transfer_encoding = 0, host = 0;
    std::string_view cl_value, te_value;
    for (const auto& f : req.base()) {
        switch (f.name()) {
        case http::field::content_length:
            if (content_length++ && f.value() != cl_value) return "conflicting Content-Length headers";
            cl_value = f.value();
            break;
        case http::field::transfer_encoding:
            ++transfer_encoding;
            te_value = f.value();
            break;
        case http::field::host:
            ++host;
            break;
        default:
            break;
        }
    }
    if (content_length > 1) return "duplicate Content-Length headers";
    if (content_length && transfer_encoding) return "both Content-Length and Transfer-Encoding";
    if (transfer_encoding) {
        if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
        if (transfer_encoding > 1) return "several Transfer-Encoding headers";
        // The last coding must be chunked, and chunked must appear once.
        std::string_view v = te_value;
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
            v.remove_suffix(1);
        const std::size_t comma = v.rfind(',');
        std::string_view last = comma == std::string_view::npos ? v : v.substr(comma + 1);
        while (!last.empty() && (last.front() == ' ' || last.front() == '\t'))
            last.remove_prefix(1);
        if (!iequals(last, "chunked")) return "Transfer-Encoding must end with chunked";
        if (comma != std::string_view::npos)
            return "unsupported Transfer-Encoding (only chunked is accepted)";
    }
    if (req.version() >= 11 && host == 0) return "missing Host header";
    if (host > 1) return "several Host headers";
    return {};
}

/// A route and the methods it allows.
struct route_match {
    route r = route::unknown;
    std::string_view allow; ///< "POST", "GET" or empty when the path is unknown
    std::string source;     ///< webhook source name
};

inline route_match match_route(std::string_view path) {
    if (path == "/v1/firehose") return {route::firehose, "POST", {}};
    if (path == "/v1/cloudwatch") return {route::cloudwatch, "POST", {}};
    if (path == "/v1/logs") return {route::otlp, "POST", {}};
    if (path.starts_with("/v1/webhook/") && path.size() > 12 && path.find('/', 12) == std::string_view::npos)
        return {route::webhook, "POST", std::string(path.substr(12))};
    if (path == "/metrics") return {route::metrics, "GET", {}};
    if (path == "/v1/patterns") return {route::patterns, "GET", {}};
    if (path == "/v1/templates") return {route::templates, "GET", {}};
    if (path == "/v1/report") return {route::report, "GET", {}};
    if (path == "/healthz") return {route::healthz, "GET", {}};
    if (path == "/readyz") return {route::readyz, "GET", {}};
    if (path == "/-/reload") return {route::reload, "POST", {}};
    if (path == "/" || path == "/ui") return {route::ui, "GET", {}};
    return {};
}

/// Value of `key` in a query string ("a=1&b=2"), percent-decoding '+' and %XX.
inline std::optional<std::string> query_param(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const std::size_t eq = kv.find('=');
        if (kv.substr(0, eq) != key) continue;
        std::string_view raw = eq == std::string_view::npos ? std::string_view{} : kv.substr(eq + 1);
        std::string out;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '+')
                out += ' ';
            else if (raw[i] == '%' && i + 2 < raw.size()) {
                int v = 0;
                const auto r = std::from_chars(raw.data() + i + 1, raw.data() + i + 3, v, 16);
                if (r.ec == std::errc() && r.ptr == raw.data() + i + 3) {
                    out += static_cast<char>(v);
                    i += 2;
                } else {
                    out += raw[i];
                }
            } else {
                out += raw[i];
            }
        }
        return out;
    }
    return std::nullopt;
}
} // namespace faultline::server::detail
