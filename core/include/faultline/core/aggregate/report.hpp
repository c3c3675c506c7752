// The report JSON of SEED_BENCH.md §5 / SPEC §6: exact bytes (key order, ranking, escaping).
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include <string>
#include <string_view>

namespace faultline::core::aggregate {

inline constexpr std::size_t report_top_templates = 20;

/// Appends `s` to `out` as a JSON string (with quotes), escaped like Python's
/// json.dumps(ensure_ascii=True): non-ASCII as \uXXXX (lower-case hex, surrogate pairs above
/// U+FFFF), '/' not escaped. A byte that is not valid UTF-8 is written as \ufffd.
void append_json_string(std::string& out, std::string_view s);

/// One line of compact JSON plus '\n'.
std::string render_report(const counts& totals, const match::pattern_set& patterns);

} // namespace faultline::core::aggregate
