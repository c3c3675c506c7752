#include "faultline/server/service.hpp"

#include "faultline/core/pipeline/delivery.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/server/log.hpp"
#include "faultline/server/template_json.hpp"

#include "metrics.hpp"
#include "views.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_set>

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "0.0.0"
#endif

namespace faultline::server {

using core::aggregate::append_json_string;

// --- service ----------------------------------------------------------------------------------

namespace {
std::shared_ptr<const service::live_settings> make_live(const config::config& c) {
    auto live = std::make_shared<service::live_settings>();
    live->access_keys = c.firehose.access_keys;
    for (const auto& [name, src] : c.sources) {
        live->sources.emplace(name, src);
        auto o = std::make_shared<core::decode::webhook_options>();
        o->message_fields = src.message_fields;
        o->group = src.group.empty() ? name : src.group;
        o->group_field = src.group_field;
        live->webhooks.emplace(name, std::move(o));
    }
    if (c.otlp.enabled) {
        live->otlp_source.name = "otlp";
        live->otlp_source.auth = c.otlp.auth;
        auto o = std::make_shared<core::decode::otlp_options>();
        o->group_attributes = c.otlp.group_attributes;
        o->group = c.otlp.group;
        o->message_fields = c.otlp.message_fields;
        live->otlp = std::move(o);
    }
    return live;
}
} // namespace

std::shared_ptr<const service::live_settings> service::live() const {
    std::lock_guard lock(live_mutex_);
    return live_;
}

std::vector<std::string> service::reload(const config::config& next,
                                         std::shared_ptr<const core::match::pattern_set> patterns) {
    pipe_->swap_patterns(std::move(patterns));
    rates_.clear(); // rates compare totals indexed by pattern: start over with the new set
    {
        auto live = make_live(next);
        std::lock_guard lock(live_mutex_);
        live_ = std::move(live);
    }
    return config::needs_restart(cfg_, next);
}

service::service(config::config cfg, std::shared_ptr<const core::match::pattern_set> patterns,
                 std::size_t io_threads)
    : budget(cfg.limits.inflight_bytes)
    , cfg_(std::move(cfg))
    , dedupe_(cfg_.firehose.dedupe_capacity, cfg_.firehose.dedupe_ttl) {
    if (!cfg_.dedupe.store.empty()) {
        std::string why;
        if (auto endpoint = config::parse_store_url(cfg_.dedupe.store, why)) {
            dedupe_store::options so;
            so.endpoint = std::move(*endpoint);
            so.timeout = cfg_.dedupe.store_timeout;
            so.in_flight_ttl = cfg_.dedupe.in_flight_ttl;
            so.done_ttl = cfg_.firehose.dedupe_ttl;
            store_ = std::make_unique<dedupe_store>(std::move(so));
        }
    }
    core::pipeline::pipeline_options po;
    po.workers = cfg_.workers;
    po.queue_capacity = cfg_.limits.queue_capacity;
    po.queue_wait = cfg_.limits.queue_wait;
    po.limits.max_decompressed_bytes = cfg_.limits.decompressed_bytes;
    po.limits.budget = &budget; // bodies, their decompressed data, parsers' working memory (SPEC §3)
    po.analyze.max_message_bytes = cfg_.limits.message_bytes;
    po.totals.max_groups = 10'000;
    po.totals.max_templates = cfg_.templates.mining.drain.max_clusters; // exact mode's cap
    po.start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    if (cfg_.templates.mine) po.mining = cfg_.templates.mining;
    po.inline_contexts = std::max<std::size_t>(io_threads, 1);
    // Workers run at nice 5: an I/O thread running beside them gets the larger share of a core.
    // Its wakeups do not preempt them (I/O threads run SCHED_BATCH, server::run_contained): it
    // runs on a free core or at the next tick, and then serves everything that came meanwhile.
    po.worker_nice = 5;
    pipe_ = std::make_unique<core::pipeline::pipeline>(std::move(patterns), po);
    if (auto* miner = pipe_->miner()) {
        miner->on_new([](const std::string& text) {
            log::info("new error template",
                      {{"template_id", core::aggregate::template_id(text)}, {"template", text}});
        });
        // With the replicas' shared store, "new" means new in the whole cluster: the first
        // replica to claim a template's id keeps the mark; the others clear it.
        if (store_)
            miner->judge_new([store = store_.get()](const std::string& text,
                                                    core::mine::template_miner::verdict_fn verdict) {
                store->first_template(core::aggregate::template_id(text), std::move(verdict));
            });
    }
    state_ = std::make_unique<durable_state>(
        cfg_.state_dir, *pipe_, dedupe_, store_.get(),
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.dedupe.in_flight_ttl));
    for (std::size_t i = 0; i < std::max<std::size_t>(io_threads, 1); ++i)
        stats_.push_back(std::make_unique<http_stats>());
    live_ = make_live(cfg_);
    make_collectors();
}

service::~service() {
    // No more mining (the miner asks the store about new templates), then the store: what still
    // waits for it is answered while the miner it reports to lives.
    pipe_->stop();
    store_.reset();
}

std::size_t service::least_loaded(std::size_t accepted_on) const noexcept {
    std::size_t best = accepted_on;
    for (std::size_t i = 0; i < stats_.size(); ++i)
        if (stats_[i]->open() < stats_[best]->open()) best = i;
    return best;
}

std::size_t service::api_connections() const noexcept {
    std::size_t n = 0;
    for (const auto& s : stats_)
        n += s->open();
    return n;
}

std::size_t service::connections() const noexcept {
    return api_connections() + admin_open_.load(std::memory_order_relaxed);
}

bool service::ready() const noexcept {
    return !draining.load(std::memory_order_relaxed) && pipe_->queue_depth() < cfg_.limits.queue_capacity &&
           (cfg_.limits.queue_wait.count() == 0 || pipe_->oldest_wait() <= cfg_.limits.queue_wait) &&
           budget.used() < budget.limit();
}

std::optional<std::string> service::render_metrics() const {
    return state_->read([&] { return serialize_metrics(collectors_); });
}

void service::make_collectors() {
    using prometheus::MetricType;
    using values = value_collector::family;
    auto always = [](auto f) { return [f]() -> std::optional<double> { return static_cast<double>(f()); }; };
    auto per_io_thread = [this, always](auto f) {
        std::vector<value_collector::sample> out;
        for (std::size_t i = 0; i < stats_.size(); ++i)
            out.push_back(
                {{{"thread", std::to_string(i)}}, always([s = stats_[i].get(), f] { return f(*s); })});
        return out;
    };
    collectors_.push_back(std::make_shared<request_collector>(stats_));
    collectors_.push_back(std::make_shared<count_collector>(
        count_collector::inputs{[this] { return pipe_->counters(); },
                                [this] {
                                    std::vector<std::string> out{"firehose", "cloudwatch"};
                                    const auto l = live();
                                    if (l->otlp) out.emplace_back("otlp");
                                    for (const auto& [name, src] : l->sources)
                                        out.push_back("webhook:" + name);
                                    return out;
                                },
                                &stats_, cfg_.max_groups}));
    collectors_.push_back(std::make_shared<template_collector>(template_collector::inputs{
        [this](std::size_t k) {
            return pipe_->pick_templates([k](const core::match::pattern_set&) {
                core::aggregate::template_pick p;
                p.limit = k;
                return p;
            });
        },
        [this] { return pipe_->templates_evicted(); },
        [this] { return pipe_->miner() ? pipe_->miner()->new_total() : 0; }, cfg_.templates.metrics_top_k}));
    const auto* st = state_.get();
    collectors_.push_back(std::make_shared<value_collector>(std::vector<values>{
        {"faultline_dedupe_store_errors_total",
         "Requests to the shared dedupe store (dedupe.store) that failed or were not answered in "
         "dedupe.store_timeout: this process's table decided them.",
         MetricType::Counter,
         {{{}, always([this] { return store_ ? store_->errors() : 0; })}}},
        {"faultline_dedupe_store_up",
         "1 when the last exchange with the shared dedupe store succeeded.",
         MetricType::Gauge,
         {{{},
           [this]() -> std::optional<double> {
               if (!store_) return std::nullopt; // no store configured: no such series
               return store_->connected() ? 1.0 : 0.0;
           }}}},
        {"faultline_queue_depth",
         "Requests admitted to the workers and not finished.",
         MetricType::Gauge,
         {{{}, always([this] { return pipe_->queue_depth(); })}}},
        {"faultline_queue_capacity",
         "Capacity of the worker queue (limits.queue_capacity).",
         MetricType::Gauge,
         {{{}, always([this] { return cfg_.limits.queue_capacity; })}}},
        {"faultline_inflight_body_bytes",
         "Bytes held in flight: request bodies plus their decoded and decompressed data.",
         MetricType::Gauge,
         {{{}, always([this] { return budget.used(); })}}},
        {"faultline_inflight_body_bytes_limit",
         "Budget of bytes in flight (limits.inflight_bytes).",
         MetricType::Gauge,
         {{{}, always([this] { return cfg_.limits.inflight_bytes; })}}},
        {"faultline_connections",
         "Open connections: the API listener's and the admin listener's.",
         MetricType::Gauge,
         {{{}, always([this] { return connections(); })}}},
        {"faultline_io_thread_connections",
         "Open API connections by the I/O thread serving them: a new one goes to the one with the "
         "fewest (limits.max_connections bounds their sum; the admin listener's are not in it).",
         MetricType::Gauge, per_io_thread([](const http_stats& s) { return s.open(); })},
        {"faultline_ready",
         "1 when accepting work (what /readyz says).",
         MetricType::Gauge,
         {{{}, always([this] { return ready() ? 1 : 0; })}}},
        {"faultline_config_reloads_total",
         "Configuration reloads (SIGHUP, POST /-/reload), by result.",
         MetricType::Counter,
         {{{{"result", "failure"}}, always([this] { return reloads_failed_.load(); })},
          {{{"result", "success"}}, always([this] { return reloads_ok_.load(); })}}},
        {"faultline_journal_records_total",
         "Deliveries written to the journal (on disk before their 200).",
         MetricType::Counter,
         {{{}, always([st] { return st->journal() ? st->journal()->records_written() : 0; })}}},
        {"faultline_journal_syncs_total",
         "fdatasync calls of the journal (each makes a group of deliveries durable).",
         MetricType::Counter,
         {{{}, always([st] { return st->journal() ? st->journal()->syncs() : 0; })}}},
        {"faultline_journal_write_failures_total",
         "Journal writes that failed (their deliveries were answered 503; the counts are then rebuilt from "
         "the disk without them).",
         MetricType::Counter,
         {{{}, always([st] { return st->journal() ? st->journal()->failures() : 0; })}}},
        {"faultline_journal_truncate_failures_total",
         "Failed journal writes whose bytes the disk would not let be cut back afterwards: a restart may "
         "then count deliveries that were answered 503 (and retried). 0 unless the disk failed twice.",
         MetricType::Counter,
         {{{}, always([st] { return st->journal() ? st->journal()->cut_failures() : 0; })}}},
        {"faultline_journal_rebuilds_total",
         "Rebuilds of the counts from the state directory after failed journal writes.",
         MetricType::Counter,
         {{{}, always([st] { return st->rebuilds(); })}}},
        {"faultline_journal_corrupt_tails",
         "Damaged journal tails found at start (kept aside as journal-N.log.corrupt-<ms>).",
         MetricType::Gauge,
         {{{}, always([st] { return st->damaged_tails(); })}}},
        {"faultline_log_lines_dropped_total",
         "Log lines dropped because the writer could not keep up with stderr (the log queue was full).",
         MetricType::Counter,
         {{{}, always([] { return log::dropped_lines(); })}}},
        {"faultline_build_info",
         "Build information.",
         MetricType::Gauge,
         {{{{"version", FAULTLINE_VERSION}}, always([] { return 1; })}}},
    }));
}

std::optional<std::string> service::render_report() const {
    return state_->read([&] {
        const auto view = pipe_->view();
        return core::aggregate::render_report(view.totals, *view.patterns);
    });
}

std::optional<std::string> service::render_patterns(std::string_view group) const {
    return state_->read([&] {
        const auto view = pipe_->counters(); // counters and their pattern set, consistent across a reload
        return patterns_json(view.totals, *view.patterns, rates_.rates(std::chrono::seconds(60), group),
                             rates_.rates(std::chrono::seconds(900), group), group);
    });
}

std::optional<std::string> service::render_templates(const template_query& q) const {
    return state_->read([&] {
        // Filtered and ranked in place under the miner's locks: only the `limit` shown are copied.
        const auto view = pipe_->pick_templates(
            [&](const core::match::pattern_set& set) { return templates_pick(q, set); });
        return templates_json(view.picked, *view.patterns,
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    });
}

} // namespace faultline::server
