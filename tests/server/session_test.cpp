// The HTTP session driven over beast::test::stream with test::fail_count (no sockets): for every
// read and write of a connection, a run in which that operation (and every later one) fails.
// Whatever fails, the session ends (no hang, no exception), gives back its in-flight bytes and
// its registration, and counts a request either fully or not at all; a request answered 200 was
// counted; and the client's retry after the failure is counted exactly once for Firehose (the
// request id) — the at-least-once contract a webhook sender relies on otherwise.
#include "../support/helpers.hpp"
#include "../support/temp_dir.hpp"
#include "session_support.hpp"

#include "faultline/config/config.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <boost/beast/_experimental/test/stream.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

namespace net = boost::asio;
namespace btest = boost::beast::test;
using faultline::server::detail::server;
using faultline::test::run_connection;

faultline::config::config session_config() {
    auto c = faultline::config::default_config();
    c.state_dir = "";
    c.firehose.access_keys.clear();
    c.workers = 1;
    c.io_threads = 1;
    faultline::config::source_config hook;
    hook.name = "hook";
    c.sources["hook"] = hook;
    faultline::config::source_config signed_hook;
    signed_hook.name = "signed";
    signed_hook.auth.type = faultline::config::auth_type::bearer;
    signed_hook.auth.secrets = {"s3cret-token"};
    c.sources["signed"] = signed_hook;
    return c;
}

/// Status codes of the final responses in `wire`, in order (interim 1xx ones left out).
std::vector<int> statuses(std::string_view wire) {
    std::vector<int> out;
    for (std::size_t at = wire.find("HTTP/1."); at != std::string_view::npos;
         at = wire.find("HTTP/1.", at + 1)) {
        if (at + 12 > wire.size()) continue;
        const int status = std::stoi(std::string(wire.substr(at + 9, 3)));
        if (status >= 200) out.push_back(status);
    }
    return out;
}

std::string request(std::string_view head, std::string_view body) {
    std::string r(head);
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    r += body;
    return r;
}

struct scenario {
    std::string name;
    std::string input;                 ///< one or more requests
    std::vector<std::uint64_t> events; ///< events of each request, in order (0: not an ingest)
    std::size_t read_size;
    bool idempotent; ///< a retry is deduplicated (Firehose request id)
};

/// The failure matrix of one scenario (STYLE.md habit 5, Beast's failMatrix).
void fail_matrix(const scenario& s) {
    CAPTURE(s.name);
    const auto cfg = session_config();
    auto patterns = faultline::core::match::pattern_set::compile(cfg.patterns);
    REQUIRE(patterns.has_value());
    server srv(cfg, *patterns, {});
    // The reference run: nothing fails, every request is answered 200 and counted.
    std::size_t operations = 0;
    const auto ok = run_connection(srv, s.input, s.read_size, 1'000'000, &operations);
    std::uint64_t expected = 0;
    for (auto e : s.events)
        expected += e;
    REQUIRE(statuses(ok.written) == std::vector<int>(s.events.size(), 200));
    REQUIRE(ok.counted == expected);
    REQUIRE(operations > 2);

    for (std::size_t n = 0; n < operations; ++n) {
        CAPTURE(n);
        // A fresh request id per failure point for Firehose, kept for its retry.
        std::string input = s.input;
        const std::string id_header = "X-Amz-Firehose-Request-Id: ";
        if (auto at = input.find(id_header); at != std::string::npos)
            input.insert(at + id_header.size(), "fail" + std::to_string(n) + "-");
        const auto r = run_connection(srv, input, s.read_size, n);
        // Each answered request was 200 (a failure never turns into an error reply here: the
        // failed operation ends the connection) and is counted; the events counted are those
        // of the answered requests plus at most the one whose answer could not be written.
        const auto answered = statuses(r.written);
        std::uint64_t acked = 0;
        for (std::size_t i = 0; i < answered.size(); ++i) {
            CHECK(answered[i] == 200);
            acked += s.events[i];
        }
        const std::uint64_t next = answered.size() < s.events.size() ? s.events[answered.size()] : 0;
        CHECK((r.counted == acked || r.counted == acked + next));
        // The client retries what was not answered, on a new connection.
        std::string retry_input = input;
        const auto retry = run_connection(srv, retry_input, s.read_size, 1'000'000);
        CHECK(statuses(retry.written) == std::vector<int>(s.events.size(), 200));
        if (s.idempotent)
            CHECK(r.counted + retry.counted == expected); // counted once, whatever failed
        else
            CHECK(retry.counted == expected);
    }
    MESSAGE(s.name << ": " << operations << " failure points, each failed then retried");
}

} // namespace

TEST_CASE("session fail matrix: a Firehose delivery is counted exactly once whatever fails") {
    const std::string body = faultline::test::read_data("fixtures/firehose/cwl_via_firehose_request.json");
    fail_matrix({"firehose",
                 request("POST /v1/firehose HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "X-Amz-Firehose-Protocol-Version: 1.0\r\n"
                         "X-Amz-Firehose-Request-Id: ed4acda5-034f-9f42-bba1-f29aea6d7d8f\r\n",
                         body),
                 {105},
                 1460,
                 true});
}

TEST_CASE("session fail matrix: gzip'd CloudWatch, a signed webhook, chunked and 100-continue") {
    const std::string doc = faultline::test::read_data("fixtures/cwl/sshd100_data_message.json");
    const std::string gz = faultline::core::decode::gzip_compress(doc);
    fail_matrix({"cloudwatch gzip",
                 request("POST /v1/cloudwatch HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n", gz),
                 {100},
                 512,
                 false});
    fail_matrix(
        {"signed webhook, NDJSON (decoded on the I/O thread)",
         request("POST /v1/webhook/signed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n",
                 "{\"message\":\"ERROR one\"}\n{\"message\":\"timeout two\"}\n{\"msg\":\"three\"}\n"),
         {3},
         16,
         false});
    fail_matrix({"chunked webhook",
                 "POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "17\r\n{\"message\":\"ERROR one\"}\r\n"
                 "1B\r\n\n{\"message\":\"ERROR second\"}\r\n0\r\n\r\n",
                 {2},
                 9,
                 false});
    fail_matrix({"expect 100-continue (an interim response is one more write)",
                 request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n",
                         "[{\"message\":\"a\"},{\"message\":\"b\"}]"),
                 {2},
                 32,
                 false});
}

TEST_CASE("session fail matrix: pipelined requests on one keep-alive connection") {
    const std::string body = faultline::test::read_data("fixtures/firehose/cwl_via_firehose_request.json");
    // No request id: the whole connection is retried and counted again (at least once).
    std::string input = request("POST /v1/firehose HTTP/1.1\r\nHost: x\r\n", body);
    input += request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\n", "{\"message\":\"ERROR x\"}");
    input += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    input += request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\n", "{\"message\":\"last\"}");
    fail_matrix({"pipelined", input, {105, 1, 0, 1}, 700, false});
}

namespace {

/// Everything a request may count besides events: refusals, decode and internal errors.
std::uint64_t side_counts(server& srv) {
    const auto& stats = srv.svc().stats(0);
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < faultline::server::reject_reason_count; ++i)
        n += stats.rejected(i);
    for (std::size_t i = 0; i < faultline::server::http_stats::decode_kinds; ++i)
        n += stats.decode_errors(i);
    for (std::size_t i = 0; i < faultline::server::internal_where_count; ++i)
        n += stats.internal_errors(i);
    return n;
}

} // namespace

TEST_CASE("session: a whole small request is answered at once as the session answers it") {
    // serve_at_once answers what an idle wait read when it is one whole request with nothing to
    // wait for: the same bytes as the session's answer, the same counts.
    const auto cfg = session_config();
    auto patterns = faultline::core::match::pattern_set::compile(cfg.patterns);
    REQUIRE(patterns.has_value());
    server at_once_srv(cfg, *patterns, {});
    server session_srv(cfg, *patterns, {});
    const faultline::server::detail::peer_name peer(std::string("127.0.0.1:40000"));
    const std::vector<std::string> answered = {
        request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\n", "{\"message\":\"ERROR payment failed\"}"),
        request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                "{\"message\":\"ERROR x\"}"),
        request("POST /v1/webhook/hook HTTP/1.0\r\nHost: x\r\n", "[{\"message\":\"a\"},{\"message\":\"b\"}]"),
        request("POST /v1/webhook/signed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n",
                "{\"message\":\"timeout\"}\n{\"msg\":\"two\"}\n"),
        // Refused by its content, with the body read either way: answered at once too.
        request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\n", "{\"message\":"),
        request("POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\n",
                "{\"message\":\"x\"}"),
    };
    for (const auto& input : answered) {
        CAPTURE(input);
        const std::uint64_t before = at_once_srv.svc().pipe().view().totals.events;
        const auto now = at_once_srv.answer_now(at_once_srv.io(0), input, false, peer);
        REQUIRE(now.has_value());
        const auto session = run_connection(session_srv, input, 65536, 1'000'000);
        CHECK(now->wire == session.written);
        CHECK(at_once_srv.svc().pipe().view().totals.events - before == session.counted);
        CHECK(side_counts(at_once_srv) == side_counts(session_srv));
        CHECK(now->status == statuses(session.written).at(0));
        CHECK(at_once_srv.svc().budget.used() == 0);
    }
    CHECK(at_once_srv.svc().pipe().view().totals.events == 6);
}

TEST_CASE("session: what is not one whole request with nothing to wait for is left to the session") {
    // None, and nothing counted: the session then serves the same bytes (a refusal by the head
    // closes a connection whose body it did not read; views and reloads run off the I/O thread;
    // a delivery id is claimed; a Firehose request goes to the workers).
    auto cfg = session_config();
    faultline::config::source_config ids;
    ids.name = "ids";
    ids.delivery_id_header = "X-Delivery";
    cfg.sources["ids"] = ids;
    auto patterns = faultline::core::match::pattern_set::compile(cfg.patterns);
    REQUIRE(patterns.has_value());
    server srv(cfg, *patterns, {});
    const faultline::server::detail::peer_name peer(std::string("127.0.0.1:40000"));
    const std::string hook = "POST /v1/webhook/hook HTTP/1.1\r\nHost: x\r\n";
    const std::string body = "{\"message\":\"ERROR x\"}";
    const std::string whole = request(hook, body);
    const std::vector<std::pair<std::string, std::string>> left = {
        {"head only", hook},
        {"part of the body", whole.substr(0, whole.size() - 3)},
        {"two pipelined", whole + whole},
        {"the start of a next request", whole + "GET /he"},
        {"chunked", hook + "Transfer-Encoding: chunked\r\n\r\n15\r\n" + body + "\r\n0\r\n\r\n"},
        {"100-continue", request(hook + "Expect: 100-continue\r\n", body)},
        {"malformed head", "POST /v1/webhook/hook HTTP/1.1\r\nHost x\r\n\r\n"},
        {"a view", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"metrics", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"reload", "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
        {"unknown route", request("POST /v1/nothing HTTP/1.1\r\nHost: x\r\n", body)},
        {"wrong token",
         request("POST /v1/webhook/signed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer no\r\n", body)},
        {"a delivery id to claim",
         request("POST /v1/webhook/ids HTTP/1.1\r\nHost: x\r\nX-Delivery: 72d3162e\r\n", body)},
        {"Firehose", request("POST /v1/firehose HTTP/1.1\r\nHost: x\r\nX-Amz-Firehose-Request-Id: r1\r\n",
                             "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[]}")},
    };
    for (const auto& each : left) {
        const std::string& name = each.first;
        const std::string& input = each.second;
        CAPTURE(name);
        CHECK_FALSE(srv.answer_now(srv.io(0), input, false, peer).has_value());
        CHECK(srv.svc().pipe().view().totals.events == 0);
        CHECK(side_counts(srv) == 0);
        CHECK(srv.svc().budget.used() == 0);
        CHECK(srv.svc().dedupe().size() == 0);
    }
    // The session still answers each of them (the whole ones at least once).
    CHECK(statuses(run_connection(srv, whole + whole, 65536, 1'000'000).written) ==
          std::vector<int>{200, 200});

    // With a journal every delivery is committed durably by a worker: the session's way too.
    faultline::test::temp_dir dir;
    auto durable = cfg;
    durable.state_dir = dir.path;
    server journaled(durable, *patterns, {});
    journaled.svc().state().load(); // as run() does: replays, then opens the journal
    REQUIRE(journaled.svc().pipe().journal() != nullptr);
    CHECK_FALSE(journaled.answer_now(journaled.io(0), whole, false, peer).has_value());
    CHECK(journaled.svc().budget.used() == 0);
    CHECK(statuses(run_connection(journaled, whole, 65536, 1'000'000).written) == std::vector<int>{200});
    CHECK(journaled.svc().pipe().view().totals.events == 1);
}
