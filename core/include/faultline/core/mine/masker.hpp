// Template masking: SEED_BENCH.md §3.2 masks M1–M5, whitespace collapse and UTF-8-safe
// truncation, done by one hand-written left-to-right scanner (equivalent to applying the five
// regexes in order, then the collapse, then the cut).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace faultline::core::mine {

/// Longest template in bytes (SEED_BENCH §3.2 step 3).
inline constexpr std::size_t max_template_bytes = 200;

/// Writes the masked template of `message` into `out` (replacing its contents). `out` never
/// exceeds `max_bytes` (SEED_BENCH's 200 by default) and never ends inside a UTF-8 sequence.
void mask_message(std::string_view message, std::string& out, std::size_t max_bytes = max_template_bytes);

inline std::string mask_message(std::string_view message) {
    std::string out;
    mask_message(message, out);
    return out;
}

} // namespace faultline::core::mine
