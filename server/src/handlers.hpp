// The request rules, I/O-free (the shape of Beast's handle_request): what the session asks of a
// request head before it reads the body, and how it reads a failed read. Each takes the head (or
// an error code) and the settings, and returns a value: the route and its parameters, or a
// refusal. The session (http_session.hpp) does only the I/O around them; they are unit-tested
// without sockets (tests/server/handlers_test.cpp).
#pragma once

#include "http_request.hpp"
#include "outcome.hpp"
#include "reply.hpp"

#include "faultline/config/config.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/server/service.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace faultline::server::detail {

/// A request refused by a rule: its outcome (status, Retry-After and closing: outcome.hpp) and
/// what to say, worded by the route (wording).
struct refusal {
    outcome o = outcome::bad_request;
    std::string message;
    std::string allow; ///< 405: the methods the route takes (the Allow header)

    refusal() = default;
    refusal(outcome why, std::string what, std::string methods = {})
        : o(why)
        , message(std::move(what))
        , allow(std::move(methods)) {}
};

/// A view asked for while the counts are rebuilt from the state directory after a failed journal
/// write (durable_state::read found it not shown).
inline refusal rebuilding_refusal() {
    return {outcome::rebuilding,
            "the counts are being rebuilt from the state directory after a failed journal "
            "write: retry shortly"};
}

/// True for what Beast's parser reports about the bytes (bad request line, bad chunk, ...): the
/// client sent a malformed request and is answered 400. Anything else from a read (reset, broken
/// pipe, a TLS failure) is the connection failing: there is nobody to answer.
bool is_parse_error(const boost::system::error_code& ec);

/// A failed read of a request head: the refusal to answer, or none when there is nobody to answer
/// (the peer went away, the connection failed).
std::optional<refusal> head_read_failure(const boost::system::error_code& ec,
                                         const config::limits_config& limits);
/// The same for a failed read of a body (its head was read and checked).
std::optional<refusal> body_read_failure(const boost::system::error_code& ec,
                                         const config::limits_config& limits);

/// What a request head asks for.
struct request_target {
    route_match rm;
    std::string_view path;  ///< into the head's target
    std::string_view query; ///< after '?', or empty
    bool get = false;       ///< GET or HEAD
};
/// The route of a head (route::unknown for a path it does not serve), and why it is refused:
/// framing the server does not accept, a path it does not serve (the admin listener serves
/// /metrics, /healthz, /readyz and /-/reload only), a method the route does not take.
struct routing {
    request_target to;
    std::optional<refusal> refused;
};
routing route_of(const request& head, bool admin);

/// GET /healthz.
reply health_reply(unsigned version);
/// GET /readyz: 200 when ready, else 503 (draining or overloaded) with Retry-After.
reply ready_reply(unsigned version, bool ready, bool draining, std::chrono::seconds retry_after);

/// GET /v1/templates: its parameters (limit, group, class, sort, scope), checked.
struct templates_request {
    template_query q;
    bool cluster = false; ///< scope=cluster: every peer's templates, merged
};
std::variant<templates_request, refusal> templates_params(std::string_view query);

/// POST /-/reload: allowed with the configured token (Authorization: Bearer), or, without one,
/// from loopback only. None when allowed.
std::optional<refusal> reload_refusal(std::string_view token, std::string_view authorization,
                                      std::string_view remote);

/// What an ingest route's head decides before a byte of its body is read or reserved.
struct ingest_plan {
    wording words;                  ///< how this route words its refusals (set even when refused)
    std::optional<refusal> refused; ///< refused by its head
    std::shared_ptr<const core::decode::webhook_options> hook; ///< POST /v1/webhook/{source}
    std::shared_ptr<const core::decode::otlp_options> otlp;    ///< POST /v1/logs
    const config::source_config* source = nullptr;             ///< its auth (points into `live`)
    bool authenticated = false; ///< by its head (a bearer token): nothing to check after the body
    std::uint64_t declared = 0; ///< Content-Length (0: chunked or empty)
};
/// `content_length`: the declared length (0: chunked or none). In order: the route's wording, draining, the
/// source (webhook, OTLP), Firehose's head (access key, protocol), a bearer token, the declared length
/// against limits.body_bytes.
ingest_plan plan_ingest(const request& head, const route_match& rm, const service::live_settings& live,
                        const config::limits_config& limits, bool draining, std::uint64_t content_length,
                        std::chrono::system_clock::time_point now);

/// The dedupe key of a delivery id: the id itself when short, else its hash (ids are bounded in
/// the table whatever a client sends: at most 100 bytes a key).
std::string dedupe_key(std::string_view prefix, std::string_view id);

/// The delivery id a webhook's head carries (GitHub's X-GitHub-Delivery, Standard Webhooks'
/// webhook-id, or the source's delivery_id_header): claimed before it is counted. Empty: none.
std::string_view delivery_id_of(const request& req, const ingest_plan& plan);

/// An ingest request whose head passed plan_ingest and whose body was read (and authenticated),
/// made into its delivery: what the session then does (claim its id, count it) or answers
/// without counting.
struct ingest_draft {
    core::pipeline::delivery d; ///< the body moved in, with its padding
    bool gzipped = false;       ///< Content-Encoding: gzip
    /// The dedupe key a redelivery is recognised by (Firehose's request id; a webhook's delivery
    /// id header): claimed before the delivery is counted. Empty: none.
    std::string claim;
    std::optional<refusal> refused; ///< by its content: the Content-Encoding, or not gzip data
    std::optional<http_stats::handshake> handshake; ///< a sender's handshake: `answered`, not counted
    reply answered;
};
/// `now_ms`: the arrival (Unix ms), the templates' first/last seen.
ingest_draft draft_delivery(request& req, const route_match& rm, const ingest_plan& plan,
                            std::int64_t now_ms);

/// What a delivery whose id was claimed before is answered: a redelivery of one counted, 200
/// without counting it again (each route's reply); of one still being counted, 409 to retry
/// later. None when the id is fresh: count it.
struct claimed {
    std::optional<refusal> refused;
    reply ok;
};
std::optional<claimed> claimed_answer(dedupe_cache::state state, route r, std::string_view request_id,
                                      unsigned version);

/// Bodies up to this size (not gzip'd, not Firehose) may be counted on the I/O thread itself.
inline constexpr std::size_t inline_limit = 2048;
/// counts_inline's rule, from what is known before a delivery is drafted.
bool may_count_inline(bool firehose, std::size_t body_bytes, bool gzipped, bool journal);
/// Whether a delivery is counted on the I/O thread itself instead of a worker: a tiny, plain one
/// (one webhook event, say: a few microseconds of work, cheaper than two thread hand-offs), never a
/// Firehose request, and never with a journal (every delivery is then committed durably by a worker).
bool counts_inline(const core::pipeline::delivery& d, bool gzipped, bool journal);

/// What an ingest route answers for its delivery's verdict (the workers' result): a refusal (not
/// admitted, or the body did not decode), or a reply (counted; or 500 when the service failed).
struct ingest_answer {
    std::optional<refusal> refused;
    reply ok;                               ///< when not refused
    std::optional<core::errc> decode_error; ///< counted in faultline_decode_errors_total
    bool internal = false;                  ///< the service failed (500): counted and logged as such
};
/// `request_id`: Firehose's, from the head (else the body's, in the result).
ingest_answer answer_of(const core::pipeline::delivery_result& result, route r, const wording& words,
                        unsigned version, std::string_view request_id, std::chrono::seconds retry_after);

} // namespace faultline::server::detail
