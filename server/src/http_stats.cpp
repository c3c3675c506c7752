#include "faultline/server/http_stats.hpp"

#include <cmath>

namespace faultline::server {

std::string_view route_label(route r) noexcept {
    switch (r) {
    case route::firehose:
        return "/v1/firehose";
    case route::cloudwatch:
        return "/v1/cloudwatch";
    case route::webhook:
        return "/v1/webhook";
    case route::otlp:
        return "/v1/logs";
    case route::metrics:
        return "/metrics";
    case route::patterns:
        return "/v1/patterns";
    case route::templates:
        return "/v1/templates";
    case route::report:
        return "/v1/report";
    case route::healthz:
        return "/healthz";
    case route::readyz:
        return "/readyz";
    case route::reload:
        return "/-/reload";
    case route::ui:
        return "/ui";
    case route::unknown:
        return "other";
    }
    return "other";
}

std::string_view reject_label(reject_reason r) noexcept {
    switch (r) {
    case reject_reason::queue_full:
        return "queue_full";
    case reject_reason::queue_wait:
        return "queue_wait";
    case reject_reason::inflight_bytes:
        return "inflight_bytes";
    case reject_reason::draining:
        return "draining";
    case reject_reason::max_connections:
        return "max_connections";
    case reject_reason::body_too_large:
        return "body_too_large";
    case reject_reason::header_too_large:
        return "header_too_large";
    case reject_reason::malformed_http:
        return "malformed_http";
    case reject_reason::unauthorized:
        return "unauthorized";
    case reject_reason::timeout:
        return "timeout";
    }
    return "other";
}

std::string_view internal_label(internal_where w) noexcept {
    switch (w) {
    case internal_where::session:
        return "session";
    case internal_where::decode:
        return "decode";
    case internal_where::auth:
        return "auth";
    case internal_where::io_loop:
        return "io_loop";
    }
    return "other";
}

void http_stats::record(route r, int status, double seconds) noexcept {
    const std::size_t ri = static_cast<std::size_t>(r);
    std::size_t ci = codes.size() - 1;
    for (std::size_t i = 0; i + 1 < codes.size(); ++i)
        if (codes[i] == status) ci = i;
    bump(requests_[ri][ci]);
    for (std::size_t b = 0; b < buckets.size(); ++b)
        if (seconds <= buckets[b]) bump(hist_[ri][b]);
    bump(hist_count_[ri]);
    bump(hist_sum_us_[ri], static_cast<std::uint64_t>(std::llround(seconds * 1e6)));
}

} // namespace faultline::server
