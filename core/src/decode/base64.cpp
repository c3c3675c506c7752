#include "faultline/core/decode/base64.hpp"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSSE3__) && defined(__SSE4_1__) // the x86-64-v2 build (FAULTLINE_X86_64_V2)
#include <immintrin.h>
#define FAULTLINE_BASE64_SSE 1
#endif

namespace faultline::core::decode {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::uint8_t invalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_table() {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t)
        v = invalid;
    for (std::uint8_t i = 0; i < 64; ++i)
        t[static_cast<unsigned char>(alphabet[i])] = i;
    return t;
}
constexpr auto table = make_table();

std::string describe(unsigned char c) {
    if (c >= 0x21 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    static constexpr char hex[] = "0123456789abcdef";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
}

error bad_char(std::string_view in, std::size_t pos) {
    return make_error(errc::base64, "invalid base64 character " +
                                        describe(static_cast<unsigned char>(in[pos])) + " at offset " +
                                        std::to_string(pos));
}

#ifdef FAULTLINE_BASE64_SSE
// 16 characters to 12 bytes at once (SSSE3 + SSE4.1, in the x86-64-v2 baseline this project
// builds for), after W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2
// Instructions" (2018), the pshufb lookup by nibbles: each byte's class comes from its high and
// low nibble, and the two lookups share a bit only for a byte outside the alphabet. False when
// a character in the block is not in it: the caller then decodes the block byte by byte, which
// names it.
bool decode_block(const std::uint8_t* src, std::uint8_t* dst) noexcept {
    const __m128i in = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i lut_lo = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13,
                                         0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
    const __m128i lut_hi = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10,
                                         0x10, 0x10, 0x10, 0x10, 0x10);
    const __m128i lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i mask_2f = _mm_set1_epi8(0x2f);
    const __m128i hi_nibbles = _mm_and_si128(_mm_srli_epi32(in, 4), mask_2f);
    const __m128i lo_nibbles = _mm_and_si128(in, mask_2f);
    const __m128i lo = _mm_shuffle_epi8(lut_lo, lo_nibbles);
    const __m128i hi = _mm_shuffle_epi8(lut_hi, hi_nibbles);
    if (!_mm_testz_si128(lo, hi)) return false;
    const __m128i eq_2f = _mm_cmpeq_epi8(in, mask_2f);
    const __m128i roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(eq_2f, hi_nibbles));
    const __m128i values = _mm_add_epi8(in, roll); // each character's 6 bits
    // 4 x 6 bits -> 3 bytes per 32-bit lane, then the lanes' bytes in order.
    const __m128i ab_bc = _mm_maddubs_epi16(values, _mm_set1_epi32(0x01400140));
    const __m128i abc = _mm_madd_epi16(ab_bc, _mm_set1_epi32(0x00011000));
    const __m128i packed =
        _mm_shuffle_epi8(abc, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    alignas(16) std::uint8_t bytes[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(bytes), packed);
    std::memcpy(dst, bytes, 12);
    return true;
}
#endif

} // namespace

result<void> base64_decode(std::string_view in, std::string& out) {
    const std::size_t n = in.size();
    if (n % 4 != 0)
        return make_error(errc::base64, "base64 length " + std::to_string(n) +
                                            " is not a multiple of 4 (padding missing?)");
    out.resize(n / 4 * 3);
    if (n == 0) return {};
    auto* dst = reinterpret_cast<std::uint8_t*>(out.data());
    const auto* src = reinterpret_cast<const std::uint8_t*>(in.data());
    const std::size_t full = n - 4; // the last quantum may carry padding
    std::size_t i = 0;
    // Blocks of 16 characters while they are all in the alphabet; the rest (and a block with
    // anything else in it) a quantum at a time.
#ifdef FAULTLINE_BASE64_SSE
    while (i + 16 <= full && decode_block(src + i, dst)) {
        i += 16;
        dst += 12;
    }
#endif
    for (; i < full; i += 4) {
        const std::uint32_t a = table[src[i]], b = table[src[i + 1]], c = table[src[i + 2]],
                            d = table[src[i + 3]];
        if ((a | b | c | d) == invalid || ((a | b | c | d) & 0xc0)) {
            for (std::size_t k = i; k < i + 4; ++k)
                if (table[src[k]] == invalid) return bad_char(in, k);
        }
        const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        *dst++ = static_cast<std::uint8_t>(v >> 16);
        *dst++ = static_cast<std::uint8_t>(v >> 8);
        *dst++ = static_cast<std::uint8_t>(v);
    }
    // Last quantum: "xxxx", "xxx=" or "xx==".
    std::size_t pad = 0;
    if (src[i + 3] == '=') pad = (src[i + 2] == '=') ? 2 : 1;
    for (std::size_t k = i; k < i + 4 - pad; ++k)
        if (table[src[k]] == invalid) return bad_char(in, k);
    const std::uint32_t a = table[src[i]], b = table[src[i + 1]];
    const std::uint32_t c = pad >= 2 ? 0 : table[src[i + 2]];
    const std::uint32_t d = pad >= 1 ? 0 : table[src[i + 3]];
    if (pad == 2 && (b & 0x0f))
        return make_error(errc::base64, "non-canonical base64: unused bits set before padding at offset " +
                                            std::to_string(i + 1));
    if (pad == 1 && (c & 0x03))
        return make_error(errc::base64, "non-canonical base64: unused bits set before padding at offset " +
                                            std::to_string(i + 2));
    const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    *dst++ = static_cast<std::uint8_t>(v >> 16);
    if (pad < 2) *dst++ = static_cast<std::uint8_t>(v >> 8);
    if (pad < 1) *dst++ = static_cast<std::uint8_t>(v);
    out.resize(out.size() - pad);
    return {};
}

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    const auto* s = reinterpret_cast<const std::uint8_t*>(in.data());
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (const std::size_t rest = in.size() - i; rest > 0) {
        std::uint32_t v = s[i] << 16;
        if (rest == 2) v |= s[i + 1] << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

} // namespace faultline::core::decode
