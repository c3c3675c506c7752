#include "faultline/core/decode/decoder.hpp"

#include "faultline/core/decode/base64.hpp"
#include "faultline/core/decode/gzip.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using faultline::core::errc;
using faultline::core::decode::base64_encode;
using faultline::core::decode::decode_limits;
using faultline::core::decode::decoder;
using faultline::core::decode::firehose_options;
using faultline::core::decode::gzip_compress;
using faultline::core::decode::record_format;
using faultline::test::contains;
using faultline::test::control_doc;
using faultline::test::cwl_doc;
using faultline::test::error_text;
using faultline::test::firehose_body;
using faultline::test::padded;
using faultline::test::read_data;
using faultline::test::record_of;
using faultline::test::recording_sink;

namespace {

using strings = std::vector<std::string>;

struct cw_result {
    bool ok = false;
    bool is_cloudwatch = false;
    faultline::core::error err{};
    recording_sink sink;
};

cw_result run_cloudwatch(std::string_view data, record_format format = record_format::cloudwatch) {
    decoder d;
    cw_result out;
    const padded p(data);
    auto r = d.cloudwatch(p, out.sink, format);
    out.ok = r.has_value();
    if (r)
        out.is_cloudwatch = *r;
    else
        out.err = r.error();
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// decoder::cloudwatch on the fixtures

TEST_CASE("decoder::cloudwatch: otel_valid_cloudwatch_log.json") {
    auto r = run_cloudwatch(read_data("fixtures/cwl/otel_valid_cloudwatch_log.json"));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(r.is_cloudwatch);
    CHECK(strings{"CloudTrail"} == r.sink.documents);
    CHECK(std::size_t{0} == r.sink.control_messages);
    const std::string msg = R"({"eventVersion":"1.03","userIdentity":{"type":"Root"})";
    CHECK(strings{msg, msg, msg} == r.sink.messages());
    for (const auto& e : r.sink.events)
        CHECK("CloudTrail" == e.group);
}

TEST_CASE("decoder::cloudwatch: otel_multiple_json_objects.json holds two concatenated documents") {
    auto r = run_cloudwatch(read_data("fixtures/cwl/otel_multiple_json_objects.json"));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"/my/first/log/group", "/my/second/log/group"} == r.sink.documents);
    REQUIRE(std::size_t{2} == r.sink.events.size());
    CHECK(recording_sink::event{"/my/first/log/group", "some text"} == r.sink.events[0]);
    CHECK(recording_sink::event{"/my/second/log/group", "some other text"} == r.sink.events[1]);
}

TEST_CASE("decoder::cloudwatch: control message fixtures count as control messages, no events") {
    for (const char* f : {"fixtures/cwl/otel_valid_cloudwatch_log_control.json",
                          "fixtures/cwl/otel_cwlog_only_control.ndjson"}) {
        CAPTURE(f);
        auto r = run_cloudwatch(read_data(f));
        REQUIRE_MESSAGE(r.ok, r.err.message);
        CHECK(r.is_cloudwatch);
        CHECK(std::size_t{1} == r.sink.control_messages);
        CHECK(r.sink.documents.empty());
        CHECK(r.sink.events.empty());
    }
}

TEST_CASE("decoder::cloudwatch: otel_cwlog_multiple_records.ndjson, newline separated, no final newline") {
    const std::string data = read_data("fixtures/cwl/otel_cwlog_multiple_records.ndjson");
    REQUIRE(data.back() != '\n');
    auto r = run_cloudwatch(data);
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"test", "test"} == r.sink.documents);
    CHECK(strings{"Hello world, here is our first log message!",
                  "Hello world, here is our second log message!"} == r.sink.messages());
}

TEST_CASE("decoder::cloudwatch: sshd100_data_message.json has 100 events") {
    auto r = run_cloudwatch(read_data("fixtures/cwl/sshd100_data_message.json"));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"/ec2/sshd"} == r.sink.documents);
    REQUIRE(std::size_t{100} == r.sink.events.size());
    CHECK(contains(r.sink.events[0].message, "Received disconnect from 198.51.100.3 port 55875"));
    CHECK("/ec2/sshd" == r.sink.events[99].group);
}

TEST_CASE("decoder::cloudwatch: unknown fields are ignored (extractedFields, policyLevel)") {
    auto r = run_cloudwatch(read_data("fixtures/cwl/otel_extracted_fields_both.json"));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"test-log-group"} == r.sink.documents);
    CHECK(strings{"Hello world, here is our first log message!"} == r.sink.messages());

    const std::string doc =
        R"({"policyLevel":"ACCOUNT_LEVEL_POLICY","logEvents":[{"extra":{"a":[1,2,{"b":null}]},"message":"m1",)"
        R"("id":"1"},{"message":"m2","timestamp":2,"extractedFields":{"@aws.account":"1"}}],"owner":"1",)"
        R"("logGroup":"g","nested":{"messageType":"CONTROL_MESSAGE"},"messageType":"DATA_MESSAGE"})";
    auto r2 = run_cloudwatch(doc);
    REQUIRE_MESSAGE(r2.ok, r2.err.message);
    CHECK(strings{"g"} == r2.sink.documents);
    CHECK(strings{"m1", "m2"} == r2.sink.messages());
    CHECK(std::size_t{0} == r2.sink.control_messages);
}

TEST_CASE("decoder::cloudwatch: concatenated documents with and without whitespace between them") {
    const std::string a = cwl_doc("ga", {"one"}), b = cwl_doc("gb", {"two", "three"});
    for (const std::string& sep :
         {std::string(), std::string("\n\n "), std::string("\r\n"), std::string(" \t")}) {
        CAPTURE(sep);
        auto r = run_cloudwatch(a + sep + b + sep + control_doc + sep + a);
        REQUIRE_MESSAGE(r.ok, r.err.message);
        CHECK(strings{"ga", "gb", "ga"} == r.sink.documents);
        CHECK(strings{"one", "two", "three", "one"} == r.sink.messages());
        CHECK(std::size_t{1} == r.sink.control_messages);
    }
    // Leading and trailing whitespace around a single document.
    auto r = run_cloudwatch("\n  " + a + "\n\n");
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"one"} == r.sink.messages());
}

TEST_CASE("decoder::cloudwatch: other messageTypes and documents without one are ignored") {
    const std::string other =
        R"({"messageType":"SOMETHING_ELSE","logGroup":"x","logEvents":[{"message":"no"}]})";
    const std::string none = R"({"logGroup":"x","logEvents":[{"message":"no"}]})";
    auto r = run_cloudwatch(other + none + cwl_doc("g", {"yes"}));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"g"} == r.sink.documents);
    CHECK(strings{"yes"} == r.sink.messages());
}

TEST_CASE("decoder::cloudwatch: a document with no events is still a document") {
    auto r = run_cloudwatch(cwl_doc("empty", {}));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"empty"} == r.sink.documents);
    CHECK(r.sink.events.empty());
}

TEST_CASE("decoder::cloudwatch: JSON string escapes are decoded") {
    const std::string escaped =
        R"(a\/b\"c\\d\ne\tf\u00e9\u00E9\u00C9 \b\f\r \ud83d\ude00 \uD83D\uDE00 \u2028 \u0000z)";
    const std::string expected =
        std::string("a/b\"c\\d\ne\tf\xc3\xa9\xc3\xa9\xc3\x89 \b\f\r \xf0\x9f\x98\x80 "
                    "\xf0\x9f\x98\x80 \xe2\x80\xa8 ") +
        std::string("\0z", 2);
    auto r = run_cloudwatch(cwl_doc(R"(\/aws\/lambda\/f\u00fc)", {escaped}));
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"/aws/lambda/f\xc3\xbc"} == r.sink.documents);
    REQUIRE(std::size_t{1} == r.sink.events.size());
    CHECK(expected == r.sink.events[0].message);
    CHECK(expected.size() == r.sink.events[0].message.size());

    // Raw UTF-8 (including U+2028) passes through unchanged.
    const std::string raw = "\xe6\x9d\xb1\xe4\xba\xac \xe2\x80\xa8 \xc3\xbc";
    auto r2 = run_cloudwatch(cwl_doc("g", {raw}));
    REQUIRE_MESSAGE(r2.ok, r2.err.message);
    CHECK(strings{raw} == r2.sink.messages());
}

TEST_CASE("decoder::cloudwatch: keys written with escapes are recognised") {
    // SEED_BENCH 2.3: any JSON escape may appear in any string, keys included (Python's json.loads
    // and Go's encoding/json decode them before comparing).
    auto r = run_cloudwatch(
        R"({"message\u0054ype":"DATA_MESSAGE","log\u0047roup":"k","logEvents":[{"m\u0065ssage":"escaped keys"}]})");
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(strings{"k"} == r.sink.documents);
    CHECK(strings{"escaped keys"} == r.sink.messages());
}

// ---------------------------------------------------------------------------------------------
// decoder::cloudwatch errors

TEST_CASE("decoder::cloudwatch: malformed input is an error, never a crash") {
    const std::string good = cwl_doc("g", {"m"});
    struct bad_case {
        std::string what;
        std::string data;
    };
    const bad_case cases[] = {
        {"invalid JSON", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":"m"},]})"},
        {"bare word", R"({"messageType":DATA_MESSAGE,"logGroup":"g","logEvents":[]})"},
        {"truncated", good.substr(0, good.size() / 2)},
        {"truncated by one byte", good.substr(0, good.size() - 1)},
        {"top-level array", R"([1,2,3])"},
        {"top-level string", R"("DATA_MESSAGE")"},
        {"top-level number", "42"},
        {"missing logGroup", R"({"messageType":"DATA_MESSAGE","logEvents":[{"message":"m"}]})"},
        {"logGroup not a string", R"({"messageType":"DATA_MESSAGE","logGroup":7,"logEvents":[]})"},
        {"missing logEvents", R"({"messageType":"DATA_MESSAGE","logGroup":"g"})"},
        {"logEvents not an array", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":{}})"},
        {"event not an object", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":["m"]})"},
        {"message missing", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"id":"1"}]})"},
        {"message a number", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":12}]})"},
        {"message null", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":null}]})"},
        {"messageType not a string", R"({"messageType":1,"logGroup":"g","logEvents":[]})"},
        {"bad escape", R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":"\x"}]})"},
        {"lone surrogate",
         R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":"\ud83d"}]})"},
        {"raw control character",
         "{\"messageType\":\"DATA_MESSAGE\",\"logGroup\":\"g\",\"logEvents\":[{\"message\":\"a\x01\"}]}"},
        {"good then garbage", good + "xyz"},
        {"good then truncated", good + good.substr(0, 20)},
        {"plain text", "plain text\nlines"},
        {"empty", ""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto r = run_cloudwatch(c.data);
        CHECK_FALSE(r.ok);
        if (!r.ok) {
            CHECK(errc::json == r.err.code);
            CHECK_FALSE(r.err.message.empty());
        }
    }
}

TEST_CASE("decoder::cloudwatch: error messages say where the problem is") {
    auto missing = run_cloudwatch(cwl_doc("a", {"x"}) + "\n" +
                                  R"({"messageType":"DATA_MESSAGE","logEvents":[{"message":"m"}]})");
    REQUIRE_FALSE(missing.ok);
    CHECK_MESSAGE(contains(missing.err.message, "document 2"), missing.err.message);
    CHECK_MESSAGE(contains(missing.err.message, "logGroup"), missing.err.message);

    auto not_string = run_cloudwatch(
        R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":"a"},{"message":5}]})");
    REQUIRE_FALSE(not_string.ok);
    CHECK_MESSAGE(contains(not_string.err.message, "logEvents[1].message"), not_string.err.message);
}

TEST_CASE("decoder::cloudwatch: 100000-deep nesting never crashes") {
    // As the document it is an error. Inside an unknown field it is either an error or skipped like
    // any unknown field (then the document's own events are emitted exactly once).
    const std::size_t depth = 100000;
    const std::string open_arrays(depth, '['), close_arrays(depth, ']');
    std::string deep_objects;
    for (std::size_t i = 0; i < depth; ++i)
        deep_objects += "{\"a\":";
    deep_objects += "1" + std::string(depth, '}');

    SUBCASE("arrays as the document") {
        auto r = run_cloudwatch(open_arrays + close_arrays);
        CHECK_FALSE(r.ok);
        CHECK(r.sink.empty());
    }
    SUBCASE("arrays as the document, unclosed") {
        auto r = run_cloudwatch(open_arrays);
        CHECK_FALSE(r.ok);
        CHECK(r.sink.empty());
    }
    SUBCASE("objects as the document, unclosed") {
        auto r = run_cloudwatch(deep_objects.substr(0, deep_objects.size() - 1));
        CHECK_FALSE(r.ok);
        CHECK(r.sink.empty());
    }
    SUBCASE("objects as the document (no messageType: not a subscription document)") {
        auto r = run_cloudwatch(deep_objects);
        if (r.ok)
            CHECK(r.sink.empty());
        else
            CHECK(errc::json == r.err.code);
    }
    SUBCASE("inside unknown fields of the document and of an event") {
        for (const std::string& deep : {open_arrays + close_arrays, deep_objects}) {
            auto r = run_cloudwatch(R"({"messageType":"DATA_MESSAGE","logGroup":"g","deep":)" + deep +
                                    R"(,"logEvents":[{"x":)" + deep + R"(,"message":"m"}]})");
            if (r.ok)
                CHECK(strings{"m"} == r.sink.messages());
            else
                CHECK(errc::json == r.err.code);
        }
    }
    SUBCASE("inside an unknown field, unclosed") {
        auto r = run_cloudwatch(R"({"messageType":"DATA_MESSAGE","logGroup":"g","deep":)" + open_arrays);
        CHECK_FALSE(r.ok);
        CHECK(r.sink.events.empty());
    }
    SUBCASE("as a message value") {
        auto r = run_cloudwatch(R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":)" +
                                open_arrays + close_arrays + "}]}");
        CHECK_FALSE(r.ok);
        CHECK(r.sink.events.empty());
    }
}

TEST_CASE("decoder::cloudwatch: whitespace-only data emits nothing") {
    auto r = run_cloudwatch(" \n\t\r ");
    CHECK(r.sink.empty());
    if (!r.ok) CHECK(errc::json == r.err.code);
}

// ---------------------------------------------------------------------------------------------
// text fallback

TEST_CASE("decoder::cloudwatch: cloudwatch_or_text returns false and emits nothing for non-CloudWatch data") {
    const std::string inputs[] = {
        "plain text\nlines",
        R"({"version":"1.1","account_id":"428152502467","answers":[]})",
        R"({"messageType":"SOMETHING_ELSE","logGroup":"g","logEvents":[]})",
        "{not json at all",
        "[1,2,3]",
        "",
        "   \n",
        "{\"a\":1} trailing text",
    };
    for (const auto& in : inputs) {
        CAPTURE(in);
        auto r = run_cloudwatch(in, record_format::cloudwatch_or_text);
        REQUIRE_MESSAGE(r.ok, r.err.message);
        CHECK_FALSE(r.is_cloudwatch);
        CHECK(r.sink.empty());
    }
}

TEST_CASE("decoder::cloudwatch: cloudwatch_or_text still decodes CloudWatch JSON") {
    auto r = run_cloudwatch(cwl_doc("g", {"m1", "m2"}) + control_doc, record_format::cloudwatch_or_text);
    REQUIRE_MESSAGE(r.ok, r.err.message);
    CHECK(r.is_cloudwatch);
    CHECK(strings{"m1", "m2"} == r.sink.messages());
    CHECK(std::size_t{1} == r.sink.control_messages);
    // Once CloudWatch documents were emitted, a broken later document is an error, not text.
    auto broken = run_cloudwatch(cwl_doc("g", {"m1"}) + R"({"messageType":"DATA_MESSAGE","logEvents":[]})",
                                 record_format::cloudwatch_or_text);
    CHECK_FALSE(broken.ok);
}

// ---------------------------------------------------------------------------------------------
// decoder::firehose

TEST_CASE("decoder::firehose: cwl_via_firehose_request.json gives the expected counts") {
    const std::string expected = read_data("fixtures/firehose/cwl_via_firehose_request.expected.json");
    REQUIRE(contains(expected, "\"records\": 4"));
    REQUIRE(contains(expected, "\"control_messages\": 1"));
    REQUIRE(contains(expected, "\"data_messages\": 4"));
    REQUIRE(contains(expected, "\"data_log_events_total\": 105"));

    const std::string body = read_data("fixtures/firehose/cwl_via_firehose_request.json");
    const std::string gz = read_data("fixtures/firehose/cwl_via_firehose_request.json.gz");
    for (const bool gzipped : {false, true}) {
        CAPTURE(gzipped);
        decoder d;
        recording_sink sink;
        firehose_options o;
        o.body_gzipped = gzipped;
        o.records = record_format::cloudwatch;
        const padded p(gzipped ? gz : body);
        auto r = d.firehose(p, sink, o);
        REQUIRE_MESSAGE(r.has_value(), error_text(r));
        CHECK(std::size_t{4} == r->records);
        CHECK(r->has_request_id);
        CHECK("ed4acda5-034f-9f42-bba1-f29aea6d7d8f" == r->request_id);
        CHECK(std::size_t{1} == sink.control_messages);
        CHECK(strings{"CloudTrail", "/my/first/log/group", "/my/second/log/group", "/ec2/sshd"} ==
              sink.documents);
        CHECK(std::size_t{105} == sink.events.size());
        CHECK(sink.text_sources.empty());
    }
}

TEST_CASE("decoder::firehose: otel_firehose_log.json records are text events of text_group") {
    const std::string body = read_data("fixtures/firehose/otel_firehose_log.json");
    decoder d;
    recording_sink sink;
    firehose_options o;
    o.records = record_format::cloudwatch_or_text;
    o.text_group = "firehose/route53";
    auto r = d.firehose(padded(body), sink, o);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK(std::size_t{1} == r->records);
    CHECK("test-request-id-firehoselogs" == r->request_id);
    CHECK(sink.documents.empty());
    CHECK(strings{"firehose/route53"} == sink.text_sources);
    REQUIRE(std::size_t{1} == sink.events.size());
    CHECK("firehose/route53" == sink.events[0].group);
    CHECK(sink.events[0].message.starts_with(R"({"version":"1.100000","account_id":"428152502467")"));
    CHECK(sink.events[0].message.ends_with(R"("srcids":{"instance":"i-0646c0435554cc5ed"}})"));
}

TEST_CASE("decoder::firehose: with record_format::cloudwatch a JSON record without messageType is ignored") {
    // Like the reference implementations: a document whose messageType is neither DATA_MESSAGE nor
    // CONTROL_MESSAGE (here: absent) is counted nowhere.
    decoder d;
    recording_sink sink;
    firehose_options o;
    o.records = record_format::cloudwatch;
    o.text_group = "unused";
    auto r = d.firehose(padded(read_data("fixtures/firehose/otel_firehose_log.json")), sink, o);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK(std::size_t{1} == r->records);
    CHECK(sink.empty());
}

TEST_CASE("decoder::firehose: text records (plain and gzip'd) split into lines") {
    decoder d;
    recording_sink sink;
    firehose_options o;
    o.text_group = "txt";
    const std::string body =
        firehose_body({base64_encode("line one\r\n\nline two\n"), record_of("gz line\nlast line no newline"),
                       record_of(cwl_doc("cw", {"json event"}))});
    auto r = d.firehose(padded(body), sink, o);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK(std::size_t{3} == r->records);
    CHECK(strings{"line one", "line two", "gz line", "last line no newline", "json event"} ==
          sink.messages());
    CHECK("txt" == sink.events[0].group);
    CHECK("cw" == sink.events[4].group);

    // With record_format::cloudwatch a text record is an error.
    recording_sink sink2;
    o.records = record_format::cloudwatch;
    auto r2 = d.firehose(padded(firehose_body({base64_encode("plain text")})), sink2, o);
    REQUIRE_FALSE(r2.has_value());
    CHECK(errc::json == r2.error().code);
    CHECK_MESSAGE(contains(r2.error().message, "records[0]"), r2.error().message);
}

TEST_CASE("decoder::firehose: any key order, unknown keys and whitespace in the envelope") {
    const std::string rec = record_of(cwl_doc("g", {"m1", "m2"}));
    const std::string body = "\n { \"records\" : [ { \"extra\" : [1, {\"data\":\"x\"}], \"data\" : \"" + rec +
                             "\" } ,\r\n {\"data\":\"" + rec +
                             "\"} ] , \"unknown\": {\"records\": null},"
                             " \"timestamp\" : 1 , \"requestId\" : \"late-id\" } \n";
    decoder d;
    recording_sink sink;
    auto r = d.firehose(padded(body), sink, {});
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK(std::size_t{2} == r->records);
    CHECK("late-id" == r->request_id);
    CHECK(strings{"m1", "m2", "m1", "m2"} == sink.messages());
}

TEST_CASE("decoder::firehose: request without requestId, and with no records") {
    decoder d;
    recording_sink sink;
    auto r = d.firehose(padded(R"({"timestamp":1,"records":[]})"), sink, {});
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK_FALSE(r->has_request_id);
    CHECK(std::size_t{0} == r->records);
    CHECK(sink.empty());
}

TEST_CASE("decoder::firehose: a record with bad base64 is a base64 error naming the record") {
    decoder d;
    recording_sink sink;
    const std::string body =
        firehose_body({record_of(cwl_doc("g", {"ok"})), record_of(cwl_doc("g", {"ok"})), "SGVsbG8*"});
    auto r = d.firehose(padded(body), sink, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::base64 == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "records[2]"), r.error().message);
    CHECK_MESSAGE(contains(r.error().message, "offset 7"), r.error().message);
}

TEST_CASE("decoder::firehose: a record with corrupt gzip is a gzip error") {
    decoder d;
    std::string gz = gzip_compress(cwl_doc("g", {"some message that compresses"}));
    SUBCASE("truncated") {
        gz.resize(gz.size() - 5);
    }
    SUBCASE("CRC flipped") {
        gz[gz.size() - 6] = static_cast<char>(gz[gz.size() - 6] ^ 0x40);
    }
    recording_sink sink;
    auto r =
        d.firehose(padded(firehose_body({record_of(cwl_doc("g", {"ok"})), base64_encode(gz)})), sink, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "records[1]"), r.error().message);
}

TEST_CASE("decoder::firehose: decompressed total over max_decompressed_bytes is too_large") {
    strings msgs;
    for (int i = 0; i < 20; ++i)
        msgs.push_back("a message of moderate length number " + std::to_string(i));
    const std::string doc = cwl_doc("g", msgs); // ~1.5 KB decompressed
    REQUIRE(doc.size() > 1000);
    REQUIRE(doc.size() < 2000);
    decode_limits limits;
    limits.max_decompressed_bytes = 3000;
    decoder d(limits);
    CHECK(std::size_t{3000} == d.limits().max_decompressed_bytes);

    SUBCASE("one record fits") {
        recording_sink sink;
        auto r = d.firehose(padded(firehose_body({record_of(doc)})), sink, {});
        REQUIRE_MESSAGE(r.has_value(), error_text(r));
        CHECK(std::size_t{20} == sink.events.size());
    }
    SUBCASE("the records together do not") {
        recording_sink sink;
        auto r =
            d.firehose(padded(firehose_body({record_of(doc), record_of(doc), record_of(doc)})), sink, {});
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::too_large == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "3000"), r.error().message);
        CHECK_MESSAGE(contains(r.error().message, "records[1]"), r.error().message);
    }
    SUBCASE("a gzip'd body counts too") {
        recording_sink sink;
        firehose_options o;
        o.body_gzipped = true;
        const std::string body = firehose_body({base64_encode(std::string(3000, 'x'))});
        auto r = d.firehose(padded(gzip_compress(body)), sink, o);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::too_large == r.error().code);
    }
    SUBCASE("the limit is per request, not per decoder lifetime") {
        for (int i = 0; i < 5; ++i) {
            recording_sink sink;
            auto r = d.firehose(padded(firehose_body({record_of(doc)})), sink, {});
            REQUIRE_MESSAGE(r.has_value(), error_text(r));
        }
    }
}

TEST_CASE("decoder::firehose: malformed requests are errors") {
    const std::string rec = record_of(cwl_doc("g", {"m"}));
    struct bad_case {
        std::string what;
        std::string body;
        errc code;
    };
    const bad_case cases[] = {
        {"missing records", R"({"requestId":"r","timestamp":1})", errc::json},
        {"records not an array", R"({"requestId":"r","records":{}})", errc::json},
        {"record not an object", R"({"requestId":"r","records":["x"]})", errc::json},
        {"record without data", R"({"requestId":"r","records":[{"foo":"bar"}]})", errc::json},
        {"data not a string", R"({"requestId":"r","records":[{"data":5}]})", errc::json},
        {"requestId not a string", R"({"requestId":5,"records":[]})", errc::json},
        {"not an object", R"(["records"])", errc::json},
        {"invalid JSON", R"({"requestId":"r","records":[)", errc::json},
        {"empty body", "", errc::json},
        {"trailing content", firehose_body({rec}) + R"({"requestId":"again","records":[]})", errc::json},
        {"trailing garbage", firehose_body({rec}) + "garbage", errc::json},
        {"record data not CloudWatch in cloudwatch mode", firehose_body({base64_encode("[1]")}), errc::json},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        decoder d;
        recording_sink sink;
        firehose_options o;
        o.records = record_format::cloudwatch;
        auto r = d.firehose(padded(c.body), sink, o);
        CHECK_FALSE(r.has_value());
        if (!r) CHECK(c.code == r.error().code);
    }
    decoder d;
    recording_sink sink;
    auto r = d.firehose(padded(R"({"requestId":"r","timestamp":1})"), sink, {});
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(contains(r.error().message, "records"), r.error().message);
}

TEST_CASE("decoder::firehose: a gzip'd body that is not gzip is a gzip error") {
    decoder d;
    recording_sink sink;
    firehose_options o;
    o.body_gzipped = true;
    auto r = d.firehose(padded(firehose_body({})), sink, o);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
}

TEST_CASE("decoder::firehose: one decoder decodes many requests in a row") {
    decoder d;
    const std::string body = read_data("fixtures/firehose/cwl_via_firehose_request.json");
    const std::string gz = read_data("fixtures/firehose/cwl_via_firehose_request.json.gz");
    for (int i = 0; i < 6; ++i) {
        recording_sink sink;
        firehose_options o;
        o.body_gzipped = i % 2 == 1;
        auto r = d.firehose(padded(o.body_gzipped ? gz : body), sink, o);
        REQUIRE_MESSAGE(r.has_value(), error_text(r));
        CHECK(std::size_t{105} == sink.events.size());
        // An error in between must not leave state behind.
        recording_sink junk;
        CHECK_FALSE(d.firehose(padded(firehose_body({"!!!!"})), junk, {}).has_value());
    }
}

// ---------------------------------------------------------------------------------------------
// decoder::cloudwatch_delivery

TEST_CASE("decoder::cloudwatch_delivery: plain, gzip'd and the Lambda awslogs form") {
    const std::string plain = read_data("fixtures/cwl/otel_valid_cloudwatch_log.json");
    const std::string msg = R"({"eventVersion":"1.03","userIdentity":{"type":"Root"})";
    const std::string inputs[] = {plain, gzip_compress(plain),
                                  read_data("fixtures/cwl/lambda_awslogs_event.json"),
                                  gzip_compress(read_data("fixtures/cwl/lambda_awslogs_event.json"))};
    for (std::size_t i = 0; i < std::size(inputs); ++i) {
        CAPTURE(i);
        decoder d;
        recording_sink sink;
        auto r = d.cloudwatch_delivery(padded(inputs[i]), sink);
        REQUIRE_MESSAGE(r.has_value(), error_text(r));
        CHECK(strings{"CloudTrail"} == sink.documents);
        CHECK(strings{msg, msg, msg} == sink.messages());
    }
}

TEST_CASE("decoder::cloudwatch_delivery: a delivery with no subscription document names messageType") {
    decoder d;
    recording_sink sink;
    auto r = d.cloudwatch_delivery(padded(R"({"logGroup":"g","logEvents":[{"message":"m"}]})"), sink);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.starts_with("messageType: "));
    // Beside a subscription document, one without messageType is skipped (as `faultline scan` does).
    recording_sink ok;
    auto mixed = d.cloudwatch_delivery(padded(R"({"other":1})" + cwl_doc("g", {"m"})), ok);
    REQUIRE_MESSAGE(mixed.has_value(), error_text(mixed));
    CHECK(strings{"m"} == ok.messages());
}

TEST_CASE("decoder::cloudwatch_delivery: several documents and control messages") {
    decoder d;
    recording_sink sink;
    const std::string body = read_data("fixtures/cwl/otel_multiple_json_objects.json") + control_doc;
    auto r = d.cloudwatch_delivery(padded(gzip_compress(body)), sink);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    CHECK(strings{"some text", "some other text"} == sink.messages());
    CHECK(std::size_t{1} == sink.control_messages);
}

TEST_CASE("decoder::cloudwatch_delivery: errors") {
    decoder d;
    const std::string doc = cwl_doc("g", {"m"});
    struct bad_case {
        std::string what;
        std::string body;
        errc code;
    };
    const bad_case cases[] = {
        {"plain text", "hello", errc::json},
        {"corrupt gzip", gzip_compress(doc).substr(0, 20), errc::gzip},
        {"awslogs.data missing", R"({"awslogs":{}})", errc::json},
        {"awslogs.data not a string", R"({"awslogs":{"data":1}})", errc::json},
        {"awslogs.data bad base64", R"({"awslogs":{"data":"@@@@"}})", errc::base64},
        {"awslogs.data corrupt gzip",
         R"({"awslogs":{"data":")" + base64_encode(gzip_compress(doc).substr(0, 30)) + "\"}}", errc::gzip},
        {"awslogs.data not CloudWatch", R"({"awslogs":{"data":")" + record_of("plain") + "\"}}", errc::json},
        {"awslogs trailing content", R"({"awslogs":{"data":")" + record_of(doc) + "\"}} {}", errc::json},
        {"missing logGroup", R"({"messageType":"DATA_MESSAGE","logEvents":[]})", errc::json},
        {"no messageType", R"({"logGroup":"g","logEvents":[{"message":"m"}]})", errc::document},
        {"unknown messageType", R"({"messageType":"OTHER","logGroup":"g","logEvents":[]})", errc::document},
        {"a JSON object of something else", R"({"hello":"world"})", errc::document},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        recording_sink sink;
        auto r = d.cloudwatch_delivery(padded(c.body), sink);
        CHECK_FALSE(r.has_value());
        if (!r) CHECK(c.code == r.error().code);
    }
    decode_limits small;
    small.max_decompressed_bytes = 100;
    decoder tiny(small);
    recording_sink sink;
    auto r = tiny.cloudwatch_delivery(padded(gzip_compress(std::string(1000, ' ') + doc)), sink);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::too_large == r.error().code);
}

// ---------------------------------------------------------------------------------------------
// decoder::lines

TEST_CASE("decoder::lines: LF and CRLF, blank lines skipped, last line without newline") {
    recording_sink sink;
    decoder::lines("first\r\nsecond\n\n   \n\t\r\nthird \r\n\r\nlast", "grp", sink);
    CHECK(strings{"grp"} == sink.text_sources);
    CHECK(strings{"first", "second", "third ", "last"} == sink.messages());
    for (const auto& e : sink.events)
        CHECK("grp" == e.group);
    CHECK(sink.documents.empty());
}

TEST_CASE("decoder::lines: edge cases") {
    SUBCASE("empty input announces the source and emits nothing") {
        recording_sink sink;
        decoder::lines("", "g", sink);
        CHECK(sink.events.empty());
    }
    SUBCASE("only newlines") {
        recording_sink sink;
        decoder::lines("\n\r\n\n", "g", sink);
        CHECK(sink.events.empty());
    }
    SUBCASE("a lone CR inside a line is kept, leading spaces are kept") {
        recording_sink sink;
        decoder::lines("a\rb\n  indented\n", "g", sink);
        CHECK(strings{"a\rb", "  indented"} == sink.messages());
    }
    SUBCASE("NUL bytes are part of a line") {
        recording_sink sink;
        decoder::lines(std::string_view("x\0y\nz", 5), "g", sink);
        CHECK(strings{std::string("x\0y", 3), "z"} == sink.messages());
    }
}

namespace {
/// Reads the in-flight counter each time an event arrives (i.e. while the request is decoded).
class budget_watch final : public faultline::core::decode::event_sink {
public:
    explicit budget_watch(const faultline::core::byte_budget& c)
        : counter(c) {}
    void on_document(std::string_view) override {}
    void on_text_source(std::string_view) override {}
    void on_event(std::string_view) override {
        peak = std::max(peak, static_cast<std::int64_t>(counter.used()));
    }
    void on_control_message() override {}
    const faultline::core::byte_budget& counter;
    std::int64_t peak = 0;
};
} // namespace

TEST_CASE("decoder: decompressed data is counted in the in-flight budget while a request is decoded") {
    using namespace faultline;
    core::byte_budget inflight;
    core::decode::decode_limits limits;
    limits.budget = &inflight;
    core::decode::decoder dec(limits);
    // A 4 MiB CloudWatch document, gzip'd (a few KiB on the wire).
    std::vector<std::string> messages(4096, std::string(1000, 'x'));
    const std::string doc = test::cwl_doc("/big", messages);
    REQUIRE(doc.size() > (4u << 20));

    SUBCASE("Firehose record") {
        const test::padded body(test::firehose_body({test::record_of(doc)}));
        budget_watch sink(inflight);
        core::decode::firehose_options o;
        REQUIRE(dec.firehose(body, sink, o).has_value());
        CHECK(sink.peak >= static_cast<std::int64_t>(doc.size()));
    }
    SUBCASE("gzip'd CloudWatch delivery") {
        const test::padded body(core::decode::gzip_compress(doc));
        budget_watch sink(inflight);
        REQUIRE(dec.cloudwatch_delivery(body, sink).has_value());
        CHECK(sink.peak >= static_cast<std::int64_t>(doc.size()));
    }
    SUBCASE("a bomb refused") {
        core::decode::decode_limits small = limits;
        small.max_decompressed_bytes = 1 << 20;
        core::decode::decoder capped(small);
        const test::padded body(core::decode::gzip_compress(doc));
        budget_watch sink(inflight);
        CHECK_FALSE(capped.cloudwatch_delivery(body, sink).has_value());
    }
    // Given back when the decoding ends, whatever its outcome.
    CHECK(inflight.used() == 0);
}

TEST_CASE("decoder: decompression and parsing are reserved in the budget before they allocate") {
    using namespace faultline;
    core::byte_budget budget(1 << 20); // 1 MiB
    core::decode::decode_limits limits;
    limits.budget = &budget;
    core::decode::decoder dec(limits);
    std::vector<std::string> messages(4096, std::string(1000, 'x'));
    const std::string doc = test::cwl_doc("/big", messages); // 4 MiB, a few KiB gzip'd
    SUBCASE("a gzip'd body that decompresses past the budget: over_budget (retryable), nothing counted") {
        const test::padded body(core::decode::gzip_compress(doc));
        recording_sink sink;
        auto r = dec.cloudwatch_delivery(body, sink);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::over_budget);
        CHECK(sink.events.empty());
    }
    SUBCASE("a webhook whose parser memory is more than the whole budget: too_large (not retryable)") {
        std::string body = "[";
        while (body.size() < (200u << 10))
            body += "{\"message\":\"m\"},";
        body.back() = ']';
        recording_sink sink;
        auto r = dec.webhook(test::padded(body), core::decode::webhook_options{}, sink);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::too_large);
    }
    SUBCASE("within the budget") {
        const test::padded body(core::decode::gzip_compress(test::cwl_doc("/small", {"ERROR a", "b"})));
        recording_sink sink;
        REQUIRE(dec.cloudwatch_delivery(body, sink).has_value());
        CHECK(sink.events.size() == 2);
    }
    CHECK(budget.used() == 0);
}

TEST_CASE("decoder::webhook: a small body of one document reads as a document stream reads it") {
    // Bodies up to 16 KiB are first parsed as one document; the same body padded past that (with
    // trailing spaces) goes through the document stream. Same events, same errors, same offsets.
    auto run = [](const std::string& body) {
        decoder d;
        recording_sink sink;
        auto r = d.webhook(padded(body), faultline::core::decode::webhook_options{}, sink);
        std::string out = r ? "events " + std::to_string(*r) : "error " + r.error().message;
        for (const auto& e : sink.events)
            out += " | " + e.message;
        return out;
    };
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"  {\"message\":\"ERROR a\"}\n", "events 1 | ERROR a"},
        {"[{\"message\":\"a\"},{\"message\":\"b\"}]", "events 2 | a | b"},
        {"{\"message\":\"a\"}\n{\"message\":\"b\"}\n", "events 2 | a | b"},
        {"  [{\"message\":\"a\"},{\"other\":\"b\"}]",
         "error document 1 (offset 2): [1]: no message field (looked for message, msg, log, text) | a"},
        {" 5", "error document 1 (offset 1): expected a JSON object"},
        {"{\"message\":\"a\"}\n 7", "error document 2 (offset 17): expected a JSON object | a"},
        {"{\"message\":", "error incomplete JSON document at offset 0"},
    };
    for (const auto& each : cases) {
        const std::string& body = each.first;
        const std::string& expected = each.second;
        CAPTURE(body);
        CHECK(run(body) == expected);
        CHECK(run(body + std::string(20 << 10, ' ')) == expected);
    }
}
