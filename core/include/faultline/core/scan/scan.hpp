// `faultline scan`: the engine over files. Reads inputs (plain or gzip'd, or stdin) in chunks of
// whole lines, hands the chunks to the pipeline's workers and returns the merged totals.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/error.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace faultline::core::scan {

enum class input_format { automatic, jsonl, firehose, lines };

/// Parses "auto", "jsonl", "firehose" or "lines".
std::optional<input_format> parse_format(std::string_view s);

struct scan_options {
    std::vector<std::string> inputs; ///< file paths; "-" is standard input
    input_format format = input_format::automatic;
    std::size_t threads = 0; ///< workers; 0: one per hardware thread
    std::size_t chunk_bytes = std::size_t{256} << 10;
    std::size_t max_line_bytes = std::size_t{128} << 20;
    decode::decode_limits limits;
    aggregate::analyze_options analyze;
    /// Mine templates (Drain) instead of exact masked messages (`--templates drain`).
    std::optional<mine::miner_options> mining;
};

/// Totals over all inputs, or the first error in input order, as "FILE:LINE: what is wrong".
result<aggregate::counts> run(std::shared_ptr<const match::pattern_set> patterns,
                              const scan_options& options);

} // namespace faultline::core::scan
