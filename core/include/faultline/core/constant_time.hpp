// Comparing secrets (access keys, tokens, signatures) without leaking where they differ.
#pragma once

#include <cstddef>
#include <string_view>

namespace faultline::core {

/// Equality that takes as long for any two strings of one length: every byte is compared, with
/// no early exit (the length leaks, the contents do not).
inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    volatile unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    return diff == 0;
}

} // namespace faultline::core
