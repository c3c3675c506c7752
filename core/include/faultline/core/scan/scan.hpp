// `faultline scan`: the engine over files. Reads inputs (plain or gzip'd, or stdin) in chunks of
// whole lines, hands the chunks to the pipeline's workers and returns the merged totals.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/error.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::core::scan {

enum class input_format { automatic, jsonl, firehose, lines };

/// Parses "auto", "jsonl", "firehose" or "lines".
std::optional<input_format> parse_format(std::string_view s);

/// Where a scan is, for a progress display (reported after each chunk the reader hands out).
struct progress {
    std::string_view input;      ///< the path being read ("-": standard input)
    std::size_t input_index = 0; ///< 0-based, of `inputs`
    std::size_t inputs = 0;
    std::uint64_t input_bytes = 0; ///< bytes of this input read so far (as stored: gzip'd if it is)
    std::uint64_t input_size = 0;  ///< its size; 0 when unknown (a pipe)
    std::uint64_t total_bytes = 0; ///< bytes read from every input so far
    std::uint64_t events = 0;      ///< events counted so far
};

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
    /// Called from the reading thread after each chunk (keep it cheap); empty: no reports.
    std::function<void(const progress&)> on_progress;
    /// With `mining`: after the run, write here one line per input event, in input order:
    /// `template_id<TAB>template`, the template the event went to as it is at the end of the run
    /// (later generalizations included; a template the cap evicted, as it was then); `-<TAB>` for
    /// an event that was not mined (no error-class pattern). Events are then mined in input order
    /// by one worker. The per-event keys wait in an unnamed temporary file (8 bytes an event).
    std::string assignments;
};

/// Totals over all inputs, or the first error in input order, as "FILE:LINE: what is wrong".
result<aggregate::counts> run(std::shared_ptr<const match::pattern_set> patterns,
                              const scan_options& options);

} // namespace faultline::core::scan
