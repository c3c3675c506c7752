#include "faultline/core/mine/masker.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using faultline::core::mine::mask_message;
using faultline::core::mine::max_template_bytes;

namespace {

// --- masks.golden: one {"in": "...", "out": "..."} per line, written by make_masks_golden.py with
// json.dumps(ensure_ascii=True), so strings hold only \" \\ \/ \b \f \n \r \t and \uXXXX escapes.

std::uint32_t hex4(std::string_view s, std::size_t i) {
    if (i + 4 > s.size()) throw std::runtime_error("truncated \\u escape");
    std::uint32_t v = 0;
    for (std::size_t k = i; k < i + 4; ++k) {
        const char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= static_cast<std::uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= static_cast<std::uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= static_cast<std::uint32_t>(c - 'A' + 10);
        else
            throw std::runtime_error("bad hex digit in \\u escape");
    }
    return v;
}

/// Parses the JSON string starting at s[i] == '"'; leaves i after the closing quote.
std::string parse_string(std::string_view s, std::size_t& i) {
    if (i >= s.size() || s[i] != '"') throw std::runtime_error("expected a string");
    ++i;
    std::string out;
    while (i < s.size() && s[i] != '"') {
        if (s[i] != '\\') {
            out += s[i++];
            continue;
        }
        if (++i >= s.size()) throw std::runtime_error("truncated escape");
        const char e = s[i++];
        switch (e) {
        case '"':
            out += '"';
            break;
        case '\\':
            out += '\\';
            break;
        case '/':
            out += '/';
            break;
        case 'b':
            out += '\b';
            break;
        case 'f':
            out += '\f';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case 't':
            out += '\t';
            break;
        case 'u': {
            std::uint32_t cp = hex4(s, i);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u')
                    throw std::runtime_error("lone surrogate");
                const std::uint32_t lo = hex4(s, i + 2);
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            out += faultline::test::utf8(cp);
            break;
        }
        default:
            throw std::runtime_error("unknown escape");
        }
    }
    if (i >= s.size()) throw std::runtime_error("unterminated string");
    ++i;
    return out;
}

void expect(std::string_view s, std::size_t& i, std::string_view lit) {
    if (s.substr(i, lit.size()) != lit) throw std::runtime_error("expected " + std::string(lit));
    i += lit.size();
}

struct golden_case {
    std::size_t line;
    std::string in, out;
};

std::vector<golden_case> load_golden() {
    const std::string text = faultline::test::read_data("masks.golden");
    std::vector<golden_case> cases;
    std::size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
        const std::size_t nl = text.find('\n', pos);
        const std::string_view line =
            std::string_view(text).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        ++line_no;
        if (line.empty()) continue;
        std::size_t i = 0;
        golden_case c;
        c.line = line_no;
        expect(line, i, "{\"in\": ");
        c.in = parse_string(line, i);
        expect(line, i, ", \"out\": ");
        c.out = parse_string(line, i);
        expect(line, i, "}");
        if (i != line.size())
            throw std::runtime_error("trailing bytes on masks.golden line " + std::to_string(line_no));
        cases.push_back(std::move(c));
    }
    return cases;
}

/// True when `s` is well-formed UTF-8 (no truncated sequence at the end).
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t len = c < 0x80         ? 1
                                : (c >> 5) == 6  ? 2
                                : (c >> 4) == 14 ? 3
                                : (c >> 3) == 30 ? 4
                                                 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

} // namespace

TEST_CASE("masker: the examples of SEED_BENCH 3.2") {
    CHECK("<IP>:<NUM>" == mask_message("10.0.0.1:123456"));
    CHECK("<IP>.<NUM>" == mask_message("1.2.3.4.5"));
    CHECK("<NUM>.<NUM>" == mask_message("1234.5.6.7"));
    CHECK("<NUM>.<NUM>" == mask_message("3.14.15"));
    CHECK("v<NUM>" == mask_message("v2"));
    CHECK("<ID>" == mask_message("1234567890123456"));
    CHECK("<NUM>" == mask_message("123456789012345"));
}

TEST_CASE("masker: each mask") {
    CHECK("req <UUID> done" == mask_message("req 123e4567-e89b-12d3-a456-426614174000 done"));
    CHECK("req <UUID> done" == mask_message("req 123E4567-E89B-12D3-A456-426614174000 done"));
    CHECK("<UUID>" == mask_message("123e4567-E89B-12d3-A456-426614174000"));
    CHECK("from <IP> to <IP>" == mask_message("from 10.0.0.1:8080 to 192.168.1.254"));
    CHECK("<IP>:" == mask_message("1.2.3.4:"));
    CHECK("addr=<HEX>, <HEX>" == mask_message("addr=0xDEADbeef, 0X1f"));
    CHECK("<ID> <ID>" == mask_message("deadbeefcafebabe 0123456789abcdef0123"));
    CHECK("deadbeefcafebab" == mask_message("deadbeefcafebab")); // 15 hex digits, no digit in it
    CHECK("took <NUM> ms, <NUM> retries" == mask_message("took 12.5 ms, 3 retries"));
}

TEST_CASE("masker: 0x literals that are not one hex word are not <HEX>") {
    CHECK("<NUM>x<NUM>F_ff" == mask_message("0x1F_ff"));
    CHECK("<NUM>x<NUM>g" == mask_message("0x7g"));
    CHECK("<NUM>x" == mask_message("0x"));
    CHECK("x<NUM>x<NUM>f" == mask_message("x0x1f"));
    CHECK("<HEX>.<NUM>" == mask_message("0x12.5"));
    CHECK("<NUM>.<HEX>" == mask_message("3.0x1f"));
}

TEST_CASE("masker: whitespace collapse and trimming") {
    CHECK("a b c d e f" == mask_message("a\tb\nc\vd\fe\rf"));
    CHECK("a b" == mask_message("  \t a \r\n\r\n\t\v\f  b \n "));
    CHECK("" == mask_message(" \t\n\v\f\r "));
    CHECK("" == mask_message(""));
    // U+00A0, U+2028 and U+3000 are not collapsed nor trimmed.
    CHECK("\xc2\xa0x\xc2\xa0y\xc2\xa0" == mask_message("\xc2\xa0x\xc2\xa0y\xc2\xa0"));
    CHECK("a\xe2\x80\xa8 b\xe3\x80\x80" == mask_message(" a\xe2\x80\xa8  b\xe3\x80\x80 "));
    // Other control characters are kept.
    CHECK(std::string("a\x1c\x01\x7f b\0", 7) == mask_message(std::string_view("a\x1c\x01\x7f b\0", 7)));
}

TEST_CASE("masker: truncation at 200 bytes") {
    SUBCASE("exactly 200 bytes are kept") {
        const std::string s(200, 'w');
        CHECK(s == mask_message(s));
    }
    SUBCASE("201 bytes are cut to 200") {
        CHECK(std::string(200, 'w') == mask_message(std::string(201, 'w')));
    }
    SUBCASE("the cut never splits a UTF-8 sequence") {
        // 199 'w' + U+6771 (3 bytes): byte 200 is a continuation byte, so the cut moves back to 199.
        CHECK(std::string(199, 'w') == mask_message(std::string(199, 'w') + "\xe6\x9d\xb1"));
        // 198 'w' + U+1F600 (4 bytes) + 'z'
        CHECK(std::string(198, 'w') == mask_message(std::string(198, 'w') + "\xf0\x9f\x98\x80" + "z"));
        // 196 'w' + U+1F600 ends exactly at 200: kept whole.
        CHECK(std::string(196, 'w') + "\xf0\x9f\x98\x80" ==
              mask_message(std::string(196, 'w') + "\xf0\x9f\x98\x80" + "z"));
        // 199 'w' + U+00FC: 201 bytes, byte 200 is a continuation byte.
        CHECK(std::string(199, 'w') == mask_message(std::string(199, 'w') + "\xc3\xbc"));
    }
    SUBCASE("the result is not trimmed again: a trailing space can remain") {
        CHECK(std::string(199, 'w') + " " == mask_message(std::string(199, 'w') + "   \t z"));
    }
    SUBCASE("a template that fits after collapsing is not cut") {
        const std::string s = std::string(100, 'w') + std::string(300, ' ') + std::string(99, 'z');
        CHECK(std::string(100, 'w') + " " + std::string(99, 'z') == mask_message(s));
    }
    SUBCASE("masks count with their replacement length") {
        std::string s;
        for (int i = 0; i < 60; ++i)
            s += "1.2.3.4 "; // 60 * "<IP> " = 300 bytes before the cut
        const std::string t = mask_message(s);
        CHECK(max_template_bytes == t.size());
        CHECK(t.starts_with("<IP> <IP> "));
    }
    SUBCASE("a huge message") {
        std::string s;
        for (int i = 0; i < 100000; ++i)
            s += "\xe6\x9d\xb1 x 12 ";
        const std::string t = mask_message(s);
        CHECK(t.size() <= max_template_bytes);
        CHECK(t.size() >= max_template_bytes - 3);
        CHECK(valid_utf8(t));
        CHECK(t.starts_with("\xe6\x9d\xb1 x <NUM> \xe6\x9d\xb1"));
    }
}

TEST_CASE("masker: the output string is replaced, not appended to") {
    std::string out = "previous template that is quite long";
    mask_message("ERROR 42", out);
    CHECK("ERROR <NUM>" == out);
    mask_message("", out);
    CHECK(out.empty());
}

TEST_CASE("masker: golden file from the Python reference (tests/data/masks.golden)") {
    const auto cases = load_golden();
    REQUIRE(cases.size() >= 500);
    std::size_t mismatches = 0;
    std::string out;
    for (const auto& c : cases) {
        mask_message(c.in, out);
        if (out != c.out) {
            ++mismatches;
            CAPTURE(c.line);
            CAPTURE(c.in);
            CHECK(c.out == out);
        }
        CHECK(out.size() <= max_template_bytes);
        CHECK(valid_utf8(out));
    }
    CHECK(std::size_t{0} == mismatches);
}

TEST_CASE("masker: golden inputs masked inside a longer message keep their template") {
    // The scanner has no state across a whitespace boundary: "<x> <y>" masks to template(x) + " " +
    // template(y).
    const auto cases = load_golden();
    std::string out;
    for (std::size_t i = 0; i + 1 < cases.size() && i < 200; ++i) {
        const auto& a = cases[i];
        const auto& b = cases[i + 1];
        if (a.out.empty() || b.out.empty() || a.out.size() + 1 + b.out.size() > max_template_bytes) continue;
        mask_message(a.in + " " + b.in, out);
        CAPTURE(a.line);
        CHECK(a.out + " " + b.out == out);
    }
}

TEST_CASE("masker: the template may be five times its message (lone digits), up to any max_bytes") {
    // Every byte a lone digit or a separator: the most the output can grow. Under ASan (CI's
    // sanitizer run) a write past the room the masker sets aside would be reported.
    std::string in, want;
    for (int i = 0; i < 300; ++i) {
        in += "1-";
        want += "<NUM>-";
    }
    std::string out;
    mask_message(in, out, 100000);
    CHECK(want == out);
    mask_message(in, out, 7); // cut inside the run: "<NUM>-<"
    CHECK("<NUM>-<" == out);
    std::string spaced, spaced_want;
    for (int i = 0; i < 300; ++i) {
        spaced += " 7 ";
        spaced_want += std::string(spaced_want.empty() ? "" : " ") + "<NUM>";
    }
    mask_message(spaced, out, 100000);
    CHECK(spaced_want == out);
    mask_message("", out, 100000);
    CHECK(out.empty());
    mask_message("5", out, 0); // nothing kept
    CHECK(out.empty());
}
