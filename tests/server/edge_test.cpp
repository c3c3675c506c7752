// Hostile requests against the real session code over beast::test::stream (no sockets): what
// used to end the process or escape a limit (issue 10) is answered, counted, and leaves the
// server serving, its in-flight budget back at 0.
#include "../support/helpers.hpp"
#include "session_support.hpp"

#include "faultline/config/config.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace {

using faultline::server::detail::server;

faultline::config::config edge_config() {
    auto c = faultline::config::default_config();
    c.state_dir = "";
    c.firehose.access_keys.clear();
    c.workers = 1;
    c.io_threads = 1;
    return c;
}

struct edge_server {
    explicit edge_server(faultline::config::config c = edge_config(),
                         faultline::server::reload_function reloader = {})
        : cfg(std::move(c))
        , srv(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), std::move(reloader)) {}

    /// One connection fed `input` (then half-closed); what the client received. The helper
    /// also checks that nothing escaped, the session unregistered and the budget is back to 0.
    std::string exchange(std::string_view input, std::size_t read_size = 65536) {
        return faultline::test::run_connection(srv, input, read_size, 1'000'000).written;
    }
    std::uint64_t rejected(faultline::server::reject_reason r) {
        return srv.svc().stats(0).rejected(static_cast<std::size_t>(r));
    }

    faultline::config::config cfg;
    server srv;
};

int status_of(std::string_view wire) {
    REQUIRE(wire.size() >= 12);
    REQUIRE(wire.starts_with("HTTP/1."));
    return std::stoi(std::string(wire.substr(9, 3)));
}

std::string chunked_head(std::string_view path) {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
}

const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

} // namespace

TEST_CASE("edge: a trailer field too large for the parser is 431, not the end of the process") {
    edge_server e;
    for (std::size_t n : {65533u, 65534u, 70000u}) {
        CAPTURE(n);
        const std::string input =
            chunked_head("/v1/cloudwatch") + "2\r\n{}\r\n0\r\nX-T: " + std::string(n, 'a') + "\r\n\r\n";
        const std::string wire = e.exchange(input);
        CHECK(status_of(wire) == 431);
        CHECK(wire.find("Connection: close") != std::string::npos);
        CHECK(wire.find("trailer section exceeds the limit of 16384 bytes") != std::string::npos);
    }
    CHECK(status_of(e.exchange(healthz)) == 200); // still serving
}

TEST_CASE("edge: the trailer section as a whole is bounded by the head limit") {
    edge_server e;
    std::string input =
        chunked_head("/v1/webhook/default") + "1B\r\n{\"message\":\"ERROR trailer\"}\r\n0\r\n";
    for (int i = 0; i < 1000; ++i)
        input += "X-F" + std::to_string(i) + ": " + std::string(60, 'b') + "\r\n";
    input += "\r\n";
    CHECK(status_of(e.exchange(input)) == 431);
    // A small trailer is fine, and its fields are not taken as header fields (here a
    // Content-Encoding that would make the plain body fail as gzip).
    const std::string ok =
        chunked_head("/v1/webhook/default") +
        "1B\r\n{\"message\":\"ERROR trailer\"}\r\n0\r\nX-Checksum: 1\r\nContent-Encoding: gzip\r\n\r\n";
    const std::string wire = e.exchange(ok);
    CHECK(status_of(wire) == 200);
    CHECK(wire.find("{\"accepted\":1}") != std::string::npos);
}

TEST_CASE("edge: chunk extensions are bounded (head limit) and count toward the body limit") {
    SUBCASE("one huge extension") {
        edge_server e;
        // 2 MiB of extension to a server with a 16 KiB head limit: refused once the read buffer
        // (head limit + 64 KiB) is full, long before the extension ends.
        const std::string input =
            chunked_head("/v1/cloudwatch") + "2;x=" + std::string(2 << 20, 'e') + "\r\n{}\r\n0\r\n\r\n";
        const std::string wire = e.exchange(input);
        CHECK(status_of(wire) == 400);
        CHECK(wire.find("chunk-size line or trailer section exceeds") != std::string::npos);
        CHECK(e.rejected(faultline::server::reject_reason::malformed_http) == 1);
    }
    SUBCASE("an extension over the head limit but within the buffer") {
        edge_server e;
        const std::string input =
            chunked_head("/v1/cloudwatch") + "2;x=" + std::string(20000, 'e') + "\r\n{}\r\n0\r\n\r\n";
        CHECK(status_of(e.exchange(input)) == 400);
    }
    SUBCASE("chunk-size lines of any length count toward the body limit (leading zeros)") {
        auto c = edge_config();
        c.limits.body_bytes = 4096;
        edge_server e(c);
        std::string input = chunked_head("/v1/webhook/default");
        for (int i = 0; i < 3; ++i)
            input += std::string(2000, '0') + "1\r\n \r\n";
        input += "0\r\n\r\n";
        CHECK(status_of(e.exchange(input)) == 413);
    }
    SUBCASE("small chunks with extensions add up to the body limit") {
        auto c = edge_config();
        c.limits.body_bytes = 4096;
        edge_server e(c);
        std::string input = chunked_head("/v1/webhook/default");
        for (int i = 0; i < 100; ++i)
            input += "1;ext=" + std::string(100, 'v') + "\r\n \r\n";
        input += "0\r\n\r\n";
        const std::string wire = e.exchange(input);
        CHECK(status_of(wire) == 413);
        CHECK(e.rejected(faultline::server::reject_reason::body_too_large) == 1);
    }
}

TEST_CASE("edge: chunked bodies reserve the in-flight budget as they grow") {
    auto c = edge_config();
    c.limits.inflight_bytes = 1 << 20;
    edge_server e(c);
    std::string input = chunked_head("/v1/webhook/default");
    const std::string line = "{\"message\":\"ERROR " + std::string(1000, 'x') + "\"}\n";
    // 3 MiB in 64 KiB chunks: the body cannot grow past the 1 MiB budget.
    std::string chunk;
    while (chunk.size() < 65536)
        chunk += line;
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    for (int i = 0; i < 48; ++i)
        input += size + chunk + "\r\n";
    input += "0\r\n\r\n";
    const std::string wire = e.exchange(input);
    CHECK(status_of(wire) == 503);
    CHECK(wire.find("Retry-After: ") != std::string::npos);
    CHECK(wire.find("Connection: close") != std::string::npos);
    CHECK(e.rejected(faultline::server::reject_reason::inflight_bytes) == 1);
    CHECK(e.srv.svc().pipe().view().totals.events == 0);
    // The same body, announced by Content-Length, is refused before it is read.
    std::string body;
    while (body.size() < (3u << 20))
        body += line;
    const std::string declared =
        "POST /v1/webhook/default HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    const std::string wire2 = e.exchange(declared);
    CHECK(status_of(wire2) == 503);
    CHECK(e.rejected(faultline::server::reject_reason::inflight_bytes) == 2);
    // Within the budget (body, and the JSON parser's memory: about 14 times a webhook body), counted.
    std::string small = chunked_head("/v1/webhook/default");
    std::snprintf(size, sizeof size, "%zx\r\n", line.size());
    for (int i = 0; i < 40; ++i)
        small += size + line + "\r\n";
    small += "0\r\n\r\n";
    CHECK(status_of(e.exchange(small)) == 200);
    CHECK(e.srv.svc().pipe().view().totals.events == 40);
}

TEST_CASE("edge: a head at the largest accepted header_bytes cannot hold a field Beast would throw on") {
    auto c = edge_config();
    c.limits.header_bytes = faultline::config::limits_config::max_header_bytes;
    edge_server e(c);
    for (std::size_t n : {65000u, 65534u, 65535u, 70000u}) {
        CAPTURE(n);
        const std::string input =
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(n, 'h') + "\r\n\r\n";
        const int status = status_of(e.exchange(input));
        CHECK((n <= 65000 ? status == 200 : status == 431));
    }
    CHECK(status_of(e.exchange(healthz)) == 200);
}

TEST_CASE("edge: an exception inside a handler is a 500 on that request; the next one is served") {
    int calls = 0;
    edge_server e(edge_config(), [&calls]() -> faultline::server::reload_input {
        ++calls;
        throw std::runtime_error("injected failure");
    });
    const std::string wire = e.exchange("POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    CHECK(calls == 1);
    CHECK(status_of(wire) == 500);
    CHECK(wire.find("internal error") != std::string::npos);
    CHECK(wire.find("Connection: close") != std::string::npos);
    CHECK(e.srv.svc().stats(0).internal_errors(
              static_cast<std::size_t>(faultline::server::internal_where::session)) == 1);
    CHECK(e.srv.svc().render_metrics().value().find("faultline_internal_errors_total{where=\"session\"} 1") !=
          std::string::npos);
    CHECK(status_of(e.exchange(healthz)) == 200);
}

TEST_CASE("edge: HEAD on a 404 or 405 sends the head only") {
    edge_server e;
    for (const char* path : {"/nope", "/v1/firehose"}) {
        CAPTURE(path);
        const std::string wire = e.exchange("HEAD " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto end = wire.find("\r\n\r\n");
        REQUIRE(end != std::string::npos);
        CHECK(wire.size() == end + 4); // no body after the head
        CHECK(wire.find("Content-Length: 0") == std::string::npos);
    }
}

TEST_CASE("edge: the reply of each outcome comes from one table") {
    using faultline::server::detail::outcome;
    using faultline::server::detail::rule_of;
    namespace http = boost::beast::http;
    CHECK(rule_of(outcome::internal_error).status == http::status::internal_server_error);
    CHECK(rule_of(outcome::decode_error).status == http::status::bad_request);
    CHECK(rule_of(outcome::over_budget).status == http::status::service_unavailable);
    CHECK(rule_of(outcome::over_budget).retry_after);
    CHECK(rule_of(outcome::over_budget).close);
    CHECK(rule_of(outcome::queue_full).status == http::status::too_many_requests);
    CHECK(rule_of(outcome::queue_full).retry_after);
    CHECK(rule_of(outcome::queue_wait).status == http::status::too_many_requests);
    CHECK(rule_of(outcome::queue_wait).retry_after);
    CHECK(rule_of(outcome::queue_wait).reason == faultline::server::reject_reason::queue_wait);
    CHECK(rule_of(outcome::head_too_large).status == http::status::request_header_fields_too_large);
    CHECK(rule_of(outcome::body_too_large).status == http::status::payload_too_large);
    CHECK_FALSE(rule_of(outcome::internal_error).reason.has_value());
}

TEST_CASE("edge: a reload runs off the I/O thread, and the views are rendered there too") {
    // The I/O thread here is the test's own (it runs the io_context): the reloader must run on
    // another one, and its answer still reaches the connection.
    std::thread::id reloaded_on;
    edge_server e(edge_config(), [&reloaded_on]() -> faultline::server::reload_input {
        reloaded_on = std::this_thread::get_id();
        faultline::server::reload_input in;
        in.problems = "config.yaml: workers: must be at most 1024";
        return in;
    });
    const std::string wire = e.exchange("POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    CHECK(status_of(wire) == 400);
    CHECK(wire.find("must be at most 1024") != std::string::npos);
    CHECK(reloaded_on != std::thread::id());
    CHECK(reloaded_on != std::this_thread::get_id());
    // A view rendered off the I/O thread is the same view.
    const std::string metrics = e.exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(status_of(metrics) == 200);
    CHECK(metrics.find("faultline_config_reloads_total{result=\"failure\"} 1") != std::string::npos);
}
