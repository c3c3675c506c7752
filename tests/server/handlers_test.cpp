// The I/O-free request rules (server/src/handlers.hpp): a request head, or a read's error code, in;
// a route or a refusal out. No socket, no io_context: what the session answers is decided here.
#include "../../server/src/handlers.hpp"
#include "../../server/src/request_reader.hpp"

#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/gzip.hpp"

#include "../support/helpers.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

using namespace faultline::server::detail;
using faultline::server::route;
using faultline::test::contains;
namespace cfg = faultline::config;
namespace http = boost::beast::http;

namespace {

request head(http::verb method, std::string_view target,
             std::initializer_list<std::pair<std::string, std::string>> fields = {}, unsigned version = 11) {
    request r{method, target, version};
    r.set(http::field::host, "faultline");
    for (const auto& [name, value] : fields)
        r.insert(name, value);
    return r;
}

cfg::limits_config limits() {
    cfg::limits_config l;
    l.header_bytes = 16384;
    l.body_bytes = 1 << 20;
    return l;
}

unsigned status_of(const refusal& r) {
    return static_cast<unsigned>(rule_of(r.o).status);
}

const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

} // namespace

TEST_CASE("handlers: a header is looked up by name in any case, the first of its kind, empty when absent") {
    const request r = head(http::verb::post, "/v1/webhook/default",
                           {{"Content-Type", "application/json"},
                            {"x-github-delivery", "first"},
                            {"X-GitHub-Delivery", "second"},
                            {"X-Custom-Id", ""},
                            {"X-Custom-Idx", "longer name"}});
    CHECK(field_value(r, "content-type") == "application/json");
    CHECK(field_value(r, "CONTENT-TYPE") == "application/json");
    CHECK(field_value(r, "X-GitHub-Delivery") == "first"); // as fields[name]: the first one sent
    CHECK(field_value(r, "X-GitHub-Delivery") == std::string_view(r["X-GitHub-Delivery"]));
    CHECK(field_value(r, "Host") == "faultline");
    CHECK(field_value(r, "X-Custom-Id").empty());
    CHECK(field_value(r, "X-Custom-I").empty()); // a prefix of a name is not that name
    CHECK(field_value(r, "X-Missing").empty());
    CHECK(field_value(r, "").empty());
    const auto lookup = header_of(r);
    CHECK(lookup("x-custom-idx") == "longer name");
}

TEST_CASE("handlers: a failed head read is answered for what the client sent, not for a dead connection") {
    const auto l = limits();
    // Hostile heads first.
    for (const auto ec :
         {make_error_code(http::error::header_limit), make_error_code(http::error::buffer_overflow),
          make_error_code(request_error::field_too_large)}) {
        const auto r = head_read_failure(ec, l);
        REQUIRE(r);
        CHECK(status_of(*r) == 431);
        CHECK(rule_of(r->o).close);
        CHECK(contains(r->message, "16384 bytes"));
    }
    const auto bad = head_read_failure(make_error_code(http::error::bad_method), l);
    REQUIRE(bad);
    CHECK(status_of(*bad) == 400);
    CHECK(bad->message.starts_with("malformed request: "));
    const auto slow = head_read_failure(make_error_code(boost::beast::error::timeout), l);
    REQUIRE(slow);
    CHECK(status_of(*slow) == 408);
    CHECK(status_of(*head_read_failure(make_error_code(request_error::internal), l)) == 500);
    // Nobody to answer: the peer closed, or the connection failed.
    CHECK_FALSE(head_read_failure(make_error_code(http::error::end_of_stream), l));
    CHECK_FALSE(head_read_failure(make_error_code(boost::asio::error::eof), l));
    CHECK_FALSE(head_read_failure(make_error_code(boost::asio::error::connection_reset), l));
}

TEST_CASE("handlers: a failed body read names the limit it crossed") {
    const auto l = limits();
    for (const auto ec :
         {make_error_code(http::error::body_limit), make_error_code(request_error::body_too_large)}) {
        const auto r = body_read_failure(ec, l);
        REQUIRE(r);
        CHECK(status_of(*r) == 413);
        CHECK(contains(r->message, "1048576 bytes"));
    }
    const auto budget = body_read_failure(make_error_code(request_error::over_budget), l);
    REQUIRE(budget);
    CHECK(status_of(*budget) == 503);
    CHECK(rule_of(budget->o).retry_after);
    const auto trailer = body_read_failure(make_error_code(request_error::trailer_too_large), l);
    REQUIRE(trailer);
    CHECK(status_of(*trailer) == 431);
    CHECK(contains(trailer->message, "trailer section"));
    const auto ext = body_read_failure(make_error_code(request_error::extension_too_long), l);
    REQUIRE(ext);
    CHECK(status_of(*ext) == 400);
    CHECK(contains(ext->message, "chunk-size line"));
    const auto chunk = body_read_failure(make_error_code(http::error::bad_chunk), l);
    REQUIRE(chunk);
    CHECK(chunk->message.starts_with("malformed request body: "));
    CHECK(status_of(*body_read_failure(make_error_code(boost::beast::error::timeout), l)) == 408);
    // Gone mid-body: nobody to answer.
    CHECK_FALSE(body_read_failure(make_error_code(http::error::partial_message), l));
    CHECK_FALSE(body_read_failure(make_error_code(boost::asio::error::eof), l));
    CHECK_FALSE(body_read_failure(make_error_code(boost::asio::error::broken_pipe), l));
}

TEST_CASE("handlers: routing refuses bad framing, unknown paths and wrong methods") {
    SUBCASE("framing") {
        auto r = head(http::verb::post, "/v1/firehose", {{"Content-Length", "5"}, {"Content-Length", "6"}});
        const auto routed = route_of(r, false);
        REQUIRE(routed.refused);
        CHECK(status_of(*routed.refused) == 400);
        CHECK(routed.refused->message == "conflicting Content-Length headers");
        CHECK(routed.to.rm.r == route::unknown);
    }
    SUBCASE("an unknown path") {
        const auto routed = route_of(head(http::verb::get, "/v1/nothing?x=1"), false);
        REQUIRE(routed.refused);
        CHECK(status_of(*routed.refused) == 404);
        CHECK(routed.refused->message == "no such path: /v1/nothing");
        CHECK(routed.to.rm.r == route::unknown);
    }
    SUBCASE("the admin listener serves the operational routes only") {
        const auto templates = route_of(head(http::verb::get, "/v1/templates"), true);
        REQUIRE(templates.refused);
        CHECK(status_of(*templates.refused) == 404);
        CHECK(templates.to.rm.r == route::unknown);
        const auto ingest = route_of(head(http::verb::post, "/v1/firehose"), true);
        REQUIRE(ingest.refused);
        CHECK(status_of(*ingest.refused) == 404);
        for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
            const auto ok = route_of(head(http::verb::get, path), true);
            CHECK_FALSE(ok.refused);
        }
        CHECK_FALSE(route_of(head(http::verb::post, "/-/reload"), true).refused);
    }
    SUBCASE("a method the route does not take: 405 with Allow, counted under its route") {
        const auto del = route_of(head(http::verb::delete_, "/metrics"), false);
        REQUIRE(del.refused);
        CHECK(status_of(*del.refused) == 405);
        CHECK(del.refused->allow == "GET, HEAD");
        CHECK(del.refused->message == "method DELETE not allowed on /metrics (allowed: GET)");
        CHECK(del.to.rm.r == route::metrics);
        const auto get = route_of(head(http::verb::get, "/v1/firehose"), false);
        REQUIRE(get.refused);
        CHECK(get.refused->allow == "POST");
        CHECK(get.to.rm.r == route::firehose);
    }
    SUBCASE("the path, its query, HEAD as GET") {
        const request r =
            head(http::verb::head, "/v1/templates?limit=5&group=a"); // path and query point into it
        const auto routed = route_of(r, false);
        REQUIRE_FALSE(routed.refused);
        CHECK(routed.to.rm.r == route::templates);
        CHECK(routed.to.path == "/v1/templates");
        CHECK(routed.to.query == "limit=5&group=a");
        CHECK(routed.to.get);
        const auto hook = route_of(head(http::verb::post, "/v1/webhook/github"), false);
        REQUIRE_FALSE(hook.refused);
        CHECK(hook.to.rm.source == "github");
        CHECK_FALSE(hook.to.get);
    }
}

TEST_CASE("handlers: /v1/templates parameters are checked, each named in its refusal") {
    for (const char* bad : {"limit=0", "limit=10001", "limit=12x", "limit=", "limit=-1"}) {
        const auto p = templates_params(bad);
        REQUIRE(std::holds_alternative<refusal>(p));
        CHECK(std::get<refusal>(p).message == "limit must be an integer from 1 to 10000");
    }
    CHECK(std::get<refusal>(templates_params("class=fatal")).message == "class must be error, warn or info");
    CHECK(std::get<refusal>(templates_params("sort=random")).message ==
          "sort must be count, first_seen or last_seen");
    CHECK(std::get<refusal>(templates_params("scope=world")).message == "scope must be local or cluster");
    const auto defaults = std::get<templates_request>(templates_params(""));
    CHECK(defaults.q.limit == 100);
    CHECK(defaults.q.sort == "count");
    CHECK_FALSE(defaults.cluster);
    const auto given = std::get<templates_request>(
        templates_params("limit=10000&group=pay%20ments&class=warn&sort=last_seen&scope=cluster"));
    CHECK(given.q.limit == 10000);
    CHECK(given.q.group == "pay ments");
    CHECK(given.q.cls == "warn");
    CHECK(given.q.sort == "last_seen");
    CHECK(given.cluster);
}

TEST_CASE("handlers: reload is allowed with the token, or without one from loopback only") {
    const auto far = reload_refusal("", "", "10.1.2.3");
    REQUIRE(far);
    CHECK(status_of(*far) == 403);
    CHECK(far->message == "reload is allowed from loopback only");
    for (const char* local : {"127.0.0.1", "::1", "::ffff:127.0.0.1"})
        CHECK_FALSE(reload_refusal("", "", local));
    // With a token, loopback is not enough, and a wrong or malformed one is refused.
    CHECK(reload_refusal("s3cret", "", "127.0.0.1"));
    CHECK(reload_refusal("s3cret", "Bearer s3cre", "127.0.0.1"));
    CHECK(reload_refusal("s3cret", "s3cret", "127.0.0.1"));
    CHECK(reload_refusal("s3cret", "Basic s3cret", "10.1.2.3")->message ==
          "reload needs Authorization: Bearer <reload_token>");
    CHECK_FALSE(reload_refusal("s3cret", "Bearer s3cret", "10.1.2.3"));
}

TEST_CASE("handlers: health and readiness") {
    const reply ok = health_reply(11);
    CHECK(ok.status == 200);
    CHECK(ok.body == "{\"status\":\"ok\"}\n");
    CHECK(ready_reply(11, true, false, std::chrono::seconds(5)).status == 200);
    const reply draining = ready_reply(10, false, true, std::chrono::seconds(7));
    CHECK(draining.status == 503);
    CHECK(draining.retry_after == "7");
    CHECK(draining.body == "{\"status\":\"draining\"}\n");
    CHECK(draining.version == 10);
    CHECK(ready_reply(11, false, false, std::chrono::seconds(5)).body == "{\"status\":\"overloaded\"}\n");
}

TEST_CASE("handlers: an ingest head is refused before a byte of its body is read") {
    faultline::server::service::live_settings live;
    live.access_keys = {"key-1"};
    cfg::source_config github;
    github.name = "github";
    github.auth.type = cfg::auth_type::github;
    github.auth.secrets = {"hook-secret"};
    cfg::source_config ci;
    ci.name = "ci";
    ci.auth.type = cfg::auth_type::bearer;
    ci.auth.secrets = {"tok"};
    cfg::source_config open;
    open.name = "open";
    for (const auto& s : {github, ci, open}) {
        live.sources.emplace(s.name, s);
        live.webhooks.emplace(s.name, std::make_shared<faultline::core::decode::webhook_options>());
    }
    const auto l = limits();
    const route_match firehose{route::firehose, "POST", {}};
    const route_match otlp{route::otlp, "POST", {}};
    auto hook = [](std::string name) { return route_match{route::webhook, "POST", std::move(name)}; };

    SUBCASE("Firehose: a wrong access key, worded as Firehose words it, with the request id") {
        const auto p = plan_ingest(
            head(http::verb::post, "/v1/firehose",
                 {{"X-Amz-Firehose-Request-Id", "rid-1"}, {"X-Amz-Firehose-Access-Key", "key-2"}}),
            firehose, live, l, false, 100, now);
        REQUIRE(p.refused);
        CHECK(status_of(*p.refused) == 401);
        CHECK(p.words.k == wording::kind::firehose);
        CHECK(p.words.request_id == "rid-1");
        CHECK(contains(p.words.body(401, p.refused->message), "\"requestId\":\"rid-1\""));
    }
    SUBCASE("Firehose: the right key passes, the declared length is kept") {
        const auto p = plan_ingest(
            head(http::verb::post, "/v1/firehose",
                 {{"X-Amz-Firehose-Request-Id", "rid-2"}, {"X-Amz-Firehose-Access-Key", "key-1"}}),
            firehose, live, l, false, 4096, now);
        CHECK_FALSE(p.refused);
        CHECK(p.authenticated);
        CHECK(p.declared == 4096);
    }
    SUBCASE("a declared body over the limit: 413 before it is read") {
        const auto p = plan_ingest(head(http::verb::post, "/v1/webhook/open"), hook("open"), live, l, false,
                                   (1u << 20) + 1, now);
        REQUIRE(p.refused);
        CHECK(status_of(*p.refused) == 413);
        CHECK(p.refused->message == "request body of 1048577 bytes exceeds the limit of 1048576 bytes");
    }
    SUBCASE("draining: 503, worded as the route words it") {
        const auto p =
            plan_ingest(head(http::verb::post, "/v1/firehose", {{"X-Amz-Firehose-Request-Id", "rid-3"}}),
                        firehose, live, l, true, 10, now);
        REQUIRE(p.refused);
        CHECK(p.refused->o == outcome::draining);
        CHECK(p.words.request_id == "rid-3");
    }
    SUBCASE("an unknown webhook source") {
        const auto p =
            plan_ingest(head(http::verb::post, "/v1/webhook/nope"), hook("nope"), live, l, false, 10, now);
        REQUIRE(p.refused);
        CHECK(status_of(*p.refused) == 404);
        CHECK(p.refused->message == "no such webhook source: nope");
    }
    SUBCASE("a bearer source: a missing or wrong token is refused from the head") {
        const auto none =
            plan_ingest(head(http::verb::post, "/v1/webhook/ci"), hook("ci"), live, l, false, 10, now);
        REQUIRE(none.refused);
        CHECK(status_of(*none.refused) == 401);
        const auto wrong =
            plan_ingest(head(http::verb::post, "/v1/webhook/ci", {{"Authorization", "Bearer tok2"}}),
                        hook("ci"), live, l, false, 10, now);
        REQUIRE(wrong.refused);
        const auto right =
            plan_ingest(head(http::verb::post, "/v1/webhook/ci", {{"Authorization", "Bearer tok"}}),
                        hook("ci"), live, l, false, 10, now);
        CHECK_FALSE(right.refused);
        CHECK(right.authenticated);
        CHECK(right.hook);
    }
    SUBCASE("a signed source is checked after its body: not authenticated by the head") {
        const auto p = plan_ingest(head(http::verb::post, "/v1/webhook/github"), hook("github"), live, l,
                                   false, 10, now);
        CHECK_FALSE(p.refused);
        CHECK_FALSE(p.authenticated);
        REQUIRE(p.source);
        CHECK(p.source->name == "github");
    }
    SUBCASE("OTLP: an unsupported Content-Type is 415 in JSON; disabled is 404 in OTLP's wording") {
        const auto bad = plan_ingest(head(http::verb::post, "/v1/logs", {{"Content-Type", "text/plain"}}),
                                     otlp, live, l, false, 10, now);
        REQUIRE(bad.refused);
        CHECK(status_of(*bad.refused) == 415);
        CHECK(bad.words.k == wording::kind::json);
        const auto off =
            plan_ingest(head(http::verb::post, "/v1/logs", {{"Content-Type", "application/x-protobuf"}}),
                        otlp, live, l, false, 10, now);
        REQUIRE(off.refused);
        CHECK(status_of(*off.refused) == 404);
        CHECK(off.words.k == wording::kind::otlp);
        CHECK(off.words.encoding == otlp_encoding::protobuf);
        live.otlp = std::make_shared<faultline::core::decode::otlp_options>();
        const auto on =
            plan_ingest(head(http::verb::post, "/v1/logs", {{"Content-Type", "application/json"}}), otlp,
                        live, l, false, 10, now);
        CHECK_FALSE(on.refused);
        CHECK(on.otlp);
        CHECK(on.authenticated);
    }
}

TEST_CASE("handlers: a delivery's verdict becomes its answer") {
    namespace pl = faultline::core::pipeline;
    const auto retry = std::chrono::seconds(5);
    wording fh;
    fh.k = wording::kind::firehose;
    fh.request_id = "rid-9";
    SUBCASE("not admitted: 429 or 503, with Retry-After, nothing counted") {
        pl::delivery_result full;
        full.refused = pl::admission::queue_full;
        const auto a = answer_of(full, route::firehose, fh, 11, "rid-9", retry);
        REQUIRE(a.refused);
        CHECK(status_of(*a.refused) == 429);
        CHECK(rule_of(a.refused->o).retry_after);
        CHECK_FALSE(a.decode_error);
        pl::delivery_result waited;
        waited.refused = pl::admission::queue_wait;
        CHECK(contains(answer_of(waited, route::webhook, {}, 11, "", retry).refused->message,
                       "limits.queue_wait"));
        pl::delivery_result stopped;
        stopped.refused = pl::admission::stopped;
        CHECK(status_of(*answer_of(stopped, route::webhook, {}, 11, "", retry).refused) == 503);
    }
    SUBCASE("a body that does not decode: 400 naming why, counted as a decode error") {
        pl::delivery_result bad;
        bad.failure = faultline::core::error{faultline::core::errc::base64, "records[0].data: not base64"};
        const auto a = answer_of(bad, route::firehose, fh, 11, "rid-9", retry);
        REQUIRE(a.refused);
        CHECK(status_of(*a.refused) == 400);
        CHECK(a.refused->message == "records[0].data: not base64");
        REQUIRE(a.decode_error);
        CHECK(*a.decode_error == faultline::core::errc::base64);
    }
    SUBCASE("too large after decompression: 413 for OTLP (its spec), 400 elsewhere; both counted") {
        pl::delivery_result big;
        big.failure = faultline::core::error{faultline::core::errc::too_large, "decompressed over 256 MiB"};
        const auto otlp = answer_of(big, route::otlp, {}, 11, "", retry);
        CHECK(status_of(*otlp.refused) == 413);
        CHECK(otlp.decode_error);
        const auto cw = answer_of(big, route::cloudwatch, {}, 11, "", retry);
        CHECK(status_of(*cw.refused) == 400);
        CHECK(cw.decode_error);
    }
    SUBCASE("the budget spent while decompressing: 503, not a decode error") {
        pl::delivery_result spent;
        spent.failure =
            faultline::core::error{faultline::core::errc::over_budget, "too many bytes in flight"};
        const auto a = answer_of(spent, route::webhook, {}, 11, "", retry);
        CHECK(status_of(*a.refused) == 503);
        CHECK_FALSE(a.decode_error);
    }
    SUBCASE("the journal could not be written: 503 with Retry-After (not counted: the sender retries), "
            "neither a decode error nor an internal one") {
        pl::delivery_result unwritten;
        unwritten.failure =
            faultline::core::error{faultline::core::errc::io, "the journal could not be written"};
        const auto a = answer_of(unwritten, route::firehose, fh, 11, "rid-9", retry);
        REQUIRE(a.refused);
        CHECK(status_of(*a.refused) == 503);
        CHECK(rule_of(a.refused->o).retry_after);
        CHECK_FALSE(a.decode_error);
        CHECK_FALSE(a.internal);
    }
    SUBCASE("the service failed: 500 in the route's wording, never 400") {
        pl::delivery_result failed;
        failed.failure = faultline::core::error{faultline::core::errc::internal, "std::bad_alloc"};
        const auto a = answer_of(failed, route::firehose, fh, 11, "rid-9", retry);
        CHECK_FALSE(a.refused);
        CHECK(a.internal);
        CHECK(a.ok.status == 500);
        CHECK(a.ok.close);
        CHECK(contains(a.ok.body, "\"requestId\":\"rid-9\""));
        CHECK(contains(a.ok.body, "internal error"));
        CHECK_FALSE(contains(a.ok.body, "bad_alloc"));
    }
    SUBCASE("counted") {
        pl::delivery_result ok;
        ok.events = 600;
        ok.request_id = "from-body";
        const auto hose = answer_of(ok, route::firehose, fh, 11, "", retry);
        CHECK(hose.ok.status == 200);
        CHECK(contains(hose.ok.body, "\"requestId\":\"from-body\""));
        CHECK(contains(answer_of(ok, route::firehose, fh, 11, "from-head", retry).ok.body,
                       "\"requestId\":\"from-head\""));
        CHECK(answer_of(ok, route::webhook, {}, 11, "", retry).ok.body == "{\"accepted\":600}\n");
        wording otlp;
        otlp.k = wording::kind::otlp;
        ok.rejected = 2;
        const auto partial = answer_of(ok, route::otlp, otlp, 11, "", retry);
        CHECK(partial.ok.status == 200);
        CHECK(partial.ok.content_type == "application/json");
        CHECK(contains(partial.ok.body, "2 log records without a body were not counted"));
    }
}

TEST_CASE(
    "handlers: an ingest request becomes its delivery, its id to claim, or an answer without counting") {
    using faultline::core::pipeline::delivery_kind;
    faultline::server::service::live_settings live;
    live.otlp = std::make_shared<faultline::core::decode::otlp_options>();
    cfg::source_config github;
    github.name = "github";
    github.auth.type = cfg::auth_type::github;
    github.auth.secrets = {"hook-secret"};
    cfg::source_config ci;
    ci.name = "ci";
    ci.delivery_id_header = "X-Delivery";
    cfg::source_config open;
    open.name = "open";
    for (const auto& s : {github, ci, open}) {
        live.sources.emplace(s.name, s);
        live.webhooks.emplace(s.name, std::make_shared<faultline::core::decode::webhook_options>());
    }
    const auto l = limits();
    const route_match firehose{route::firehose, "POST", {}};
    const route_match cloudwatch{route::cloudwatch, "POST", {}};
    const route_match otlp{route::otlp, "POST", {}};
    auto hook = [](std::string name) { return route_match{route::webhook, "POST", std::move(name)}; };
    // A head planned (as the session does first), then its body.
    auto draft = [&](request req, const route_match& rm, std::string body) {
        req.body() = std::move(body);
        const ingest_plan p = plan_ingest(req, rm, live, l, false, req.body().size(), now);
        REQUIRE_FALSE(p.refused);
        return draft_delivery(req, rm, p, 1'800'000'000'123);
    };

    SUBCASE("hostile: an unknown Content-Encoding is 415, and the body is left where it was") {
        request req = head(http::verb::post, "/v1/webhook/open", {{"Content-Encoding", "br"}});
        req.body() = "{\"message\":\"x\"}";
        const ingest_plan p = plan_ingest(req, hook("open"), live, l, false, req.body().size(), now);
        const auto d = draft_delivery(req, hook("open"), p, 1);
        REQUIRE(d.refused);
        CHECK(status_of(*d.refused) == 415);
        CHECK(d.refused->message == "unsupported Content-Encoding 'br' (gzip or identity)");
        CHECK(req.body() == "{\"message\":\"x\"}");
    }
    SUBCASE("hostile: CloudWatch declared gzip but not gzip data is a decode error (400)") {
        const auto d = draft(head(http::verb::post, "/v1/cloudwatch", {{"Content-Encoding", "gzip"}}),
                             cloudwatch, "{\"messageType\":\"DATA_MESSAGE\"}");
        REQUIRE(d.refused);
        CHECK(d.refused->o == outcome::decode_error);
        CHECK(status_of(*d.refused) == 400);
    }
    SUBCASE("hostile: a delivery id longer than 100 bytes is claimed by its hash, bounded") {
        const std::string id(5000, 'a');
        const auto d =
            draft(head(http::verb::post, "/v1/webhook/ci", {{"X-Delivery", id}}), hook("ci"), "{}");
        CHECK(d.claim.size() <= 100);
        CHECK(d.claim.starts_with("webhook:ci\n#"));
        CHECK(d.claim == dedupe_key("webhook:ci\n", id));
        CHECK(dedupe_key("webhook:ci\n", id + "b") != d.claim);
    }
    SUBCASE("Firehose: the request id is the claim; raw text records get the head's group") {
        const auto d = draft(head(http::verb::post, "/v1/firehose",
                                  {{"X-Amz-Firehose-Request-Id", "rid-9"},
                                   {"X-Amz-Firehose-Source-Arn",
                                    "arn:aws:firehose:eu-west-1:123456789012:deliverystream/app-logs"}}),
                             firehose, "{\"requestId\":\"rid-9\",\"records\":[]}");
        CHECK_FALSE(d.refused);
        CHECK_FALSE(d.handshake);
        CHECK(d.claim == "rid-9");
        CHECK(d.d.kind == delivery_kind::firehose);
        CHECK(d.d.source == "firehose");
        CHECK(d.d.now_ms == 1'800'000'000'123);
        CHECK(d.d.text_group == "app-logs");
        CHECK(d.d.body == "{\"requestId\":\"rid-9\",\"records\":[]}");
        CHECK(d.d.body.capacity() >= d.d.body.size() + faultline::core::decode::json_padding);
        CHECK_FALSE(counts_inline(d.d, d.gzipped, false)); // Firehose always goes to the workers
    }
    SUBCASE("Firehose without a request id: nothing to claim") {
        const auto d = draft(head(http::verb::post, "/v1/firehose"), firehose, "{}");
        CHECK(d.claim.empty());
    }
    SUBCASE("webhooks: GitHub's ping and Slack's challenge are answered, not counted") {
        const auto ping = draft(head(http::verb::post, "/v1/webhook/open", {{"X-GitHub-Event", "ping"}}),
                                hook("open"), "{\"zen\":\"x\"}");
        REQUIRE(ping.handshake);
        CHECK(*ping.handshake == faultline::server::http_stats::handshake::github_ping);
        CHECK(ping.answered.status == 200);
        CHECK(ping.answered.body == "{\"accepted\":0,\"ping\":true}\n");
        const auto slack = draft(head(http::verb::post, "/v1/webhook/open"), hook("open"),
                                 "{\"type\":\"url_verification\",\"challenge\":\"c\\\"1\"}");
        REQUIRE(slack.handshake);
        CHECK(*slack.handshake == faultline::server::http_stats::handshake::slack_url_verification);
        CHECK(slack.answered.body == "{\"challenge\":\"c\\\"1\"}\n");
    }
    SUBCASE("webhooks: the delivery id header (configured, GitHub's by default for a GitHub source)") {
        const auto gh = draft(head(http::verb::post, "/v1/webhook/github", {{"X-GitHub-Delivery", "g-1"}}),
                              hook("github"), "{\"message\":\"boom\"}");
        CHECK(gh.claim == "webhook:github\ng-1");
        CHECK(gh.d.kind == delivery_kind::webhook);
        CHECK(gh.d.source == "webhook:github");
        const auto mine = draft(head(http::verb::post, "/v1/webhook/ci", {{"X-Delivery", "d-1"}}), hook("ci"),
                                "{\"message\":\"boom\"}");
        CHECK(mine.claim == "webhook:ci\nd-1");
        const auto none =
            draft(head(http::verb::post, "/v1/webhook/open"), hook("open"), "{\"message\":\"boom\"}");
        CHECK(none.claim.empty());
        CHECK(none.d.webhook == live.webhooks.at("open")); // the source's options, not a copy
        CHECK(counts_inline(none.d, none.gzipped, false));
        CHECK_FALSE(counts_inline(none.d, none.gzipped, true)); // with a journal: a worker, durably
    }
    SUBCASE("webhooks: text/plain and gzip get their own options") {
        const auto text =
            draft(head(http::verb::post, "/v1/webhook/open", {{"Content-Type", "text/plain; charset=utf-8"}}),
                  hook("open"), "line one\nline two\n");
        REQUIRE(text.d.webhook);
        CHECK(text.d.webhook->text);
        CHECK_FALSE(text.d.webhook->gzipped);
        CHECK(text.d.webhook != live.webhooks.at("open"));
        const auto gz = draft(head(http::verb::post, "/v1/webhook/open", {{"Content-Encoding", "gzip"}}),
                              hook("open"), faultline::core::decode::gzip_compress("{\"message\":\"x\"}"));
        REQUIRE(gz.d.webhook);
        CHECK(gz.d.webhook->gzipped);
        CHECK_FALSE(counts_inline(gz.d, gz.gzipped, false));
    }
    SUBCASE("OTLP: the encoding and gzip go with its options") {
        const auto d = draft(head(http::verb::post, "/v1/logs",
                                  {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "gzip"}}),
                             otlp, faultline::core::decode::gzip_compress(""));
        REQUIRE(d.d.otlp);
        CHECK(d.d.kind == delivery_kind::otlp);
        CHECK(d.d.source == "otlp");
        CHECK_FALSE(d.d.otlp->json);
        CHECK(d.d.otlp->gzipped);
    }
    SUBCASE("a claimed id: counted before is 200 again, still being counted is refused, fresh is counted") {
        using state = faultline::server::dedupe_cache::state;
        CHECK_FALSE(claimed_answer(state::fresh, route::firehose, "rid-1", 11));
        const auto again = claimed_answer(state::acknowledged, route::firehose, "rid-1", 11);
        REQUIRE(again);
        CHECK_FALSE(again->refused);
        CHECK(again->ok.status == 200);
        CHECK(contains(again->ok.body, "\"requestId\":\"rid-1\""));
        const auto dup = claimed_answer(state::acknowledged, route::webhook, {}, 11);
        REQUIRE(dup);
        CHECK(dup->ok.body == "{\"accepted\":0,\"duplicate\":true}\n");
        const auto busy = claimed_answer(state::in_flight, route::firehose, "rid-1", 11);
        REQUIRE(busy);
        REQUIRE(busy->refused);
        CHECK(busy->refused->o == outcome::request_in_flight);
        CHECK(rule_of(busy->refused->o).retry_after);
        CHECK(contains(busy->refused->message, "request id"));
        const auto busy_hook = claimed_answer(state::in_flight, route::webhook, {}, 11);
        REQUIRE(busy_hook);
        REQUIRE(busy_hook->refused);
        CHECK(busy_hook->refused->message == "this delivery is being processed: retry later");
    }
}
