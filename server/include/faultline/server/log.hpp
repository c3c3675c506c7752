// Logs on stderr: one JSON object per line ({"time","level","msg", fields...}), or, with
// `--log-format text`, one human-readable line (time LEVEL msg key=value ...). Repeated
// messages can be rate-limited per key, with the number suppressed reported on the next line.
// Lines are written by a writer thread from a bounded queue: a caller (an I/O thread) never
// waits for stderr; when the queue is full the line is dropped and counted
// (faultline_log_lines_dropped_total). The queue is flushed at exit.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <optional>
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

/// Lines dropped because the queue was full (the writer could not keep up with stderr).
std::uint64_t dropped_lines() noexcept;
/// Waits (at most `limit`) until every queued line is written. Runs at exit too.
void flush(std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) noexcept;

/// The lines waiting for the writer: at most `max_bytes` of them; a line that does not fit is
/// dropped and counted. Not synchronized (log.cpp holds its lock around it).
class line_queue {
public:
    explicit line_queue(std::size_t max_bytes)
        : max_bytes_(max_bytes) {}
    bool push(std::string line) {
        if (bytes_ + line.size() > max_bytes_) {
            ++dropped_;
            return false;
        }
        bytes_ += line.size();
        lines_.push_back(std::move(line));
        return true;
    }
    /// Everything queued, in order; the queue is left empty.
    std::deque<std::string> take() {
        bytes_ = 0;
        return std::exchange(lines_, {});
    }
    bool empty() const noexcept { return lines_.empty(); }
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::deque<std::string> lines_;
    std::uint64_t dropped_ = 0;
};

/// At most `per_second` lines per key and second; the time is given (injected by the tests).
/// Keys are bounded (1 024; beyond, the table starts over). Not synchronized.
class rate_limiter {
public:
    explicit rate_limiter(unsigned per_second)
        : per_second_(per_second) {}
    /// nullopt: suppress this line. Otherwise write it, saying how many were suppressed before.
    std::optional<std::uint64_t> admit(std::string_view key, std::chrono::steady_clock::time_point now);
    unsigned per_second() const noexcept { return per_second_; }

private:
    struct bucket {
        std::int64_t second = 0;
        unsigned written = 0;
        std::uint64_t suppressed = 0;
    };
    unsigned per_second_;
    std::map<std::string, bucket, std::less<>> buckets_;
};

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
