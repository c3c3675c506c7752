// What the HTTP layer serves, without any networking: the pipeline, admission state, statistics,
// Firehose request-id dedupe, and the I/O-free renderers of the read endpoints (/metrics,
// /v1/patterns, /v1/templates). The Beast/Asio code lives in http_server.cpp only.
#pragma once

#include "faultline/config/config.hpp"
#include "faultline/core/aggregate/state.hpp"
#include "faultline/core/budget.hpp"
#include "faultline/core/pipeline/pipeline.hpp"
#include "faultline/server/dedupe.hpp"
#include "faultline/server/dedupe_store.hpp"
#include "faultline/server/durable_state.hpp"
#include "faultline/server/http_stats.hpp"
#include "faultline/server/rates.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace faultline::core::decode {
struct webhook_options;
struct otlp_options;
} // namespace faultline::core::decode

namespace faultline::server {

/// The template explorer page (server/ui/explorer.html, compiled into the binary).
std::string_view explorer_html();

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
    /// Where a connection accepted by I/O thread `accepted_on` is served: the thread with the
    /// fewest open connections, `accepted_on` itself unless another has fewer. (The kernel's
    /// SO_REUSEPORT spreads connections by a hash, unevenly: 64 connections over two threads
    /// came out 40/24, and the busier thread set the pace.)
    std::size_t least_loaded(std::size_t accepted_on) const noexcept;
    /// Open API connections, which limits.max_connections bounds: the I/O threads' shares summed
    /// (the admin listener's connections are not in them: monitoring never takes a client's seat).
    std::size_t api_connections() const noexcept;
    /// Every open connection, the API's and the admin listener's (faultline_connections).
    std::size_t connections() const noexcept;
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

    /// Ready for work: not draining, queue not full, byte budget not spent.
    bool ready() const noexcept;

    /// The views (nullopt: not shown now, the counts are being rebuilt after a failed journal
    /// write; answered 503 with Retry-After).
    std::optional<std::string> render_metrics() const;
    std::optional<std::string> render_patterns(std::string_view group) const;
    std::optional<std::string> render_templates(const template_query& q) const;
    /// The state directory: snapshot, journal, rebuilds (server/include/faultline/server/durable_state.hpp).
    durable_state& state() noexcept { return *state_; }

    /// The report of SPEC §6 (what `faultline scan` prints) over everything counted so far.
    std::optional<std::string> render_report() const;

private:
    config::config cfg_;
    /// Declared before the pipeline: the workers' verdicts go through it, so it stops after them.
    std::unique_ptr<dedupe_store> store_;
    std::unique_ptr<core::pipeline::pipeline> pipe_;
    dedupe_cache dedupe_;
    /// The state directory. Declared after pipe_: its journal's writer, which completes the
    /// pipeline's deliveries, stops first.
    std::unique_ptr<durable_state> state_;
    std::vector<std::unique_ptr<http_stats>> stats_;
    friend class connection_seat;
    std::atomic<std::size_t> admin_open_{0}; ///< open admin-listener connections
    rate_tracker rates_;
    mutable std::mutex live_mutex_;
    std::shared_ptr<const live_settings> live_;
    std::atomic<std::uint64_t> reloads_ok_{0}, reloads_failed_{0};
    /// /metrics, part by part (server/src/metrics.hpp), each read at scrape time.
    std::vector<std::shared_ptr<prometheus::Collectable>> collectors_;
    void make_collectors();
};

/// One open connection while it exists: an API connection in the share of the I/O thread serving
/// it (faultline_io_thread_connections; service::api_connections), an admin one apart; both in
/// faultline_connections. Move-only.
class connection_seat {
public:
    connection_seat(service& s, std::size_t io_thread, bool admin = false) noexcept
        : svc_(&s)
        , thread_(io_thread)
        , admin_(admin) {
        if (admin_)
            s.admin_open_.fetch_add(1, std::memory_order_relaxed);
        else
            s.stats(io_thread).opened();
    }
    connection_seat(connection_seat&& o) noexcept
        : svc_(std::exchange(o.svc_, nullptr))
        , thread_(o.thread_)
        , admin_(o.admin_) {}
    connection_seat& operator=(connection_seat&&) = delete;
    ~connection_seat() {
        if (!svc_) return;
        if (admin_)
            svc_->admin_open_.fetch_sub(1, std::memory_order_relaxed);
        else
            svc_->stats(thread_).closed();
    }
    std::size_t io_thread() const noexcept { return thread_; }

private:
    service* svc_;
    std::size_t thread_;
    bool admin_;
};

} // namespace faultline::server
