// Logs on stderr: one JSON object per line ({"time","level","msg", fields...}), or, with
// `--log-format text`, one human-readable line (time LEVEL msg key=value ...). Repeated
// messages can be rate-limited per key, with the number suppressed reported on the next line.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace faultline::server::log {

enum class level { debug, info, warn, error };

using field = std::pair<std::string_view, std::string_view>;

/// "2026-11-27T05:10:15.123Z" for Unix milliseconds.
std::string iso8601(long long unix_ms);

enum class format { json, text };
/// Chooses the line format (before any thread logs).
void set_format(format f) noexcept;

/// Writes one line atomically (thread-safe). Never throws.
void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {}) noexcept;

/// As write(), but at most `per_second` lines per `key` (e.g. "400 /v1/firehose"); lines dropped
/// are counted and the next line written for the key carries "suppressed":"N".
void write_limited(std::string_view key, unsigned per_second, level lvl, std::string_view msg,
                   std::initializer_list<field> fields = {}) noexcept;

inline void info(std::string_view msg, std::initializer_list<field> f = {}) noexcept {
    write(level::info, msg, f);
}
inline void warn(std::string_view msg, std::initializer_list<field> f = {}) noexcept {
    write(level::warn, msg, f);
}
inline void error(std::string_view msg, std::initializer_list<field> f = {}) noexcept {
    write(level::error, msg, f);
}

} // namespace faultline::server::log
