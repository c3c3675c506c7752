// What the HTTP layer serves, without any networking: the pipeline, admission state, statistics,
// Firehose request-id dedupe, and the I/O-free renderers of the read endpoints (/metrics,
// /v1/patterns, /v1/templates). The Beast/Asio code lives in http_server.cpp only.
#pragma once

#include "faultline/config/config.hpp"
#include "faultline/core/aggregate/state.hpp"
#include "faultline/core/budget.hpp"
#include "faultline/core/pipeline/pipeline.hpp"
#include "faultline/server/dedupe_store.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace faultline::core::decode {
struct webhook_options;
struct otlp_options;
} // namespace faultline::core::decode

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

/// The template explorer page (server/ui/explorer.html, compiled into the binary).
std::string_view explorer_html();

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
    std::array<std::array<std::atomic<std::uint64_t>, codes.size()>, route_count> requests_{};
    std::array<std::array<std::atomic<std::uint64_t>, buckets.size()>, route_count> hist_{};
    std::array<std::atomic<std::uint64_t>, route_count> hist_count_{};
    std::array<std::atomic<std::uint64_t>, route_count> hist_sum_us_{};
    std::array<std::atomic<std::uint64_t>, reject_reason_count> rejected_{};
    std::array<std::atomic<std::uint64_t>, decode_kinds> decode_errors_{};
    std::array<std::atomic<std::uint64_t>, internal_where_count> internal_{};
    std::array<std::atomic<std::uint64_t>, 2> control_{};
};

/// Firehose request ids recently acknowledged (bounded by count and age), and those in flight.
class dedupe_cache {
public:
    enum class state { fresh, acknowledged, in_flight };
    dedupe_cache(std::size_t capacity, std::chrono::seconds ttl)
        : capacity_(capacity)
        , ttl_(ttl) {}
    /// Claims `id` for a new request (fresh), or says it was acknowledged or is being processed.
    state begin(const std::string& id, std::chrono::steady_clock::time_point now);
    /// The request of `id` ended: remembered when it was counted, forgotten when it failed.
    void finish(const std::string& id, bool counted, std::chrono::steady_clock::time_point now);
    /// The delivery of `id` is committed and its journal record queued (its 200 waits for the
    /// sync): a snapshot from now on holds its counts, so acknowledged() lists it.
    void journaled(const std::string& id, std::chrono::steady_clock::time_point now);
    std::size_t size() const;
    /// Remembers `id` as acknowledged at `at` (a restart restoring what the state file or the
    /// journal holds); nothing when that is older than the TTL.
    void remember(const std::string& id, std::chrono::steady_clock::time_point at,
                  std::chrono::steady_clock::time_point now);
    /// The acknowledged (or journaled) ids with when each was acknowledged, oldest first: what
    /// a snapshot of the counts holds.
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> acknowledged() const;

private:
    struct entry {
        bool done = false;
        bool journaled = false;
        std::chrono::steady_clock::time_point at;
        std::list<std::string>::iterator pos;
    };
    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::chrono::seconds ttl_;
    std::list<std::string> order_; // oldest first
    std::unordered_map<std::string, entry> entries_;
};

/// Per-pattern totals sampled every few seconds, for the 1 min and 15 min rates.
class rate_tracker {
public:
    using group_totals = core::aggregate::string_map<std::vector<std::uint64_t>>;
    void sample(std::chrono::steady_clock::time_point now, std::vector<std::uint64_t> totals,
                group_totals by_group = {});
    void clear();
    /// Events per second over `window` for every pattern (0 until two samples exist); with a
    /// group, its own events only.
    std::vector<double> rates(std::chrono::seconds window, std::string_view group = {}) const;

private:
    struct sample_point {
        std::chrono::steady_clock::time_point at;
        std::vector<std::uint64_t> totals;
        group_totals by_group;
    };
    mutable std::mutex mutex_;
    std::deque<sample_point> samples_;
};

struct template_query {
    std::size_t limit = 100;
    std::string group;
    std::string cls;            ///< "error", "warn", "info" or empty
    std::string sort = "count"; ///< count | first_seen | last_seen
};

class service {
public:
    service(config::config cfg, std::shared_ptr<const core::match::pattern_set> patterns,
            std::size_t io_threads);
    ~service();

    const config::config& cfg() const noexcept { return cfg_; }
    core::pipeline::pipeline& pipe() noexcept { return *pipe_; }
    const core::pipeline::pipeline& pipe() const noexcept { return *pipe_; }
    http_stats& stats(std::size_t io_thread) noexcept { return *stats_[io_thread]; }
    dedupe_cache& dedupe() noexcept { return dedupe_; }
    /// The delivery ids shared with the other replicas (null without dedupe.store).
    dedupe_store* store() noexcept { return store_.get(); }
    rate_tracker& rates() noexcept { return rates_; }
    /// What a configuration reload replaces while the service runs: keys and sources (the
    /// patterns live in the pipeline). Taken once per request; a reload swaps the whole object.
    struct live_settings {
        std::vector<std::string> access_keys;
        std::map<std::string, config::source_config, std::less<>> sources;
        std::map<std::string, std::shared_ptr<const core::decode::webhook_options>, std::less<>> webhooks;
        /// POST /v1/logs: its auth (as a source's) and how its records are read (null: disabled).
        config::source_config otlp_source;
        std::shared_ptr<const core::decode::otlp_options> otlp;
        const config::source_config* source(std::string_view name) const {
            auto it = sources.find(name);
            return it == sources.end() ? nullptr : &it->second;
        }
        std::shared_ptr<const core::decode::webhook_options> webhook(std::string_view name) const {
            auto it = webhooks.find(name);
            return it == webhooks.end() ? nullptr : it->second;
        }
    };
    std::shared_ptr<const live_settings> live() const;

    /// Applies a new configuration: patterns (swapped into the pipeline), access keys and
    /// sources. Settings that need a restart (listen addresses, limits, threads, state, TLS) are
    /// left as they are; their names are returned.
    std::vector<std::string> reload(const config::config& next,
                                    std::shared_ptr<const core::match::pattern_set> patterns);
    /// Counts a reload attempt for faultline_config_reloads_total{result}.
    void count_reload(bool ok) noexcept {
        (ok ? reloads_ok_ : reloads_failed_).fetch_add(1, std::memory_order_relaxed);
    }

    std::atomic<bool> draining{false};
    /// Bytes in flight (limits.inflight_bytes): bodies as they are read, their decompressed data
    /// and the decoders' working memory. Declared first: the pipeline's decoders point at it.
    core::byte_budget budget;
    std::atomic<std::size_t> connections{0};

    /// Ready for work: not draining, queue not full, byte budget not spent.
    bool ready() const noexcept;

    std::string render_metrics() const;
    std::string render_patterns(std::string_view group) const;
    std::string render_templates(const template_query& q) const;
    /// Restores the saved state (state_dir/state.json) if there is one. A corrupt or unreadable
    /// file is logged and moved aside (state.json.corrupt-<ms>); the service starts fresh.
    void load_state();
    /// Writes the state file (atomically). Failures are logged; returns success. With the
    /// journal, the snapshot is a checkpoint: the segments it holds are removed after it.
    bool save_state();
    /// Waits until every delivery handed to the journal is durable and answered.
    void drain_journal();
    /// Waits until everything counted so far is durable (the views call it before they answer:
    /// an exported counter never exceeds what a restart restores).
    void durable_barrier() const;
    /// Bytes in the journal's current segment (0 without a journal).
    std::uint64_t journal_bytes() const;

    /// The report of SPEC §6 (what `faultline scan` prints) over everything counted so far.
    std::string render_report() const;

private:
    /// Restores an acknowledged delivery id (from the state file or a journal record).
    void remember_delivery(const std::string& id, std::int64_t acked_ms);
    /// The acknowledged delivery ids with their Unix ms, for the state file.
    core::aggregate::delivery_ids acknowledged_deliveries() const;

    config::config cfg_;
    /// Declared before the pipeline: the workers' verdicts go through it, so it stops after them.
    std::unique_ptr<dedupe_store> store_;
    std::unique_ptr<core::pipeline::pipeline> pipe_;
    /// The state directory's journal (none without a state directory). Declared after pipe_:
    /// its writer, which applies to the pipeline, stops first.
    std::unique_ptr<core::aggregate::journal> journal_;
    std::size_t journal_damaged_ = 0; ///< corrupt journal tails kept aside at start
    std::mutex save_mutex_;
    std::vector<std::unique_ptr<http_stats>> stats_;
    dedupe_cache dedupe_;
    rate_tracker rates_;
    mutable std::mutex live_mutex_;
    std::shared_ptr<const live_settings> live_;
    std::atomic<std::uint64_t> reloads_ok_{0}, reloads_failed_{0};
    /// /metrics, part by part (server/src/metrics.hpp), each read at scrape time.
    std::vector<std::shared_ptr<prometheus::Collectable>> collectors_;
    void make_collectors();
};

} // namespace faultline::server
