#include "faultline/server/log.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <utility>

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

namespace {
std::atomic<format> current_format{format::json};

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (const char c : v)
        if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
    return false;
}

std::string render(level lvl, std::string_view msg, std::initializer_list<field> fields,
                   std::string_view suppressed) {
    std::string line;
    if (current_format.load(std::memory_order_relaxed) == format::text) {
        std::string lv(name(lvl));
        for (auto& c : lv)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        lv.resize(5, ' ');
        line = timestamp() + " " + lv + " " + std::string(msg);
        auto kv = [&](std::string_view k, std::string_view v) {
            line += ' ';
            line += k;
            line += '=';
            if (needs_quotes(v))
                core::aggregate::append_json_string(line, v);
            else
                line += v;
        };
        for (const auto& [k, v] : fields)
            kv(k, v);
        if (!suppressed.empty()) kv("suppressed", suppressed);
        line += '\n';
        return line;
    }
    line = "{\"time\":\"" + timestamp() + "\",\"level\":\"" + std::string(name(lvl)) + "\",\"msg\":";
    core::aggregate::append_json_string(line, msg);
    auto kv = [&](std::string_view k, std::string_view v) {
        line += ',';
        core::aggregate::append_json_string(line, k);
        line += ':';
        core::aggregate::append_json_string(line, v);
    };
    for (const auto& [k, v] : fields)
        kv(k, v);
    if (!suppressed.empty()) kv("suppressed", suppressed);
    line += "}\n";
    return line;
}

void emit(const std::string& line) {
    std::lock_guard lock(mutex);
    std::size_t off = 0;
    while (off < line.size()) {
        const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
}

struct bucket {
    std::int64_t second = 0;
    unsigned written = 0;
    std::uint64_t suppressed = 0;
};
std::mutex limit_mutex;
std::map<std::string, bucket, std::less<>> buckets; // keys are a small fixed set (route x status)
} // namespace

void set_format(format f) noexcept {
    current_format.store(f, std::memory_order_relaxed);
}

void write(level lvl, std::string_view msg, std::initializer_list<field> fields) noexcept {
    try {
        emit(render(lvl, msg, fields, {}));
    } catch (...) {
    }
}

void write_limited(std::string_view key, unsigned per_second, level lvl, std::string_view msg,
                   std::initializer_list<field> fields) noexcept {
    try {
        const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count();
        std::uint64_t suppressed = 0;
        {
            std::lock_guard lock(limit_mutex);
            auto it = buckets.find(key);
            if (it == buckets.end()) {
                if (buckets.size() >= 1024) buckets.clear(); // bounded, whatever the keys
                it = buckets.emplace(std::string(key), bucket{}).first;
            }
            bucket& b = it->second;
            if (b.second != now_s) b.second = now_s, b.written = 0;
            if (b.written >= per_second) {
                ++b.suppressed;
                return;
            }
            ++b.written;
            suppressed = std::exchange(b.suppressed, 0);
        }
        emit(render(lvl, msg, fields, suppressed ? std::to_string(suppressed) : std::string()));
    } catch (...) {
    }
}

} // namespace faultline::server::log
