// POST /v1/logs through the real session code (beast::test::stream, no sockets), and OTLP/HTTP's
// reply rules (server/src/otlp_reply.hpp) checked against libprotobuf's own parser.
#include "../../server/src/otlp_reply.hpp"
#include "../support/helpers.hpp"
#include "session_support.hpp"

#include "faultline/config/config.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <opentelemetry/proto/collector/logs/v1/logs_service.pb.h>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace {

using faultline::server::detail::otlp_encoding;
using faultline::server::detail::server;
namespace otlp = opentelemetry::proto;

faultline::config::config otlp_config() {
    auto c = faultline::config::default_config();
    c.state_dir = "";
    c.workers = 1;
    c.io_threads = 1;
    return c;
}

struct otlp_server {
    explicit otlp_server(faultline::config::config c = otlp_config())
        : cfg(std::move(c))
        , srv(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), {}) {}
    faultline::test::connection_result post(std::string_view content_type, std::string_view body,
                                            std::string_view extra_headers = {}) {
        const std::string wire =
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: " + std::string(content_type) +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) +
            "\r\n" + std::string(body);
        return faultline::test::run_connection(srv, wire, 65536, 1'000'000);
    }
    faultline::config::config cfg;
    server srv;
};

struct answer {
    int status = 0;
    std::string content_type;
    std::string body;
};

answer parse(std::string_view wire) {
    answer a;
    REQUIRE(wire.starts_with("HTTP/1.1 "));
    a.status = std::stoi(std::string(wire.substr(9, 3)));
    const auto ct = wire.find("Content-Type: ");
    REQUIRE(ct != std::string_view::npos);
    a.content_type = std::string(wire.substr(ct + 14, wire.find("\r\n", ct) - ct - 14));
    const auto end = wire.find("\r\n\r\n");
    REQUIRE(end != std::string_view::npos);
    a.body = std::string(wire.substr(end + 4));
    return a;
}

std::string request_of(int records, int bodyless = 0) {
    otlp::collector::logs::v1::ExportLogsServiceRequest req;
    auto* rl = req.add_resource_logs();
    auto* kv = rl->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("api");
    auto* scope = rl->add_scope_logs();
    for (int i = 0; i < records; ++i) {
        auto* r = scope->add_log_records();
        r->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_ERROR);
        r->mutable_body()->set_string_value("upstream " + std::to_string(i) + " refused the connection");
    }
    for (int i = 0; i < bodyless; ++i)
        scope->add_log_records()->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_INFO);
    return req.SerializeAsString();
}

} // namespace

TEST_CASE("otlp reply: content types, Status and ExportLogsServiceResponse as libprotobuf reads them") {
    using namespace faultline::server::detail;
    CHECK(otlp_encoding_of("application/x-protobuf") == otlp_encoding::protobuf);
    CHECK(otlp_encoding_of(" Application/JSON ; charset=utf-8") == otlp_encoding::json);
    CHECK_FALSE(otlp_encoding_of("text/plain").has_value());
    CHECK_FALSE(otlp_encoding_of("application/x-protobuf-but-not").has_value());
    CHECK_FALSE(otlp_encoding_of("").has_value());
    CHECK(otlp_success(otlp_encoding::protobuf, 0, "").empty()); // partial_success unset
    CHECK(otlp_success(otlp_encoding::json, 0, "") == "{}\n");
    otlp::collector::logs::v1::ExportLogsServiceResponse resp;
    REQUIRE(resp.ParseFromString(otlp_success(otlp_encoding::protobuf, 300, "300 without a body")));
    REQUIRE(resp.has_partial_success());
    CHECK(resp.partial_success().rejected_log_records() == 300);
    CHECK(resp.partial_success().error_message() == "300 without a body");
    CHECK(otlp_success(otlp_encoding::json, 2, "x") ==
          "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":\"x\"}}\n");
    // google.rpc.Status {code = 1, message = 2}: the same bytes libprotobuf writes for them.
    const std::string status = otlp_status(otlp_encoding::protobuf, 429, "slow down");
    CHECK(status == std::string("\x08\x08\x12\x09slow down", 13));
    CHECK(otlp_status(otlp_encoding::json, 503, "draining") == "{\"code\":14,\"message\":\"draining\"}\n");
    CHECK(grpc_code_of(400) == 3);
    CHECK(grpc_code_of(401) == 16);
    CHECK(grpc_code_of(500) == 13);
}

TEST_CASE("otlp route: hostile and unsupported requests change nothing") {
    otlp_server s;
    SUBCASE("not protobuf: 400 with a Status in protobuf") {
        auto r = s.post("application/x-protobuf", std::string("\x0a\xff\xff\xff\x0f", 5));
        const answer a = parse(r.written);
        CHECK(a.status == 400);
        CHECK(a.content_type == "application/x-protobuf");
        CHECK(a.body.starts_with(std::string("\x08\x03\x12", 3)));
        CHECK(r.counted == 0u);
    }
    SUBCASE("not a request: 400 with a Status in JSON") {
        auto r = s.post("application/json", R"({"resourceLogs":"no"})");
        const answer a = parse(r.written);
        CHECK(a.status == 400);
        CHECK(a.content_type == "application/json");
        CHECK(a.body.find("\"code\":3") != std::string::npos);
        CHECK(r.counted == 0u);
    }
    SUBCASE("another Content-Type: 415, before the body is read") {
        auto r = s.post("text/plain", "ERROR x");
        CHECK(parse(r.written).status == 415);
        CHECK(r.counted == 0u);
    }
    SUBCASE("an unsupported Content-Encoding: 415 in the request's encoding") {
        auto r = s.post("application/x-protobuf", request_of(3), "Content-Encoding: br\r\n");
        const answer a = parse(r.written);
        CHECK(a.status == 415);
        CHECK(a.content_type == "application/x-protobuf");
        CHECK(r.counted == 0u);
    }
    SUBCASE("GET: 405") {
        auto r = faultline::test::run_connection(s.srv, "GET /v1/logs HTTP/1.1\r\nHost: x\r\n\r\n", 65536,
                                                 1'000'000);
        CHECK(parse(r.written).status == 405);
    }
}

TEST_CASE("otlp route: records are counted; a bodyless one is a partial success") {
    otlp_server s;
    auto r = s.post("application/x-protobuf", request_of(40, 2));
    const answer a = parse(r.written);
    CHECK(a.status == 200);
    CHECK(a.content_type == "application/x-protobuf");
    CHECK(r.counted == 40u);
    otlp::collector::logs::v1::ExportLogsServiceResponse resp;
    REQUIRE(resp.ParseFromString(a.body));
    CHECK(resp.partial_success().rejected_log_records() == 2);
    // gzip'd, everything taken: an empty response.
    auto z = s.post("application/x-protobuf", faultline::core::decode::gzip_compress(request_of(5)),
                    "Content-Encoding: gzip\r\n");
    const answer za = parse(z.written);
    CHECK(za.status == 200);
    CHECK(za.body.empty());
    CHECK(z.counted == 5u);
    const auto view = s.srv.svc().pipe().view();
    CHECK(view.totals.by_source.at("otlp") == 45u);
    REQUIRE(view.totals.by_group.count("api"));
}

TEST_CASE("otlp route: otlp.enabled false is 404; bearer auth is 401 without the token") {
    auto off = otlp_config();
    off.otlp.enabled = false;
    otlp_server disabled(off);
    CHECK(parse(disabled.post("application/x-protobuf", request_of(1)).written).status == 404);
    auto bearer = otlp_config();
    bearer.otlp.auth.type = faultline::config::auth_type::bearer;
    bearer.otlp.auth.secrets = {"t0ken"};
    otlp_server guarded(bearer);
    auto no = guarded.post("application/x-protobuf", request_of(1));
    const answer a = parse(no.written);
    CHECK(a.status == 401);
    CHECK(a.body.starts_with(std::string("\x08\x10", 2))); // UNAUTHENTICATED
    CHECK(no.counted == 0u);
    auto yes = guarded.post("application/x-protobuf", request_of(1), "Authorization: Bearer t0ken\r\n");
    CHECK(parse(yes.written).status == 200);
    CHECK(yes.counted == 1u);
}

TEST_CASE("otlp route: over the decompression limit is 413 (OTLP/HTTP's rule), counted nothing") {
    auto c = otlp_config();
    c.limits.message_bytes = 256;
    c.limits.decompressed_bytes = 4096;
    otlp_server s(c);
    auto r = s.post("application/x-protobuf", faultline::core::decode::gzip_compress(request_of(400)),
                    "Content-Encoding: gzip\r\n");
    const answer a = parse(r.written);
    CHECK(a.status == 413);
    CHECK(a.content_type == "application/x-protobuf");
    CHECK(r.counted == 0u);
}

TEST_CASE("otlp route: a bearer token is checked before the body is read or reserved") {
    auto c = otlp_config();
    c.otlp.auth.type = faultline::config::auth_type::bearer;
    c.otlp.auth.secrets = {"t0ken"};
    otlp_server s(c);
    // A head announcing 1 GiB, and no body: answered 401 at once (nothing waits for the body).
    const std::string head = "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Length: 1073741824\r\n\r\n";
    auto r = faultline::test::run_connection(s.srv, head, 65536, 1'000'000);
    const answer a = parse(r.written);
    CHECK(a.status == 401);
    CHECK(r.written.find("Connection: close") != std::string::npos);
    CHECK(s.srv.svc().stats(0).rejected(
              static_cast<std::size_t>(faultline::server::reject_reason::inflight_bytes)) == 0u);
}
