#include "faultline/server/log.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace faultline::server::log {
namespace {
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

void write_all(const std::string& line) {
    std::size_t off = 0;
    while (off < line.size()) {
        const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
}

/// The writer thread and its queue. Never destroyed (a line logged from a static destructor
/// must not find it gone); at exit, flush() writes what is queued.
struct writer {
    std::mutex mutex;
    std::condition_variable ready;   // lines queued
    std::condition_variable drained; // the queue is empty and nothing is being written
    line_queue queue{std::size_t{4} << 20};
    bool writing = false;
    bool started = false;

    void push(std::string line) {
        {
            std::lock_guard lock(mutex);
            if (!queue.push(std::move(line))) return; // dropped, counted
            if (!started) {
                started = true;
                std::thread([this] { run(); }).detach();
                std::atexit([] { flush(std::chrono::milliseconds(2000)); });
            }
        }
        ready.notify_one();
    }

    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            ready.wait(lock, [this] { return !queue.empty(); });
            auto lines = queue.take();
            writing = true;
            lock.unlock();
            std::string batch;
            for (auto& l : lines) {
                if (batch.size() + l.size() > (64 << 10) && !batch.empty()) {
                    write_all(batch);
                    batch.clear();
                }
                batch += l;
            }
            write_all(batch);
            lock.lock();
            writing = false;
            if (queue.empty()) drained.notify_all();
        }
    }
};

writer& the_writer() {
    static writer* w = new writer; // leaked on purpose: see writer
    return *w;
}

void emit(std::string line) {
    the_writer().push(std::move(line));
}

std::mutex limit_mutex;
std::map<unsigned, rate_limiter> limiters; // one per per_second value (a handful)
} // namespace

std::optional<std::uint64_t> rate_limiter::admit(std::string_view key,
                                                 std::chrono::steady_clock::time_point now) {
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= 1024) buckets_.clear(); // bounded, whatever the keys
        it = buckets_.emplace(std::string(key), bucket{}).first;
    }
    bucket& b = it->second;
    if (b.second != now_s) b.second = now_s, b.written = 0;
    if (b.written >= per_second_) {
        ++b.suppressed;
        return std::nullopt;
    }
    ++b.written;
    return std::exchange(b.suppressed, 0);
}

std::uint64_t dropped_lines() noexcept {
    auto& w = the_writer();
    std::lock_guard lock(w.mutex);
    return w.queue.dropped();
}

void flush(std::chrono::milliseconds limit) noexcept {
    try {
        auto& w = the_writer();
        std::unique_lock lock(w.mutex);
        w.drained.wait_for(lock, limit, [&w] { return w.queue.empty() && !w.writing; });
    } catch (...) {
    }
}

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
        std::optional<std::uint64_t> verdict;
        {
            std::lock_guard lock(limit_mutex);
            verdict = limiters.try_emplace(per_second, per_second)
                          .first->second.admit(key, std::chrono::steady_clock::now());
        }
        if (!verdict) return;
        emit(render(lvl, msg, fields, *verdict ? std::to_string(*verdict) : std::string()));
    } catch (...) {
    }
}

} // namespace faultline::server::log
