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
using faultline::core::decode::decoder;
using faultline::core::decode::decode_limits;
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

otlp::logs::v1::LogRecord* text_record(otlp::logs::v1::ScopeLogs* scope, std::string_view body, int severity = 0,
                                       std::string_view severity_text = {}) {
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
    text_record(scope, "disk 3 failed", 17);                // ERROR by number
    text_record(scope, "cache miss", 0, "Information");     // severity text only
    text_record(scope, "plain line");                       // no severity
    auto* map = scope->add_log_records();                   // a map with a message field
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
    SUBCASE("a length past the end, a 11-byte varint, a group, field 0") {
        for (const std::string& bad : {std::string("\x0a\x7f", 2), std::string("\x0a") + std::string(10, '\xff') + "\x01",
                                      std::string("\x0b\x0c", 2), std::string("\x02\x00", 2)}) {
            auto r = decode(bad);
            REQUIRE_FALSE(r.summary.has_value());
            CHECK(r.summary.error().code == errc::protobuf);
            CHECK(r.sink.events.empty());
        }
    }
    SUBCASE("JSON that is not an ExportLogsServiceRequest") {
        for (const char* bad : {"", "[]", "{\"resourceLogs\":{}}", "{\"resourceLogs\":[",
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

TEST_CASE("otlp: JSON as exporters write it: numbers or strings for int64, snake_case, nulls, unknown fields") {
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
        inner += std::string("\xf8\x07\x01", 3);          // field 127 varint: unknown
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
