// Request statistics: the routes, refusal reasons and failure places they are counted by, and one
// I/O thread's counters (a single writer, read at scrape time by server/src/metrics.cpp).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace faultline::server {

enum class route : std::uint8_t {
    firehose,
    cloudwatch,
    webhook,
    otlp,
    metrics,
    patterns,
    templates,
    report,
    healthz,
    readyz,
    reload,
    ui,
    unknown
};
inline constexpr std::size_t route_count = 13;
std::string_view route_label(route r) noexcept;

enum class reject_reason : std::uint8_t {
    queue_full,
    queue_wait,
    inflight_bytes,
    draining,
    max_connections,
    body_too_large,
    header_too_large,
    malformed_http,
    unauthorized,
    timeout
};
inline constexpr std::size_t reject_reason_count = 10;
std::string_view reject_label(reject_reason r) noexcept;

/// Where an internal failure (an exception, not the client's fault) was caught:
/// faultline_internal_errors_total{where}.
enum class internal_where : std::uint8_t {
    session, ///< the request handling of one connection (parser, handler, reply)
    decode,  ///< a worker decoding a delivery (e.g. an allocation failure)
    auth,    ///< webhook signature verification (e.g. an OpenSSL failure)
    io_loop, ///< escaped an asynchronous operation into the I/O thread's run loop
};
inline constexpr std::size_t internal_where_count = 4;
std::string_view internal_label(internal_where w) noexcept;

/// Request statistics of one I/O thread: a single writer (its thread), read at scrape time.
class http_stats {
public:
    static constexpr std::array<int, 14> codes{200, 400, 401, 403, 404, 405, 408,
                                               413, 415, 429, 431, 500, 503, 0};
    static constexpr std::array<double, 12> buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
    static constexpr std::size_t decode_kinds = 8; // core::errc values json .. io

    void record(route r, int status, double seconds) noexcept;
    void reject(reject_reason why) noexcept { bump(rejected_[static_cast<std::size_t>(why)]); }
    void decode_error(std::size_t kind) noexcept {
        if (kind < decode_kinds) bump(decode_errors_[kind]);
    }
    void internal_error(internal_where w) noexcept { bump(internal_[static_cast<std::size_t>(w)]); }
    /// Senders' handshakes answered (faultline_control_messages_total{kind}), not events.
    enum class handshake : std::uint8_t { github_ping, slack_url_verification };
    void control(handshake h) noexcept { bump(control_[static_cast<std::size_t>(h)]); }
    std::uint64_t controls(handshake h) const noexcept {
        return control_[static_cast<std::size_t>(h)].load(std::memory_order_relaxed);
    }
    std::uint64_t internal_errors(std::size_t w) const noexcept {
        return internal_[w].load(std::memory_order_relaxed);
    }

    /// Open client connections this I/O thread serves (faultline_io_thread_connections): raised
    /// by the thread that accepted the connection and placed it here (a read-modify-write, unlike
    /// the single-writer counters), lowered when it closes.
    void opened() noexcept { open_.fetch_add(1, std::memory_order_relaxed); }
    void closed() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }
    std::size_t open() const noexcept { return open_.load(std::memory_order_relaxed); }

    std::uint64_t requests(std::size_t r, std::size_t code_index) const noexcept {
        return requests_[r][code_index].load(std::memory_order_relaxed);
    }
    std::uint64_t bucket(std::size_t r, std::size_t b) const noexcept {
        return hist_[r][b].load(std::memory_order_relaxed);
    }
    std::uint64_t count(std::size_t r) const noexcept {
        return hist_count_[r].load(std::memory_order_relaxed);
    }
    double sum_seconds(std::size_t r) const noexcept {
        return hist_sum_us_[r].load(std::memory_order_relaxed) / 1e6;
    }
    std::uint64_t rejected(std::size_t why) const noexcept {
        return rejected_[why].load(std::memory_order_relaxed);
    }
    std::uint64_t decode_errors(std::size_t kind) const noexcept {
        return decode_errors_[kind].load(std::memory_order_relaxed);
    }

private:
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) noexcept {
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    alignas(64) std::atomic<std::size_t> open_{0}; ///< written by other threads: a line of its own
    std::array<std::array<std::atomic<std::uint64_t>, codes.size()>, route_count> requests_{};
    std::array<std::array<std::atomic<std::uint64_t>, buckets.size()>, route_count> hist_{};
    std::array<std::atomic<std::uint64_t>, route_count> hist_count_{};
    std::array<std::atomic<std::uint64_t>, route_count> hist_sum_us_{};
    std::array<std::atomic<std::uint64_t>, reject_reason_count> rejected_{};
    std::array<std::atomic<std::uint64_t>, decode_kinds> decode_errors_{};
    std::array<std::atomic<std::uint64_t>, internal_where_count> internal_{};
    std::array<std::atomic<std::uint64_t>, 2> control_{};
};

} // namespace faultline::server
