// OTLP logs requests as exporters build them (libprotobuf's generated classes, and its JSON
// printer for the JSON encoding), decoded by decoder::otlp: hostile bodies first.
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/gzip.hpp"

#include "../support/helpers.hpp"

#include <opentelemetry/proto/collector/logs/v1/logs_service.pb.h>

#include <google/protobuf/util/json_util.h>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using faultline::core::errc;
using faultline::core::decode::decode_limits;
using faultline::core::decode::decoder;
using faultline::core::decode::otlp_options;
using faultline::test::padded;
using faultline::test::recording_sink;
namespace otlp = opentelemetry::proto;
using request = otlp::collector::logs::v1::ExportLogsServiceRequest;

namespace {

otlp::logs::v1::ScopeLogs* scope_of(request& req, std::string_view service) {
    auto* rl = req.add_resource_logs();
    if (!service.empty()) {
        auto* kv = rl->mutable_resource()->add_attributes();
        kv->set_key("service.name");
        kv->mutable_value()->set_string_value(std::string(service));
    }
    return rl->add_scope_logs();
}

otlp::logs::v1::LogRecord* text_record(otlp::logs::v1::ScopeLogs* scope, std::string_view body,
                                       int severity = 0, std::string_view severity_text = {}) {
    auto* r = scope->add_log_records();
    r->mutable_body()->set_string_value(std::string(body));
    r->set_severity_number(static_cast<otlp::logs::v1::SeverityNumber>(severity));
    r->set_severity_text(std::string(severity_text));
    r->set_time_unix_nano(1'700'000'000'000'000'000ULL);
    return r;
}

struct decoded {
    faultline::core::result<faultline::core::decode::otlp_summary> summary;
    recording_sink sink;
};

decoded decode(std::string_view body, bool json = false, bool gzipped = false, decode_limits limits = {}) {
    decoder d(limits);
    otlp_options o;
    o.json = json;
    o.gzipped = gzipped;
    decoded out{faultline::core::make_error(errc::internal, "not run"), {}};
    const padded p(body);
    out.summary = d.otlp(p, o, out.sink);
    return out;
}

/// OTLP's JSON encoding (enums as integers), as libprotobuf prints it.
std::string as_json(const request& req) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_enums_as_ints = true;
    REQUIRE(google::protobuf::util::MessageToJsonString(req, &out, options).ok());
    return out;
}

std::string varint(std::uint64_t v) {
    std::string out;
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
    return out;
}

/// A request with one of everything a body can be.
request varied_request() {
    request req;
    auto* scope = scope_of(req, "checkout");
    text_record(scope, "disk 3 failed", 17);            // ERROR by number
    text_record(scope, "cache miss", 0, "Information"); // severity text only
    text_record(scope, "plain line");                   // no severity
    auto* map = scope->add_log_records();               // a map with a message field
    auto* kv = map->mutable_body()->mutable_kvlist_value()->add_values();
    kv->set_key("level");
    kv->mutable_value()->set_string_value("x");
    kv = map->mutable_body()->mutable_kvlist_value()->add_values();
    kv->set_key("msg");
    kv->mutable_value()->set_string_value("payment declined");
    kv = map->mutable_body()->mutable_kvlist_value()->add_values();
    kv->set_key("message");
    kv->mutable_value()->set_string_value("the message wins over msg");
    auto* other = scope->add_log_records(); // a map without one: the map as JSON
    kv = other->mutable_body()->mutable_kvlist_value()->add_values();
    kv->set_key("code");
    kv->mutable_value()->set_int_value(-42);
    kv = other->mutable_body()->mutable_kvlist_value()->add_values();
    kv->set_key("ok");
    kv->mutable_value()->set_bool_value(false);
    auto* arr = other->mutable_body()->mutable_kvlist_value()->add_values();
    arr->set_key("tags");
    arr->mutable_value()->mutable_array_value()->add_values()->set_string_value("a\"b");
    arr->mutable_value()->mutable_array_value()->add_values()->set_double_value(1.5);
    scope->add_log_records()->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_WARN); // no body
    auto* second = scope_of(req, ""); // no service.name: log.file.path, then the default
    text_record(second, "second resource");
    return req;
}

const std::vector<recording_sink::event> varied_events = {
    {"checkout", "ERROR disk 3 failed"},
    {"checkout", "Information cache miss"},
    {"checkout", "plain line"},
    {"checkout", "the message wins over msg"},
    {"checkout", R"({"code":-42,"ok":false,"tags":["a\"b",1.5]})"},
    {"otlp", "second resource"},
};

} // namespace

TEST_CASE("otlp: bytes that are not protobuf are refused, whole (nothing emitted)") {
    request req = varied_request();
    const std::string good = req.SerializeAsString();
    SUBCASE("truncated at every length") {
        for (std::size_t n = 1; n < good.size(); ++n) {
            auto r = decode(std::string_view(good).substr(0, n));
            if (r.summary) continue; // a prefix may end on a field boundary: still protobuf
            CHECK(r.summary.error().code == errc::protobuf);
        }
    }
    SUBCASE("a length past the end, a 11-byte varint, a group without its end, field 0") {
        for (const std::string& bad :
             {std::string("\x0a\x7f", 2), std::string("\x0a") + std::string(10, '\xff') + "\x01",
              std::string("\x0b\x08\x01", 3), std::string("\x02\x00", 2)}) {
            auto r = decode(bad);
            REQUIRE_FALSE(r.summary.has_value());
            CHECK(r.summary.error().code == errc::protobuf);
            CHECK(r.sink.events.empty());
        }
    }
    SUBCASE("JSON that is not an ExportLogsServiceRequest") {
        for (const char* bad :
             {"", "[]", "{\"resourceLogs\":{}}", "{\"resourceLogs\":[",
              R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"x"}}]}]}]})",
              R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"text"}]}]}]})"}) {
            auto r = decode(bad, true);
            REQUIRE_FALSE(r.summary.has_value());
            CHECK(r.summary.error().code == errc::json);
        }
    }
}

TEST_CASE("otlp: a body nested deeper than 32 maps is refused, in both encodings") {
    request req;
    auto* v = text_record(scope_of(req, "svc"), "x")->mutable_body();
    for (int i = 0; i < 40; ++i) {
        auto* kv = v->mutable_kvlist_value()->add_values();
        kv->set_key("k");
        v = kv->mutable_value();
    }
    v->set_string_value("deep");
    auto pb = decode(req.SerializeAsString());
    REQUIRE_FALSE(pb.summary.has_value());
    CHECK(pb.summary.error().code == errc::protobuf);
    // (libprotobuf's JSON printer refuses this depth itself: written by hand)
    std::string json = R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":)";
    for (int i = 0; i < 40; ++i)
        json += R"({"kvlistValue":{"values":[{"key":"k","value":)";
    json += R"({"stringValue":"deep"})";
    for (int i = 0; i < 40; ++i)
        json += "}]}}";
    json += "}]}]}]}";
    auto js = decode(json, true);
    REQUIRE_FALSE(js.summary.has_value());
    CHECK(js.summary.error().code == errc::json);
}

TEST_CASE("otlp: a gzip body over the decompression limit is refused") {
    request req;
    auto* scope = scope_of(req, "svc");
    for (int i = 0; i < 2000; ++i)
        text_record(scope, std::string(500, 'a'));
    const std::string zipped = faultline::core::decode::gzip_compress(req.SerializeAsString());
    decode_limits limits;
    limits.max_decompressed_bytes = 100'000;
    auto r = decode(zipped, false, true, limits);
    REQUIRE_FALSE(r.summary.has_value());
    CHECK(r.summary.error().code == errc::too_large);
    auto corrupt = decode("\x1f\x8b not really gzip", false, true);
    REQUIRE_FALSE(corrupt.summary.has_value());
    CHECK(corrupt.summary.error().code == errc::gzip);
}

TEST_CASE("otlp: each record with a body is an event: severity, map bodies, groups, rejections") {
    const request req = varied_request();
    auto r = decode(req.SerializeAsString());
    REQUIRE(r.summary.has_value());
    CHECK(r.summary->records == 6u);
    CHECK(r.summary->rejected == 1u);
    CHECK(r.sink.events == varied_events);
}

TEST_CASE("otlp: the JSON encoding gives the same events as protobuf") {
    const request req = varied_request();
    const std::string json = as_json(req);
    auto r = decode(json, true);
    REQUIRE(r.summary.has_value());
    CHECK(r.summary->records == 6u);
    CHECK(r.summary->rejected == 1u);
    CHECK(r.sink.events == varied_events);
    // gzip'd, both
    auto zj = decode(faultline::core::decode::gzip_compress(json), true, true);
    REQUIRE(zj.summary.has_value());
    CHECK(zj.sink.events == varied_events);
    auto zp = decode(faultline::core::decode::gzip_compress(req.SerializeAsString()), false, true);
    REQUIRE(zp.summary.has_value());
    CHECK(zp.sink.events == varied_events);
}

TEST_CASE(
    "otlp: JSON as exporters write it: numbers or strings for int64, snake_case, nulls, unknown fields") {
    const std::string body = R"({"resource_logs":[{"resource":{"attributes":[
        {"key":"log.file.path","value":{"stringValue":"/var/log/app.log"}},
        {"key":"service.name","value":{"stringValue":""}}]},
      "scopeLogs":[{"scope":{"name":"s"},"someFutureField":[1,2],"logRecords":[
        {"timeUnixNano":"1700000000000000000","severityNumber":21,"body":{"stringValue":"core dumped"}},
        {"severity_text":"warning","body":{"intValue":7}},
        {"severityNumber":"SEVERITY_NUMBER_ERROR2","body":{"stringValue":"by name"}},
        {"body":{"doubleValue":null}},
        {"body":{}},
        {"severityNumber":9}]}]}]})";
    auto r = decode(body, true);
    REQUIRE(r.summary.has_value());
    CHECK(r.summary->records == 3u);
    CHECK(r.summary->rejected == 3u);
    const std::vector<recording_sink::event> want = {{"/var/log/app.log", "FATAL core dumped"},
                                                     {"/var/log/app.log", "warning 7"},
                                                     {"/var/log/app.log", "ERROR by name"}};
    CHECK(r.sink.events == want);
}

TEST_CASE("otlp: protobuf fields in any order, unknown fields and mismatched wire types are skipped") {
    // A ResourceLogs whose scope_logs come before its resource: the group is still the resource's.
    request one;
    auto* scope = scope_of(one, "late-resource");
    text_record(scope, "ERROR boom");
    const auto& rl = one.resource_logs(0);
    std::string reordered;
    {
        otlp::logs::v1::ResourceLogs scopes_only;
        *scopes_only.add_scope_logs() = rl.scope_logs(0);
        otlp::logs::v1::ResourceLogs resource_only;
        *resource_only.mutable_resource() = rl.resource();
        std::string inner = scopes_only.SerializeAsString() + resource_only.SerializeAsString();
        inner += std::string("\xf8\x07\x01", 3);                // field 127 varint: unknown
        inner += std::string("\x11", 1) + std::string(8, '\0'); // field 2 as fixed64: wrong type, skipped
        reordered = "\x0a" + varint(inner.size()) + inner;
    }
    auto r = decode(reordered);
    REQUIRE(r.summary.has_value());
    const std::vector<recording_sink::event> want = {{"late-resource", "ERROR boom"}};
    CHECK(r.sink.events == want);
}

TEST_CASE("otlp: the opentelemetry-proto example request") {
    std::ifstream in(FAULTLINE_OTLP_EXAMPLE);
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = decode(ss.str(), true);
    REQUIRE(r.summary.has_value());
    REQUIRE(r.sink.events.size() == 1u);
    CHECK(r.sink.events[0].group == "my.service");
    CHECK(r.sink.events[0].message == "INFO Example log record"); // severityNumber 10
}

TEST_CASE("otlp: an empty request is a success with nothing counted") {
    auto pb = decode("");
    REQUIRE(pb.summary.has_value());
    CHECK(pb.summary->records == 0u);
    auto js = decode("{}", true);
    REQUIRE(js.summary.has_value());
    CHECK(js.sink.events.empty());
}

TEST_CASE("otlp: JSON values of the wrong type are 400, never a read of nothing") {
    // Found in review: a list field that is not an object made the decoder read a null element.
    for (const std::string body :
         {R"({"body":{"arrayValue":5}})", R"({"body":{"arrayValue":"x"}})", R"({"body":{"kvlistValue":[]}})",
          R"({"body":{"kvlistValue":{"values":5}}})", R"({"body":{"kvlistValue":{"values":[5]}}})",
          R"({"body":{"bytesValue":"not base64!"}})", R"({"body":{"intValue":1.5}})", R"({"body":7})"}) {
        CAPTURE(body);
        auto r = decode(R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[)" + body + "]}]}]}", true);
        REQUIRE_FALSE(r.summary.has_value());
        CHECK(r.summary.error().code == errc::json);
    }
    // A null or empty map is no body (rejected), as in protobuf.
    auto r = decode(
        R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":null}},{"body":null}]}]}]})",
        true);
    REQUIRE(r.summary.has_value());
    CHECK(r.summary->rejected == 2u);
}

TEST_CASE("otlp: repeated fields merge as protobuf merges them; the last oneof wins in JSON too") {
    request req;
    auto* rec = scope_of(req, "svc")->add_log_records();
    rec->mutable_body()->set_string_value("first");
    std::string wire = req.SerializeAsString();
    // The same request with a second, empty body field appended to the record: still "first".
    otlp::logs::v1::LogRecord empty_body;
    empty_body.mutable_body();
    {
        request twice;
        auto* r2 = scope_of(twice, "svc")->add_log_records();
        std::string rec_bytes = rec->SerializeAsString() + empty_body.SerializeAsString();
        REQUIRE(r2->ParseFromString(rec_bytes)); // libprotobuf's own merge: the reference
        CHECK(r2->body().string_value() == "first");
        auto r = decode(twice.SerializeAsString());
        REQUIRE(r.summary.has_value());
        REQUIRE(r.sink.events.size() == 1u);
        CHECK(r.sink.events[0].message == "first");
    }
    // Two array bodies concatenate their values.
    {
        otlp::logs::v1::LogRecord a, b;
        a.mutable_body()->mutable_array_value()->add_values()->set_int_value(1);
        b.mutable_body()->mutable_array_value()->add_values()->set_int_value(2);
        otlp::logs::v1::LogRecord merged;
        REQUIRE(merged.ParseFromString(a.SerializeAsString() + b.SerializeAsString()));
        CHECK(merged.body().array_value().values_size() == 2);
        request r3;
        *scope_of(r3, "svc")->add_log_records() = merged;
        // Encoded as two occurrences on the wire (not the merged message):
        std::string raw = r3.SerializeAsString();
        request split;
        auto* sc = scope_of(split, "svc");
        sc->add_log_records();
        std::string rec_wire = a.SerializeAsString() + b.SerializeAsString();
        std::string scope_wire = "\x12" + varint(rec_wire.size()) + rec_wire;
        std::string rl_wire = split.resource_logs(0).resource().SerializeAsString();
        rl_wire = "\x0a" + varint(rl_wire.size()) + rl_wire + "\x12" + varint(scope_wire.size()) + scope_wire;
        const std::string body = "\x0a" + varint(rl_wire.size()) + rl_wire;
        auto r = decode(body);
        REQUIRE(r.summary.has_value());
        REQUIRE(r.sink.events.size() == 1u);
        CHECK(r.sink.events[0].message == "[1,2]");
        auto m = decode(raw);
        REQUIRE(m.summary.has_value());
        CHECK(m.sink.events[0].message == "[1,2]");
    }
    // JSON: several oneof keys in one AnyValue: the last one, never both.
    auto j = decode(R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"body":{"arrayValue":{"values":[{"stringValue":"a","boolValue":true}]}}},
        {"body":{"boolValue":true,"intValue":"1"}}]}]}]})",
                    true);
    REQUIRE(j.summary.has_value());
    const std::vector<std::string> want = {"[true]", "1"};
    CHECK(j.sink.messages() == want);
}

TEST_CASE("otlp: invalid UTF-8 in a protobuf string is 400; unknown groups are skipped") {
    request req;
    text_record(scope_of(req, "svc"), std::string("bad \xff byte", 10));
    auto r = decode(req.SerializeAsString());
    REQUIRE_FALSE(r.summary.has_value());
    CHECK(r.summary.error().code == errc::protobuf);
    // A request with an unknown group (field 9: start 0x4b, end 0x4c) holding a varint field.
    request ok;
    text_record(scope_of(ok, "svc"), "fine");
    const std::string with_group = ok.SerializeAsString() + std::string("\x4b\x08\x01\x4c", 4);
    auto g = decode(with_group);
    REQUIRE(g.summary.has_value());
    CHECK(g.sink.messages() == std::vector<std::string>{"fine"});
    CHECK_FALSE(decode(std::string("\x4b\x08\x01", 3)).summary.has_value()); // no end group
    CHECK_FALSE(decode(std::string("\x4c", 1)).summary.has_value());         // an end without a start
}

TEST_CASE("otlp: rendering a body is charged to the budget before it grows") {
    // A 1 MiB string of control bytes in an array renders to 6 MiB: over a 4 MiB budget.
    request req;
    text_record(scope_of(req, "svc"), "x")
        ->mutable_body()
        ->mutable_array_value()
        ->add_values()
        ->set_string_value(std::string(1 << 20, '\x01'));
    faultline::core::byte_budget budget(4 << 20);
    decode_limits limits;
    limits.budget = &budget;
    auto r = decode(req.SerializeAsString(), false, false, limits);
    REQUIRE_FALSE(r.summary.has_value());
    CHECK(r.summary.error().code == errc::over_budget);
    CHECK(budget.used() == 0);
    CHECK(r.sink.events.empty());
}
