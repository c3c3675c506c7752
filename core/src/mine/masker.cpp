#include "faultline/core/mine/masker.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace faultline::core::mine {
namespace {

// One table lookup per byte instead of chains of comparisons (the scanner looks at every byte
// of every error event at least once).
enum : unsigned char { k_space = 1, k_digit = 2, k_hex = 4, k_word = 8 };
constexpr std::array<unsigned char, 256> classes = [] {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 256; ++c) {
        unsigned char v = 0;
        if (c == ' ' || (c >= '\t' && c <= '\r')) v |= k_space;
        if (c >= '0' && c <= '9') v |= k_digit | k_hex | k_word;
        if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= k_hex;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') v |= k_word;
        t[static_cast<std::size_t>(c)] = v;
    }
    return t;
}();

constexpr bool is_digit(unsigned char c) {
    return (classes[c] & k_digit) != 0;
}
constexpr bool is_hex(unsigned char c) {
    return (classes[c] & k_hex) != 0;
}
constexpr bool is_word(unsigned char c) {
    return (classes[c] & k_word) != 0;
}
constexpr bool is_space(unsigned char c) {
    return (classes[c] & k_space) != 0;
}

class scanner {
public:
    explicit scanner(std::string_view s)
        : p_(reinterpret_cast<const unsigned char*>(s.data()))
        , n_(s.size()) {}

    // True when position i is the end or a non-word character (the right side of a \b).
    bool boundary_at(std::size_t i) const { return i >= n_ || !is_word(p_[i]); }

    template <class Pred>
    std::size_t run(std::size_t i, Pred pred) const {
        std::size_t j = i;
        while (j < n_ && pred(p_[j]))
            ++j;
        return j;
    }

    // M1: 8-4-4-4-12 hex digits; i is a word start, its hex digits end at `first_end`.
    std::size_t uuid(std::size_t i, std::size_t first_end) const {
        static constexpr std::size_t groups[] = {8, 4, 4, 4, 12};
        std::size_t j = i;
        for (std::size_t g = 0; g < 5; ++g) {
            const std::size_t e = g == 0 ? first_end : run(j, is_hex);
            if (e - j < groups[g]) return 0;
            j += groups[g];
            if (g < 4) {
                if (j >= n_ || p_[j] != '-') return 0;
                ++j;
            }
        }
        return boundary_at(j) ? j : 0;
    }

    // M2: IPv4 with optional :port; i is a word start.
    std::size_t ipv4(std::size_t i) const {
        std::size_t j = i;
        for (int part = 0; part < 4; ++part) {
            const std::size_t e = run(j, is_digit);
            if (e == j || e - j > 3) return 0;
            j = e;
            if (part < 3) {
                if (j >= n_ || p_[j] != '.') return 0;
                ++j;
            }
        }
        if (j < n_ && p_[j] == ':') {
            const std::size_t e = run(j + 1, is_digit);
            if (e > j + 1 && e - (j + 1) <= 5 && boundary_at(e)) return e;
        }
        return boundary_at(j) ? j : 0;
    }

    // M3: a word that is 0x/0X plus hex digits; i is a word start.
    std::size_t hex_literal(std::size_t i) const {
        if (i + 2 >= n_ || p_[i] != '0' || (p_[i + 1] != 'x' && p_[i + 1] != 'X')) return 0;
        const std::size_t e = run(i + 2, is_hex);
        return e > i + 2 && boundary_at(e) ? e : 0;
    }

    // M4: a word of at least 16 hex digits; i is a word start, its hex digits end at `e`.
    std::size_t long_hex(std::size_t i, std::size_t e) const { return e - i >= 16 && boundary_at(e) ? e : 0; }

    // M1..M4 at a word start, in priority order; returns the end (0: none) and the token.
    std::size_t span(std::size_t i, std::string_view& token) const {
        const unsigned char c = p_[i];
        if (!is_hex(c)) return 0; // every one of M1..M4 starts with a hex digit
        // The word's leading hex digits, read once: M1 needs 8 of them, M4 16.
        const std::size_t hex_end = run(i, is_hex);
        if (hex_end - i >= 8)
            if (std::size_t e = uuid(i, hex_end)) return token = "<UUID>", e;
        if (is_digit(c))
            if (std::size_t e = ipv4(i)) return token = "<IP>", e;
        if (std::size_t e = hex_literal(i)) return token = "<HEX>", e;
        if (std::size_t e = long_hex(i, hex_end)) return token = "<ID>", e;
        return 0;
    }

    const unsigned char* p_;
    std::size_t n_;
};

} // namespace

void mask_message(std::string_view message, std::string& out, std::size_t max_bytes) {
    const scanner s(message);
    const auto* p = s.p_;
    const std::size_t n = s.n_;
    // Enough to decide the cut: once more than max_template_bytes are written the rest is cut.
    const std::size_t enough = max_bytes + 1;
    // Written in place, then cut to size. What is written before the loop stops is below
    // `enough` plus one space and one token or ordinary run (at most `enough`), and never more
    // than 5 bytes per byte read (a lone digit becomes <NUM>).
    const std::size_t room = (enough < n * 5 / 2 ? 2 * enough : n * 5) + 8;
    out.resize(room);
    char* const start = out.data();
    char* w = start;
    bool pending_space = false;
    auto emit = [&](const char* text, std::size_t len) {
        if (pending_space) {
            if (w != start) *w++ = ' ';
            pending_space = false;
        }
        std::memcpy(w, text, len);
        w += len;
    };
    auto emit_token = [&](std::string_view token) { emit(token.data(), token.size()); };
    std::size_t i = 0;
    while (i < n && static_cast<std::size_t>(w - start) < enough) {
        const unsigned char c = p[i];
        if (is_space(c)) { // a run of them: at most one space, written before the next text
            pending_space = true;
            ++i;
            while (i < n && is_space(p[i]))
                ++i;
            continue;
        }
        if (is_word(c) && (i == 0 || !is_word(p[i - 1]))) {
            std::string_view token;
            if (const std::size_t e = s.span(i, token)) {
                emit_token(token);
                i = e;
                continue;
            }
        }
        if (is_digit(c)) { // M5: digits, optionally '.' and digits (not when those start M1..M4)
            std::size_t j = s.run(i, is_digit);
            if (j + 1 < n && p[j] == '.' && is_digit(p[j + 1])) {
                std::string_view ignored;
                if (!s.span(j + 1, ignored)) j = s.run(j + 1, is_digit);
            }
            emit_token("<NUM>");
            i = j;
            continue;
        }
        // A run of ordinary bytes up to the next space, digit or word start (at most `enough`).
        std::size_t j = i + 1;
        const std::size_t stop = n - i > enough ? i + enough : n;
        bool after_word = is_word(c);
        while (j < stop) {
            const unsigned char k = classes[p[j]];
            if ((k & (k_space | k_digit)) != 0) break;
            const bool word = (k & k_word) != 0;
            if (word && !after_word) break;
            after_word = word;
            ++j;
        }
        emit(message.data() + i, j - i);
        i = j;
    }
    std::size_t len = static_cast<std::size_t>(w - start);
    if (len > max_bytes) {
        len = max_bytes;
        while (len > 0 && (static_cast<unsigned char>(start[len]) & 0xc0) == 0x80)
            --len;
    }
    out.resize(len);
}

} // namespace faultline::core::mine
