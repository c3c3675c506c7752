// Structured logs: one JSON object per line on stderr ({"time","level","msg", fields...}).
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

/// Writes one line atomically (thread-safe). Never throws.
void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {}) noexcept;

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
