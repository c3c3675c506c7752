#include "handlers.hpp"

#include "request_reader.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/firehose_http.hpp"
#include "faultline/core/decode/gzip.hpp"
#include "faultline/server/webhook_auth.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <charconv>

namespace faultline::server::detail {

namespace beast = boost::beast;
namespace firehose_http = core::decode::firehose_http;

bool is_parse_error(const boost::system::error_code& ec) {
    static const auto& parse_category = make_error_code(http::error::bad_method).category();
    return ec.category() == parse_category;
}

namespace {

bool peer_gone(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == boost::asio::error::eof || !is_parse_error(ec);
}

std::string bytes(std::size_t n) {
    return std::to_string(n) + " bytes";
}

} // namespace

std::optional<refusal> head_read_failure(const boost::system::error_code& ec,
                                         const config::limits_config& limits) {
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow ||
        ec == make_error_code(request_error::field_too_large))
        return refusal{outcome::head_too_large,
                       "request head exceeds the limit of " + bytes(limits.header_bytes)};
    if (ec == beast::error::timeout) return refusal{outcome::timeout, "request head not received in time"};
    if (ec == make_error_code(request_error::internal))
        return refusal{outcome::internal_error, "internal error"};
    if (peer_gone(ec)) return std::nullopt;
    return refusal{outcome::malformed_http, "malformed request: " + ec.message()};
}

std::optional<refusal> body_read_failure(const boost::system::error_code& ec,
                                         const config::limits_config& limits) {
    if (ec == http::error::body_limit || ec == make_error_code(request_error::body_too_large))
        return refusal{outcome::body_too_large,
                       "request body exceeds the limit of " + bytes(limits.body_bytes)};
    if (ec == make_error_code(request_error::over_budget))
        return refusal{outcome::over_budget, "too many bytes in flight: retry later"};
    if (ec == make_error_code(request_error::trailer_too_large) ||
        ec == make_error_code(request_error::field_too_large))
        return refusal{outcome::head_too_large,
                       "trailer section exceeds the limit of " + bytes(limits.header_bytes)};
    if (ec == make_error_code(request_error::extension_too_long) || ec == http::error::buffer_overflow)
        return refusal{outcome::malformed_http, "chunk-size line or trailer section exceeds the limit of " +
                                                    bytes(limits.header_bytes)};
    if (ec == make_error_code(request_error::internal))
        return refusal{outcome::internal_error, "internal error"};
    if (ec == beast::error::timeout) return refusal{outcome::timeout, "request body not received in time"};
    if (ec == http::error::partial_message || peer_gone(ec)) return std::nullopt; // gone mid-body
    return refusal{outcome::malformed_http, "malformed request body: " + ec.message()};
}

routing route_of(const request& head, bool admin) {
    routing out;
    if (auto problem = framing_problem(head); !problem.empty()) {
        out.refused = refusal{outcome::malformed_http, std::move(problem)};
        return out;
    }
    request_target& t = out.to;
    const std::string_view whole(head.target().data(), head.target().size());
    const std::size_t qmark = whole.find('?');
    t.path = whole.substr(0, qmark);
    t.query = qmark == std::string_view::npos ? std::string_view{} : whole.substr(qmark + 1);
    t.rm = match_route(t.path);
    if (admin && t.rm.r != route::metrics && t.rm.r != route::healthz && t.rm.r != route::readyz &&
        t.rm.r != route::reload)
        t.rm = {};
    if (t.rm.r == route::unknown) {
        out.refused = refusal{outcome::not_found, "no such path: " + std::string(t.path)};
        return out;
    }
    t.get = head.method() == http::verb::get || head.method() == http::verb::head;
    if ((t.rm.allow == "GET" && !t.get) || (t.rm.allow == "POST" && head.method() != http::verb::post))
        out.refused = refusal{outcome::method_not_allowed,
                              "method " + std::string(head.method_string()) + " not allowed on " +
                                  std::string(t.path) + " (allowed: " + std::string(t.rm.allow) + ")",
                              t.rm.allow == "GET" ? "GET, HEAD" : "POST"};
    return out;
}

reply health_reply(unsigned version) {
    return make_reply(version, http::status::ok, "{\"status\":\"ok\"}\n");
}

reply ready_reply(unsigned version, bool ready, bool draining, std::chrono::seconds retry_after) {
    if (ready) return make_reply(version, http::status::ok, "{\"status\":\"ready\"}\n");
    reply r = make_reply(version, http::status::service_unavailable,
                         draining ? "{\"status\":\"draining\"}\n" : "{\"status\":\"overloaded\"}\n");
    r.set_retry_after(retry_after);
    return r;
}

std::variant<templates_request, refusal> templates_params(std::string_view query) {
    templates_request t;
    if (auto v = query_param(query, "limit")) {
        std::size_t n = 0;
        const auto res = std::from_chars(v->data(), v->data() + v->size(), n);
        if (res.ec != std::errc() || res.ptr != v->data() + v->size() || n == 0 || n > 10000)
            return refusal{outcome::bad_request, "limit must be an integer from 1 to 10000"};
        t.q.limit = n;
    }
    t.q.group = query_param(query, "group").value_or("");
    t.q.cls = query_param(query, "class").value_or("");
    if (!t.q.cls.empty() && t.q.cls != "error" && t.q.cls != "warn" && t.q.cls != "info")
        return refusal{outcome::bad_request, "class must be error, warn or info"};
    t.q.sort = query_param(query, "sort").value_or("count");
    if (t.q.sort != "count" && t.q.sort != "first_seen" && t.q.sort != "last_seen")
        return refusal{outcome::bad_request, "sort must be count, first_seen or last_seen"};
    const std::string scope(query_param(query, "scope").value_or("local"));
    if (scope != "local" && scope != "cluster")
        return refusal{outcome::bad_request, "scope must be local or cluster"};
    t.cluster = scope == "cluster";
    return t;
}

std::optional<refusal> reload_refusal(std::string_view token, std::string_view authorization,
                                      std::string_view remote) {
    const bool loopback =
        remote.starts_with("127.") || remote.starts_with("::1") || remote.starts_with("::ffff:127.");
    const bool allowed = token.empty() ? loopback
                                       : authorization.starts_with("Bearer ") &&
                                             constant_time_equal(authorization.substr(7), token);
    if (allowed) return std::nullopt;
    return refusal{outcome::forbidden, token.empty() ? "reload is allowed from loopback only"
                                                     : "reload needs Authorization: Bearer <reload_token>"};
}

ingest_plan plan_ingest(const request& head, const route_match& rm, const service::live_settings& live,
                        const config::limits_config& limits, bool draining, std::uint64_t content_length,
                        std::chrono::system_clock::time_point now) {
    ingest_plan p;
    auto no = [&](outcome o, std::string message) {
        p.refused = refusal{o, std::move(message)};
        return std::move(p);
    };
    const auto lookup = header_of(head);
    const bool is_firehose = rm.r == route::firehose;
    if (is_firehose) {
        p.words.k = wording::kind::firehose;
        p.words.request_id = lookup(firehose_http::request_id_header);
    } else if (rm.r == route::otlp) {
        const std::string_view given = lookup("Content-Type");
        const auto encoding = otlp_encoding_of(given);
        if (!encoding)
            return no(outcome::unsupported_media,
                      "unsupported Content-Type '" + std::string(given) +
                          "' (OTLP/HTTP: application/x-protobuf or application/json)");
        p.words.k = wording::kind::otlp;
        p.words.encoding = *encoding;
    }
    if (draining) return no(outcome::draining, "shutting down: retry later");
    if (rm.r == route::webhook) {
        p.hook = live.webhook(rm.source);
        p.source = live.source(rm.source);
        if (!p.hook || !p.source) return no(outcome::not_found, "no such webhook source: " + rm.source);
    }
    if (rm.r == route::otlp) {
        p.otlp = live.otlp;
        if (!p.otlp) return no(outcome::not_found, "OTLP is not enabled here (otlp.enabled: false)");
        p.source = &live.otlp_source;
    }
    if (is_firehose)
        if (auto refused = firehose_http::check_head(lookup, live.access_keys))
            return no(refused->why == firehose_http::refusal::kind::unauthorized ? outcome::unauthorized
                                                                                 : outcome::bad_request,
                      refused->message);
    // A bearer token needs no body: checked before a byte of it is read or reserved, so clients
    // without it cannot take the in-flight budget from those with it.
    if (p.source && p.source->auth.type == config::auth_type::bearer) {
        const auth_outcome verdict = verify_webhook(p.source->auth, lookup, {}, now);
        if (!verdict.ok) return no(outcome::unauthorized, verdict.reason);
        p.authenticated = true;
    } else if (!p.source || p.source->auth.type == config::auth_type::none) {
        p.authenticated = true;
    }
    p.declared = content_length;
    if (p.declared > limits.body_bytes)
        return no(outcome::body_too_large, "request body of " + std::to_string(p.declared) +
                                               " bytes exceeds the limit of " + bytes(limits.body_bytes));
    return p;
}

ingest_answer answer_of(const core::pipeline::delivery_result& result, route r, const wording& words,
                        unsigned version, std::string_view request_id, std::chrono::seconds retry_after) {
    ingest_answer a;
    if (result.refused) {
        // Not admitted: Firehose (and any client) retries 429 and 503 with Retry-After.
        switch (*result.refused) {
        case core::pipeline::admission::queue_full:
            a.refused = refusal{outcome::queue_full, "server busy: retry later"};
            break;
        case core::pipeline::admission::queue_wait:
            a.refused = refusal{outcome::queue_wait,
                                "server busy (queued deliveries wait over limits.queue_wait): retry later"};
            break;
        default:
            a.refused = refusal{outcome::draining, "shutting down: retry later"};
            break;
        }
        return a;
    }
    if (result.failure) {
        switch (result.failure->code) {
        case core::errc::over_budget:
            a.refused = refusal{outcome::over_budget, result.failure->message};
            return a;
        case core::errc::io:
            // The journal refused the write (disk full, I/O error): not counted, retry later.
            a.refused = refusal{outcome::journal_failed, result.failure->message};
            return a;
        case core::errc::internal: {
            // The service failed, not the request: 500, never 400 (the sender may retry it).
            a.internal = true;
            a.ok = make_reply(version, outcome::internal_error, words, "internal error", retry_after);
            return a;
        }
        case core::errc::too_large:
            // OTLP/HTTP: a body over the limit after decompression is 413 (the spec's rule).
            a.decode_error = result.failure->code;
            a.refused = refusal{r == route::otlp ? outcome::body_too_large : outcome::decode_error,
                                result.failure->message};
            return a;
        default:
            a.decode_error = result.failure->code;
            a.refused = refusal{outcome::decode_error, result.failure->message};
            return a;
        }
    }
    if (r == route::firehose) {
        a.ok = make_reply(version, http::status::ok,
                          firehose_body(request_id.empty() ? result.request_id : request_id) + "\n");
    } else if (r == route::otlp) {
        // OTLP: 200 with partial_success when records had no body (clients do not retry it).
        a.ok = make_reply(version, http::status::ok,
                          otlp_success(words.encoding, result.rejected,
                                       result.rejected ? std::to_string(result.rejected) +
                                                             " log records without a body were not counted"
                                                       : std::string()));
        a.ok.content_type = content_type_of(words.encoding);
    } else {
        a.ok =
            make_reply(version, http::status::ok, "{\"accepted\":" + std::to_string(result.events) + "}\n");
    }
    return a;
}

std::string dedupe_key(std::string_view prefix, std::string_view id) {
    if (prefix.size() + id.size() <= 100) return std::string(prefix) + std::string(id);
    return std::string(prefix.substr(0, 64)) + "#" + core::aggregate::template_id(id);
}

ingest_draft draft_delivery(request& req, const route_match& rm, const ingest_plan& plan,
                            std::int64_t now_ms) {
    ingest_draft out;
    const unsigned version = req.version();
    const auto hdr = header_of(req);
    const std::string_view encoding = hdr("Content-Encoding");
    out.gzipped = iequals(encoding, "gzip");
    if (!encoding.empty() && !out.gzipped && !iequals(encoding, "identity")) {
        out.refused = refusal{outcome::unsupported_media, "unsupported Content-Encoding '" +
                                                              std::string(encoding) + "' (gzip or identity)"};
        return out;
    }
    core::pipeline::delivery& d = out.d;
    d.now_ms = now_ms;
    d.body = std::move(req.body());
    if (d.body.capacity() < d.body.size() + core::decode::json_padding)
        d.body.reserve(d.body.size() + core::decode::json_padding);
    switch (rm.r) {
    case route::firehose: {
        d.kind = core::pipeline::delivery_kind::firehose;
        d.source = "firehose";
        d.firehose.body_gzipped = out.gzipped;
        d.firehose.records = core::decode::record_format::cloudwatch_or_text;
        d.text_group = firehose_http::text_group(hdr); // raw text records
        if (const auto id = hdr(firehose_http::request_id_header); !id.empty())
            out.claim = dedupe_key("", id);
        break;
    }
    case route::otlp: {
        d.kind = core::pipeline::delivery_kind::otlp;
        d.source = "otlp";
        auto o = std::make_shared<core::decode::otlp_options>(*plan.otlp);
        o->json = plan.words.encoding == otlp_encoding::json;
        o->gzipped = out.gzipped;
        d.otlp = std::move(o);
        break;
    }
    case route::cloudwatch:
        d.kind = core::pipeline::delivery_kind::cloudwatch;
        d.source = "cloudwatch";
        if (out.gzipped && !core::decode::looks_gzipped(d.body))
            out.refused =
                refusal{outcome::decode_error, "Content-Encoding: gzip, but the body is not gzip data"};
        break;
    default: {
        d.kind = core::pipeline::delivery_kind::webhook;
        d.source = "webhook:" + rm.source;
        // Senders' handshakes (after auth): answered, counted as control messages, not events.
        if (iequals(hdr("X-GitHub-Event"), "ping")) {
            out.handshake = http_stats::handshake::github_ping;
            out.answered =
                make_reply(version, http::status::ok, std::string("{\"accepted\":0,\"ping\":true}\n"));
            return out;
        }
        if (!out.gzipped) {
            if (auto challenge = core::decode::slack_challenge(d.body)) {
                out.handshake = http_stats::handshake::slack_url_verification;
                std::string body = "{\"challenge\":";
                core::aggregate::append_json_string(body, *challenge);
                out.answered = make_reply(version, http::status::ok, body + "}\n");
                return out;
            }
        }
        // A redelivery (the same delivery id: GitHub's X-GitHub-Delivery, Standard Webhooks'
        // webhook-id, or the source's delivery_id_header) is answered 200 and not counted again.
        if (const auto id = delivery_id_of(req, plan); !id.empty())
            out.claim = dedupe_key("webhook:" + rm.source + "\n", id);
        const std::string_view ctype = hdr("Content-Type");
        const bool text = ctype.size() >= 10 && iequals(ctype.substr(0, 10), "text/plain");
        if (text || out.gzipped) {
            auto o = std::make_shared<core::decode::webhook_options>(*plan.hook);
            o->text = text;
            o->gzipped = out.gzipped;
            d.webhook = std::move(o);
        } else {
            d.webhook = plan.hook;
        }
        break;
    }
    }
    return out;
}

std::optional<claimed> claimed_answer(dedupe_cache::state state, route r, std::string_view request_id,
                                      unsigned version) {
    const bool firehose = r == route::firehose;
    switch (state) {
    case dedupe_cache::state::fresh:
        return std::nullopt;
    case dedupe_cache::state::acknowledged:
        return claimed{std::nullopt,
                       make_reply(version, http::status::ok,
                                  firehose ? firehose_body(request_id) + "\n"
                                           : std::string("{\"accepted\":0,\"duplicate\":true}\n"))};
    case dedupe_cache::state::in_flight:
        return claimed{
            refusal{outcome::request_in_flight, firehose ? "this request id is being processed: retry later"
                                                         : "this delivery is being processed: retry later"},
            {}};
    }
    return std::nullopt;
}

std::string_view delivery_id_of(const request& req, const ingest_plan& plan) {
    const std::string_view header =
        plan.source ? config::delivery_id_header(*plan.source) : std::string_view{};
    if (header.empty()) return {};
    return field_value(req, header);
}

bool may_count_inline(bool firehose, std::size_t body_bytes, bool gzipped, bool journal) {
    return body_bytes <= inline_limit && !gzipped && !firehose && !journal;
}

bool counts_inline(const core::pipeline::delivery& d, bool gzipped, bool journal) {
    return may_count_inline(d.kind == core::pipeline::delivery_kind::firehose, d.body.size(), gzipped,
                            journal);
}

} // namespace faultline::server::detail
