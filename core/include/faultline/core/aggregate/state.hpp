// The state file: counters and templates, snapshotted so a restart neither forgets templates
// nor reports them as new. Versioned JSON, written to a temporary file, fsync'd, then renamed.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/error.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faultline::core::aggregate {

inline constexpr int state_version = 1;

/// The state document (patterns referred to by name, so a changed pattern set still loads).
/// `journal_segment` (when not 0): the first journal segment not in this snapshot. The same
/// document is a journal record's payload: the counts one delivery added.
/// Ids of acknowledged deliveries (Firehose request ids, webhook delivery ids, as dedupe keys)
/// with when each was acknowledged (Unix ms): a redelivery after a restart is still recognised.
using delivery_ids = std::vector<std::pair<std::string, std::int64_t>>;
/// Longest delivery id a state file may hold (dedupe keys are at most 100 bytes plus a prefix).
inline constexpr std::size_t max_delivery_id_bytes = 512;

std::string serialize_state(const counts& totals, const match::pattern_set& patterns, std::int64_t saved_ms,
                            std::uint64_t journal_segment = 0, const delivery_ids* ids = nullptr);

/// Parses a state document against the current pattern set (unknown pattern names are dropped).
/// Errors name what is wrong (a version this build cannot read, a field of the wrong type, ...).
/// `journal_segment`, when given, receives the document's journal_segment (0 when absent).
/// `ids`, when given, receives the document's delivery ids (empty when absent).
result<counts> parse_state(std::string_view json, const match::pattern_set& patterns,
                           std::uint64_t* journal_segment = nullptr, delivery_ids* ids = nullptr);

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. Creates the directory when missing.
result<void> write_file_atomic(const std::string& path, std::string_view data);

/// Reads a whole file; errc::io when it cannot be read (a missing file included).
result<std::string> read_file(const std::string& path);

} // namespace faultline::core::aggregate
