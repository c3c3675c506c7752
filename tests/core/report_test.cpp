#include "faultline/core/aggregate/report.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <string>

using faultline::core::aggregate::append_json_string;
using faultline::core::aggregate::counts;
using faultline::core::aggregate::render_report;
using faultline::core::aggregate::report_top_templates;
using faultline::test::compile_patterns;
using faultline::test::pattern_id;

namespace {

std::string json(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string u_escape(std::uint32_t unit) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04x", unit);
    return buf;
}

/// What Python's json.dumps(chr(cp), ensure_ascii=True) writes, without the quotes.
std::string python_escape(std::uint32_t cp) {
    switch (cp) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        break;
    }
    if (cp >= 0x20 && cp < 0x7f) return std::string(1, static_cast<char>(cp));
    if (cp < 0x10000) return u_escape(cp);
    const std::uint32_t v = cp - 0x10000;
    return u_escape(0xd800 + (v >> 10)) + u_escape(0xdc00 + (v & 0x3ff));
}

const char* const report_patterns_tsv = "zeta\terror\tzzz\n"
                                        "alpha\twarn\taaa\n"
                                        "mid\terror\tmmm\n"
                                        "beta\terror\tbbb\n"
                                        "Upper\twarn\tUUU\n"
                                        "\xc3\xbc_name\terror\tuuu\n";

} // namespace

// ---------------------------------------------------------------------------------------------
// append_json_string (SEED_BENCH 5)

TEST_CASE("append_json_string: printable ASCII, quote, backslash and slash") {
    CHECK(R"("")" == json(""));
    CHECK(R"("hello world")" == json("hello world"));
    CHECK(R"("a\"b")" == json("a\"b"));
    CHECK(R"("a\\b")" == json("a\\b"));
    CHECK(R"("/aws/lambda/x")" == json("/aws/lambda/x"));
    CHECK(R"("~ !#$%&'()*+,-.:;<=>?@[]^_`{|}")" == json("~ !#$%&'()*+,-.:;<=>?@[]^_`{|}"));
}

TEST_CASE("append_json_string: control characters") {
    CHECK(R"("\b\f\n\r\t")" == json("\b\f\n\r\t"));
    CHECK(R"("\u0000\u0001\u000b\u001b\u001f")" == json(std::string_view("\x00\x01\x0b\x1b\x1f", 5)));
    CHECK(R"("\u007f")" == json("\x7f"));
}

TEST_CASE("append_json_string: non-ASCII as lower-case \\uXXXX, surrogate pairs above U+FFFF") {
    CHECK(R"("\u00e9")" == json("\xc3\xa9"));
    CHECK(R"("\u0080\u00a0\u00ff")" == json("\xc2\x80\xc2\xa0\xc3\xbf"));
    CHECK(R"("\u6771\u4eac")" == json("\xe6\x9d\xb1\xe4\xba\xac"));
    CHECK(R"("\u2028\u2029")" == json("\xe2\x80\xa8\xe2\x80\xa9"));
    CHECK(R"("\uffff")" == json("\xef\xbf\xbf"));
    CHECK(R"("\ud83d\ude00")" == json("\xf0\x9f\x98\x80"));
    CHECK(R"("\ud800\udc00")" == json("\xf0\x90\x80\x80"));
    CHECK(R"("\udbff\udfff")" == json("\xf4\x8f\xbf\xbf"));
    CHECK(R"("a\u00fcb\ud83d\ude00c")" == json("a\xc3\xbc"
                                               "b\xf0\x9f\x98\x80"
                                               "c"));
}

TEST_CASE("append_json_string: every code point is escaped like Python's json.dumps(ensure_ascii=True)") {
    std::size_t wrong = 0;
    for (std::uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue; // not encodable in UTF-8
        const std::string got = json(faultline::test::utf8(cp));
        const std::string expected = "\"" + python_escape(cp) + "\"";
        if (got != expected && ++wrong <= 5) {
            CAPTURE(cp);
            CHECK(expected == got);
        }
    }
    CHECK(std::size_t{0} == wrong);
}

TEST_CASE("append_json_string: each byte that is not valid UTF-8 is written as \\ufffd") {
    CHECK(R"("\ufffd")" == json("\xff"));
    CHECK(R"("a\ufffdb")" == json("a\x80"
                                  "b"));                                // lone continuation byte
    CHECK(R"("\ufffd")" == json("\xc3"));                               // truncated at the end
    CHECK(R"("\ufffd(")" == json("\xc3("));                             // lead byte then ASCII
    CHECK(R"("\ufffd\ufffdx")" == json("\xe6\x9dx"));                   // truncated 3-byte sequence
    CHECK(R"("\ufffd\ufffd")" == json("\xc0\xaf"));                     // overlong '/'
    CHECK(R"("\ufffd\ufffd\ufffd")" == json("\xe0\x80\xaf"));           // overlong 3-byte
    CHECK(R"("\ufffd\ufffd\ufffd")" == json("\xed\xa0\x80"));           // UTF-16 surrogate U+D800
    CHECK(R"("\ufffd\ufffd\ufffd\ufffd")" == json("\xf4\x90\x80\x80")); // above U+10FFFF
    CHECK(R"("\ufffd\ufffd\ufffd\ufffd")" == json("\xf5\x80\x80\x80"));
    CHECK(R"("\ufffd\u00e9")" == json("\xff\xc3\xa9")); // recovers at the next sequence
}

TEST_CASE("append_json_string: appends to what is already there") {
    std::string out = "{\"k\":";
    append_json_string(out, "v");
    out += ',';
    append_json_string(out, "\n");
    CHECK(R"({"k":"v","\n")" == out);
}

// ---------------------------------------------------------------------------------------------
// render_report

TEST_CASE("render_report: golden file (tests/data/report.golden, from make_report_golden.py)") {
    auto set = compile_patterns(report_patterns_tsv, "report.tsv");
    REQUIRE(std::size_t{6} == set->size());
    const auto id = [&](std::string_view name) { return pattern_id(*set, name); };

    counts c(set->size());
    c.documents = 7;
    c.events = 1234;
    c.control_messages = 2;
    c.patterns[id("zeta")] = 5;
    c.patterns[id("mid")] = 3;
    c.patterns[id("Upper")] = 1;
    c.patterns[id("\xc3\xbc_name")] = 2;

    auto group = [&](const std::string& name) -> std::vector<std::uint64_t>& {
        return c.by_group.emplace(name, std::vector<std::uint64_t>(set->size(), 0)).first->second;
    };
    group("/aws/lambda/b")[id("zeta")] = 2;
    group("/aws/lambda/b")[id("Upper")] = 1;
    group("/aws/lambda/a")[id("zeta")] = 3;
    group("/aws/lambda/a")[id("mid")] = 3;
    group("/aws/lambda/a")[id("\xc3\xbc_name")] = 2;
    group("zero-group"); // all zero: not listed
    group(std::string("grp \"q\" \\ \xe6\x9d\xb1\xf0\x9f\x98\x80\x01/"))[id("alpha")] = 4;

    c.templates["tpl <NUM> a"].count = 10;
    c.templates["tpl <NUM> b"].count = 10;
    c.templates["Tpl"].count = 10;
    c.templates["\xe6\x9d\xb1\xe4\xba\xac <NUM>"].count = 10;
    c.templates["\xf0\x9f\x98\x80 emoji"].count = 10;
    c.templates[""].count = 3;
    c.templates["quote \" back \\ slash / tab \t ctrl \x01\x1f del \x7f nbsp \xc2\xa0 ls \xe2\x80\xa8"]
        .count = 9;
    c.templates["big"].count = 1000;
    for (int i = 0; i < 20; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "filler-%02d", i);
        c.templates[name].count = static_cast<std::uint64_t>(1 + i % 3);
    }
    REQUIRE(std::size_t{28} == c.templates.size());

    const std::string expected = faultline::test::read_data("report.golden");
    const std::string got = render_report(c, *set);
    CHECK(expected == got);
    CHECK(got.ends_with("}\n"));
    CHECK(got.size() - 1 == got.find('\n')); // one line
}

TEST_CASE("render_report: empty totals list every pattern with 0") {
    auto set = compile_patterns(report_patterns_tsv, "report.tsv");
    counts c(set->size());
    CHECK(std::string(R"({"documents":0,"events":0,"control_messages":0,)"
                      R"("patterns":{"Upper":0,"alpha":0,"beta":0,"mid":0,"zeta":0,"\u00fc_name":0},)"
                      R"("by_group":{},"top_templates":[]})"
                      "\n") == render_report(c, *set));
}

TEST_CASE("render_report: top_templates is capped at 20, by count then bytes") {
    CHECK(std::size_t{20} == report_top_templates);
    auto set = compile_patterns("p\terror\tx\n");
    counts c(set->size());
    for (int i = 0; i < 50; ++i)
        c.templates["t" + std::to_string(100 + i)].count = static_cast<std::uint64_t>(i % 5);
    const std::string out = render_report(c, *set);
    // Counts 4 (t104, t109, ..., t149: 10 of them), then 3 (t103, t108, ...): 20 in all.
    std::string expected_top = "\"top_templates\":[";
    int listed = 0;
    for (int count = 4; count >= 0 && listed < 20; --count)
        for (int i = 0; i < 50 && listed < 20; ++i)
            if (i % 5 == count) {
                if (listed++) expected_top += ',';
                expected_top += "{\"template\":\"t" + std::to_string(100 + i) +
                                "\",\"count\":" + std::to_string(count) + "}";
            }
    expected_top += "]}\n";
    CHECK(out.ends_with(expected_top));
}

TEST_CASE("render_report: a group's missing or short count vector is read as zeros") {
    auto set = compile_patterns("a\terror\tx\nb\terror\ty\n");
    counts c(set->size());
    c.by_group["short"] = {0};      // shorter than the pattern set, all zero
    c.by_group["partial"] = {0, 7}; // only b
    c.patterns = {0, 7};
    CHECK(std::string(R"({"documents":0,"events":0,"control_messages":0,"patterns":{"a":0,"b":7},)"
                      R"("by_group":{"partial":{"b":7}},"top_templates":[]})"
                      "\n") == render_report(c, *set));
}
