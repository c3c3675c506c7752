#include "faultline/core/constant_time.hpp"
#include "faultline/core/decode/firehose_http.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

namespace fh = faultline::core::decode::firehose_http;

namespace {

/// A head as a map of header names to values (names exact, as the rules spell them).
fh::header_fn head(std::map<std::string, std::string, std::less<>> fields) {
    return [fields = std::move(fields)](std::string_view name) -> std::string_view {
        const auto it = fields.find(name);
        return it == fields.end() ? std::string_view() : std::string_view(it->second);
    };
}

const std::vector<std::string> keys{"first-key-0123456789", "second-key-0123456789"};

} // namespace

TEST_CASE("firehose_http: without access keys configured any head passes; with them, the key must be "
          "one of them, and a missing or wrong one is refused as unauthorized, naming the header") {
    CHECK_FALSE(fh::check_head(head({}), {}));
    CHECK_FALSE(fh::check_head(head({{"X-Amz-Firehose-Access-Key", "anything"}}), {}));
    CHECK_FALSE(fh::check_head(head({{"X-Amz-Firehose-Access-Key", "second-key-0123456789"}}), keys));

    auto missing = fh::check_head(head({}), keys);
    REQUIRE(missing);
    CHECK(missing->why == fh::refusal::kind::unauthorized);
    CHECK(missing->message == "X-Amz-Firehose-Access-Key is missing");

    for (const char* wrong : {"first-key-012345678", "first-key-01234567890", "FIRST-KEY-0123456789", " "}) {
        CAPTURE(wrong);
        auto bad = fh::check_head(head({{"X-Amz-Firehose-Access-Key", wrong}}), keys);
        REQUIRE(bad);
        CHECK(bad->why == fh::refusal::kind::unauthorized);
        CHECK(bad->message == "X-Amz-Firehose-Access-Key is not valid");
    }
}

TEST_CASE("firehose_http: the protocol version, when given, is 1.0; the key is checked first") {
    CHECK_FALSE(fh::check_head(head({{"X-Amz-Firehose-Protocol-Version", "1.0"}}), {}));
    for (const char* v : {"2.0", "1", "1.0 ", "1.00"}) {
        CAPTURE(v);
        auto r = fh::check_head(head({{"X-Amz-Firehose-Protocol-Version", v}}), {});
        REQUIRE(r);
        CHECK(r->why == fh::refusal::kind::bad_request);
        CHECK(r->message == "unsupported X-Amz-Firehose-Protocol-Version (expected 1.0)");
    }
    auto both = fh::check_head(head({{"X-Amz-Firehose-Protocol-Version", "2.0"}}), keys);
    REQUIRE(both);
    CHECK(both->why == fh::refusal::kind::unauthorized);
}

TEST_CASE("firehose_http: raw-text records take the common attributes' logGroup, else the delivery "
          "stream of the source ARN, else \"firehose\"; a damaged header never reads past its end") {
    const std::string arn = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/orders-stream";
    CHECK(fh::text_group(head({})) == "firehose");
    CHECK(fh::text_group(head({{"X-Amz-Firehose-Source-Arn", arn}})) == "orders-stream");
    CHECK(fh::text_group(head({{"X-Amz-Firehose-Source-Arn", "no-slash"}})) == "no-slash");
    CHECK(fh::text_group(head({{"X-Amz-Firehose-Source-Arn", "ends-with/"}})) == "firehose");
    CHECK(fh::text_group(head({{"X-Amz-Firehose-Source-Arn", arn},
                               {"X-Amz-Firehose-Common-Attributes",
                                R"({"commonAttributes":{"logGroup":"/aws/lambda/checkout"}})"}})) ==
          "/aws/lambda/checkout");
    // Damaged or empty attributes fall back to the stream.
    for (const char* attrs : {R"({"commonAttributes":{"logGroup":"unterminated)", R"({"logGroup")",
                              R"({"logGroup":)", R"({"logGroup":"")", R"({"other":"x"})", R"("logGroup")"}) {
        CAPTURE(attrs);
        CHECK(fh::text_group(head({{"X-Amz-Firehose-Source-Arn", arn},
                                   {"X-Amz-Firehose-Common-Attributes", attrs}})) == "orders-stream");
    }
}

TEST_CASE("firehose_http: the response carries the request id and the time, and the error message "
          "when there is one, as JSON strings") {
    CHECK(fh::response_body("abc-1", 1764201600000) == R"({"requestId":"abc-1","timestamp":1764201600000})");
    CHECK(fh::response_body("", 5, "busy: retry later") ==
          R"({"requestId":"","timestamp":5,"errorMessage":"busy: retry later"})");
    CHECK(fh::response_body("a\"b\\c\n", 1, "x\ty") ==
          R"({"requestId":"a\"b\\c\n","timestamp":1,"errorMessage":"x\ty"})");
}

TEST_CASE("constant_time_equal: equal strings only; a different length or any different byte is not") {
    using faultline::core::constant_time_equal;
    CHECK(constant_time_equal("", ""));
    CHECK(constant_time_equal("secret", "secret"));
    CHECK_FALSE(constant_time_equal("secret", "secreT"));
    CHECK_FALSE(constant_time_equal("Secret", "secret"));
    CHECK_FALSE(constant_time_equal("secret", "secret2"));
    CHECK_FALSE(constant_time_equal("", "x"));
    CHECK_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}
