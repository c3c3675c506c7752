#include "faultline/core/decode/gzip.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

using faultline::core::errc;
using faultline::core::decode::gzip_compress;
using faultline::core::decode::inflater;
using faultline::core::decode::looks_gzipped;
using faultline::test::contains;
using faultline::test::error_text;

namespace {

constexpr std::size_t one_mib = std::size_t{1} << 20;

std::string random_text(std::size_t n, unsigned seed) {
    static constexpr char alphabet[] = "abcdefghij ERROR 0123456789\n\t{}\"\\:,.xyz";
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> pick(0, sizeof alphabet - 2); // not the NUL
    std::string s(n, '\0');
    for (auto& c : s)
        c = alphabet[pick(rng)];
    return s;
}

std::string inflate(std::string_view gz, std::size_t max_output = 64 * one_mib) {
    inflater inf(max_output);
    std::string out;
    auto r = inf.decompress(gz, out);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    return out;
}

} // namespace

TEST_CASE("gzip: gzip_compress output is gzip and round trips") {
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{4096}, std::size_t{300000}}) {
        CAPTURE(n);
        const std::string in = random_text(n, static_cast<unsigned>(n));
        const std::string gz = gzip_compress(in);
        CHECK(looks_gzipped(gz));
        CHECK(in == inflate(gz));
        CHECK(in == inflate(gzip_compress(in, 1)));
        CHECK(in == inflate(gzip_compress(in, 12)));
    }
}

TEST_CASE("gzip: looks_gzipped checks the 1f 8b magic") {
    CHECK(looks_gzipped("\x1f\x8b"));
    CHECK_FALSE(looks_gzipped("\x1f"));
    CHECK_FALSE(looks_gzipped(""));
    CHECK_FALSE(looks_gzipped("{\"a\":1}"));
    CHECK_FALSE(looks_gzipped("\x8b\x1f"));
}

TEST_CASE("gzip: concatenated members decode to the concatenation") {
    const std::string a = random_text(5000, 1), b = random_text(7000, 2), c = "tail";
    CHECK(a + b == inflate(gzip_compress(a) + gzip_compress(b)));
    CHECK(a + b + c == inflate(gzip_compress(a) + gzip_compress(b) + gzip_compress(c)));
    // An empty member in the middle contributes nothing.
    CHECK(a + c == inflate(gzip_compress(a) + gzip_compress("") + gzip_compress(c)));
}

TEST_CASE("gzip: a fixture member written by another gzip implementation decodes") {
    const std::string gz = faultline::test::read_data("fixtures/firehose/cwl_via_firehose_request.json.gz");
    const std::string plain = faultline::test::read_data("fixtures/firehose/cwl_via_firehose_request.json");
    CHECK(plain == inflate(gz));
}

TEST_CASE("gzip: truncated input is an error wherever it is cut") {
    const std::string gz = gzip_compress(random_text(20000, 7));
    inflater inf(64 * one_mib);
    std::string out;
    for (std::size_t cut :
         {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{9}, std::size_t{10}, std::size_t{11},
          gz.size() / 2, gz.size() - 9, gz.size() - 8, gz.size() - 4, gz.size() - 1}) {
        CAPTURE(cut);
        auto r = inf.decompress(std::string_view(gz).substr(0, cut), out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::gzip == r.error().code);
    }
    // The second of two members truncated.
    const std::string two = gz + gz;
    auto r = inf.decompress(std::string_view(two).substr(0, two.size() - 3), out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "offset " + std::to_string(gz.size())), r.error().message);
}

TEST_CASE("gzip: a flipped byte in the CRC trailer is a CRC error") {
    std::string gz = gzip_compress(random_text(3000, 3));
    gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0x01);
    inflater inf(64 * one_mib);
    std::string out;
    auto r = inf.decompress(gz, out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "CRC"), r.error().message);
}

TEST_CASE("gzip: a wrong ISIZE in the trailer is an error") {
    std::string gz = gzip_compress(random_text(3000, 4));
    gz[gz.size() - 4] = static_cast<char>(gz[gz.size() - 4] ^ 0x01);
    inflater inf(64 * one_mib);
    std::string out;
    auto r = inf.decompress(gz, out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
}

TEST_CASE("gzip: a decompression bomb stops at max_output") {
    const std::string zeros(64 * one_mib, '\0');
    const std::string bomb = gzip_compress(zeros, 9);
    REQUIRE(bomb.size() < one_mib / 4);
    inflater inf(one_mib);
    std::string out;
    auto r = inf.decompress(bomb, out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::too_large == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "1048576"), r.error().message);
    CHECK(out.capacity() <= 2 * one_mib); // never allocated anywhere near the 64 MiB

    SUBCASE("a trailer that lies about the size does not help") {
        std::string liar = bomb;
        liar[liar.size() - 4] = 0; // ISIZE = 0
        liar[liar.size() - 3] = 0;
        liar[liar.size() - 2] = 0;
        liar[liar.size() - 1] = 0;
        auto r2 = inf.decompress(liar, out);
        REQUIRE_FALSE(r2.has_value());
        CHECK(errc::too_large == r2.error().code);
    }
    SUBCASE("the cap counts all members together") {
        const std::string half(one_mib / 2 + 1, 'a');
        const std::string gz = gzip_compress(half);
        CHECK(inf.decompress(gz, out).has_value());
        auto r2 = inf.decompress(gz + gz, out);
        REQUIRE_FALSE(r2.has_value());
        CHECK(errc::too_large == r2.error().code);
    }
    SUBCASE("exactly max_output bytes is allowed") {
        const std::string exact(one_mib, 'z');
        auto r2 = inf.decompress(gzip_compress(exact), out);
        REQUIRE_MESSAGE(r2.has_value(), error_text(r2));
        CHECK(exact == out);
    }
}

TEST_CASE("gzip: trailing garbage after a member is an error") {
    const std::string gz = gzip_compress("hello world");
    inflater inf(one_mib);
    std::string out;
    for (std::string_view tail : {std::string_view("x"), std::string_view("\0\0\0\0", 4),
                                  std::string_view("\n"), std::string_view("\x1f")}) {
        CAPTURE(tail.size());
        auto r = inf.decompress(gz + std::string(tail), out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::gzip == r.error().code);
    }
}

TEST_CASE("gzip: empty input and non-gzip data are errors") {
    inflater inf(one_mib);
    std::string out = "stale";
    auto empty = inf.decompress("", out);
    REQUIRE_FALSE(empty.has_value());
    CHECK(errc::gzip == empty.error().code);

    for (std::string_view bad : {std::string_view("{\"messageType\":\"DATA_MESSAGE\"}"),
                                 std::string_view("plain text that is long enough"),
                                 std::string_view("\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03xxxxxxxxxx", 20),
                                 std::string_view("\x1f\x8b", 2)}) {
        auto r = inf.decompress(bad, out);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::gzip == r.error().code);
    }
    // A valid header followed by garbage instead of deflate data.
    std::string corrupt = gzip_compress(random_text(2000, 9));
    for (std::size_t i = 10; i < 40; ++i)
        corrupt[i] = static_cast<char>(0xff);
    auto r = inf.decompress(corrupt, out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::gzip == r.error().code);
}

TEST_CASE("gzip: optional header fields (FEXTRA, FNAME, FCOMMENT, FHCRC) are skipped") {
    const std::string plain = "with header fields";
    const std::string gz = gzip_compress(plain);
    // Rebuild the member with FLG = FEXTRA|FNAME|FCOMMENT|FHCRC.
    std::string h = gz.substr(0, 10);
    h[3] = static_cast<char>(0x04 | 0x08 | 0x10 | 0x02);
    h += std::string("\x03\x00"
                     "abc",
                     5); // XLEN = 3
    h += std::string("name.txt\0", 9);
    h += std::string("a comment\0", 10);
    h += std::string("\x00\x00", 2); // header CRC16 (not checked)
    CHECK(plain == inflate(h + gz.substr(10)));
}

TEST_CASE("gzip: output keeps the requested extra capacity") {
    inflater inf(one_mib);
    for (std::size_t n : {std::size_t{0}, std::size_t{10}, std::size_t{4096}, std::size_t{100000}}) {
        const std::string plain = random_text(n, 11);
        std::string out;
        auto r = inf.decompress(gzip_compress(plain), out, 64);
        REQUIRE_MESSAGE(r.has_value(), error_text(r));
        CHECK(plain == out);
        CHECK(out.capacity() >= out.size() + 64);
    }
    CHECK(one_mib == inf.max_output());
    inf.set_max_output(10);
    CHECK(std::size_t{10} == inf.max_output());
    std::string out;
    auto r = inf.decompress(gzip_compress(std::string(11, 'a')), out);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::too_large == r.error().code);
}

TEST_CASE("gzip: a reused output buffer holds exactly each call's data, and nothing after a failure") {
    // The decoders pass the same buffer record after record: what a longer record left in it
    // must never show in a shorter one, in one member or several, nor survive a failure.
    inflater inf(one_mib);
    std::string out;
    const std::string big = random_text(100000, 21), small = random_text(300, 22),
                      mid = random_text(5000, 23);
    REQUIRE(inf.decompress(gzip_compress(big), out, 64).has_value());
    CHECK(out == big);
    REQUIRE(inf.decompress(gzip_compress(small), out, 64).has_value());
    CHECK(out == small);
    CHECK(out.capacity() >= out.size() + 64);
    // Two members, the first shorter than what the buffer held, the second growing it again.
    REQUIRE(inf.decompress(gzip_compress(mid) + gzip_compress(big), out, 64).has_value());
    CHECK(out == mid + big);
    REQUIRE(inf.decompress(gzip_compress(small) + gzip_compress(small), out, 64).has_value());
    CHECK(out == small + small);
    // An empty member after a full buffer: empty.
    REQUIRE(inf.decompress(gzip_compress(""), out, 64).has_value());
    CHECK(out.empty());
    CHECK(out.capacity() >= 64);
    // Hostile: every failure empties it, also after a member that was good.
    REQUIRE(inf.decompress(gzip_compress(big), out).has_value());
    std::string corrupt = gzip_compress(mid);
    corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x55);
    for (const std::string& bad : {gzip_compress(small) + corrupt, gzip_compress(small) + "garbage!!",
                                   gzip_compress(small).substr(0, 20), std::string()}) {
        REQUIRE(inf.decompress(gzip_compress(big), out).has_value());
        CHECK_FALSE(inf.decompress(bad, out).has_value());
        CHECK(out.empty());
    }
    // The budget's hook sees only real growth: a shorter record after a longer one asks nothing.
    std::size_t asked = 0;
    REQUIRE(inf.decompress(gzip_compress(big), out, 64).has_value());
    REQUIRE(inf.decompress(gzip_compress(small), out, 64,
                           [&](std::size_t n) {
                               asked += n;
                               return true;
                           })
                .has_value());
    CHECK(asked == 0);
    CHECK(out == small);
}
