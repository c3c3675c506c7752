#include "faultline/server/log.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace faultline::server::log {
namespace {
std::mutex mutex;

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    return iso8601(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

std::string_view name(level l) {
    switch (l) {
    case level::debug:
        return "debug";
    case level::info:
        return "info";
    case level::warn:
        return "warn";
    case level::error:
        return "error";
    }
    return "info";
}
} // namespace

std::string iso8601(long long ms) {
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
}

void write(level lvl, std::string_view msg, std::initializer_list<field> fields) noexcept {
    try {
        std::string line =
            "{\"time\":\"" + timestamp() + "\",\"level\":\"" + std::string(name(lvl)) + "\",\"msg\":";
        core::aggregate::append_json_string(line, msg);
        for (const auto& [k, v] : fields) {
            line += ',';
            core::aggregate::append_json_string(line, k);
            line += ':';
            core::aggregate::append_json_string(line, v);
        }
        line += "}\n";
        std::lock_guard lock(mutex);
        std::size_t off = 0;
        while (off < line.size()) {
            const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
    } catch (...) {
    }
}

} // namespace faultline::server::log
