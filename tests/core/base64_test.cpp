#include "faultline/core/decode/base64.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

using faultline::core::errc;
using faultline::core::decode::base64_decode;
using faultline::core::decode::base64_encode;
using faultline::test::contains;
using faultline::test::error_text;

namespace {

std::string decoded(std::string_view in) {
    std::string out;
    auto r = base64_decode(in, out);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    return out;
}

} // namespace

TEST_CASE("base64: RFC 4648 section 10 test vectors") {
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        const auto& plain_shown = plain; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(plain_shown);
        CHECK(encoded == base64_encode(plain));
        CHECK(plain == decoded(encoded));
    }
}

TEST_CASE("base64: round trip of random bytes of every length 0..64") {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t len = 0; len <= 64; ++len) {
        for (int rep = 0; rep < 8; ++rep) {
            std::string in(len, '\0');
            for (auto& c : in)
                c = static_cast<char>(byte(rng));
            const std::string enc = base64_encode(in);
            CAPTURE(len);
            CHECK((len + 2) / 3 * 4 == enc.size());
            CHECK(in == decoded(enc));
        }
    }
}

TEST_CASE("base64: all 256 byte values survive a round trip") {
    std::string all;
    for (int i = 0; i < 256; ++i)
        all += static_cast<char>(i);
    CHECK(all == decoded(base64_encode(all)));
    // The '+' and '/' of the standard alphabet (not the URL-safe '-' and '_').
    CHECK("+/+/" == base64_encode("\xfb\xff\xbf"));
}

TEST_CASE("base64: a bad character is an error naming its offset") {
    std::string out;
    SUBCASE("in a full quantum") {
        auto r = base64_decode("Zm9v*m9v", out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "offset 4"), r.error().message);
        CHECK_MESSAGE(contains(r.error().message, "'*'"), r.error().message);
    }
    SUBCASE("in the last quantum") {
        auto r = base64_decode("Zm9vY!==", out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "offset 5"), r.error().message);
    }
    SUBCASE("URL-safe alphabet is not accepted") {
        auto r = base64_decode("ab-_", out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "offset 2"), r.error().message);
    }
    SUBCASE("a non-printable byte") {
        auto r = base64_decode(std::string_view("Zm9v\x00m9v", 8), out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "offset 4"), r.error().message);
    }
}

TEST_CASE("base64: a length that is not a multiple of 4 is an error") {
    std::string out;
    for (std::string_view in : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYmFy="}) {
        CAPTURE(in);
        auto r = base64_decode(in, out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "multiple of 4"), r.error().message);
    }
}

TEST_CASE("base64: '=' anywhere but the end is an error") {
    std::string out;
    for (std::string_view in : {"Zg==Zm9v", "Z===", "=Zm9", "Zm=v", "Zm9v=m9v", "====", "Zm9vY=Fy"}) {
        CAPTURE(in);
        auto r = base64_decode(in, out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
    }
    auto r = base64_decode("Zg==Zm9v", out);
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(contains(r.error().message, "offset 2"), r.error().message);
}

TEST_CASE("base64: non-canonical trailing bits are rejected") {
    std::string out;
    for (std::string_view in : {"Zh==", "Zm9=", "Zm9vYh==", "Zm9vYmF="}) {
        CAPTURE(in);
        auto r = base64_decode(in, out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "non-canonical"), r.error().message);
    }
    // Their canonical forms decode.
    CHECK("f" == decoded("Zg=="));
    CHECK("fo" == decoded("Zm8="));
}

TEST_CASE("base64: whitespace is rejected") {
    std::string out;
    for (std::string_view in : {"Zm9v\nYmFy", "Zm9v YmFy", " Zm9vYmF", "Zm9vYmFy\r\n", "Zm9\tv"}) {
        CAPTURE(in);
        auto r = base64_decode(in, out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::base64 == r.error().code);
    }
}

TEST_CASE("base64: decoding replaces the previous contents of out") {
    std::string out = "previous contents that are longer";
    REQUIRE(base64_decode("Zm9v", out).has_value());
    CHECK("foo" == out);
    REQUIRE(base64_decode("", out).has_value());
    CHECK(out.empty());
}

TEST_CASE("base64: long inputs decode as the quantum-at-a-time rule does, block by block, and every "
          "byte outside the alphabet is named wherever it stands") {
    // The decoder takes 16 characters at a time while they are all in the alphabet: the same
    // bytes as the one-quantum rule for every length and content, and the same error, naming
    // the first bad character, whichever block it is in.
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t len = 0; len < 200; ++len) {
        std::string plain(len, '\0');
        for (auto& c : plain)
            c = static_cast<char>(byte(rng));
        CHECK(decoded(base64_encode(plain)) == plain);
    }
    const std::string plain(150, 'x');
    const std::string good = base64_encode(plain); // 200 characters, no padding
    std::string in_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 0; c < 256; ++c) {
        const bool valid = in_alphabet.find(static_cast<char>(c)) != std::string::npos;
        for (const std::size_t at : {std::size_t{0}, std::size_t{7}, std::size_t{15}, std::size_t{16},
                                     std::size_t{100}, std::size_t{179}, std::size_t{195}}) {
            std::string bad = good;
            bad[at] = static_cast<char>(c);
            std::string out;
            const auto r = base64_decode(bad, out);
            if (valid) {
                CHECK_MESSAGE(r.has_value(), "byte ", c, " at ", at);
                // The same as a decoding of the same characters one quantum at a time: the
                // block's other 15 characters untouched, this one's 6 bits where they belong.
                std::string rebuilt;
                for (std::size_t q = 0; q < bad.size(); q += 4)
                    rebuilt += decoded(bad.substr(q, 4));
                CHECK(out == rebuilt);
            } else {
                REQUIRE_FALSE_MESSAGE(r.has_value(), "byte ", c, " at ", at);
                CHECK_MESSAGE(contains(r.error().message, "at offset " + std::to_string(at)),
                              r.error().message);
            }
        }
    }
}
