#include "faultline/core/mine/masker.hpp"

namespace faultline::core::mine {
namespace {

constexpr bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
constexpr bool is_hex(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr bool is_word(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
constexpr bool is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
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

    // M1: 8-4-4-4-12 hex digits; i is a word start.
    std::size_t uuid(std::size_t i) const {
        static constexpr std::size_t groups[] = {8, 4, 4, 4, 12};
        std::size_t j = i;
        for (std::size_t g = 0; g < 5; ++g) {
            const std::size_t e = run(j, is_hex);
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

    // M4: a word of at least 16 hex digits; i is a word start.
    std::size_t long_hex(std::size_t i) const {
        const std::size_t e = run(i, is_hex);
        return e - i >= 16 && boundary_at(e) ? e : 0;
    }

    // M1..M4 at a word start, in priority order; returns the end (0: none) and the token.
    std::size_t span(std::size_t i, std::string_view& token) const {
        const unsigned char c = p_[i];
        if (!is_hex(c)) return 0; // every one of M1..M4 starts with a hex digit
        if (std::size_t e = uuid(i)) return token = "<UUID>", e;
        if (is_digit(c))
            if (std::size_t e = ipv4(i)) return token = "<IP>", e;
        if (std::size_t e = hex_literal(i)) return token = "<HEX>", e;
        if (std::size_t e = long_hex(i)) return token = "<ID>", e;
        return 0;
    }

    const unsigned char* p_;
    std::size_t n_;
};

} // namespace

void mask_message(std::string_view message, std::string& out, std::size_t max_bytes) {
    out.clear();
    const scanner s(message);
    const auto* p = s.p_;
    const std::size_t n = s.n_;
    // Enough to decide the cut: once more than max_template_bytes are written the rest is cut.
    const std::size_t enough = max_bytes + 1;
    bool pending_space = false;
    auto emit = [&](std::string_view text) {
        if (pending_space) {
            if (!out.empty()) out += ' ';
            pending_space = false;
        }
        out += text;
    };
    std::size_t i = 0;
    while (i < n && out.size() < enough) {
        const unsigned char c = p[i];
        if (is_space(c)) {
            pending_space = true;
            ++i;
            continue;
        }
        if (is_word(c) && (i == 0 || !is_word(p[i - 1]))) {
            std::string_view token;
            if (const std::size_t e = s.span(i, token)) {
                emit(token);
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
            emit("<NUM>");
            i = j;
            continue;
        }
        // A run of ordinary bytes up to the next space, digit or word start.
        std::size_t j = i + 1;
        while (j < n && j - i < enough) {
            const unsigned char d = p[j];
            if (is_space(d) || is_digit(d) || (is_word(d) && !is_word(p[j - 1]))) break;
            ++j;
        }
        emit(message.substr(i, j - i));
        i = j;
    }
    if (out.size() > max_bytes) {
        std::size_t k = max_bytes;
        while (k > 0 && (static_cast<unsigned char>(out[k]) & 0xc0) == 0x80)
            --k;
        out.resize(k);
    }
}

} // namespace faultline::core::mine
