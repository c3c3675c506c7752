#include "faultline/server/service.hpp"

#include "faultline/core/pipeline/delivery.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/aggregate/state.hpp"
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
    // Workers yield to the I/O threads: reading bodies and writing acks promptly keeps the tail
    // latency low when the workers saturate the cores; throughput is the same.
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

bool service::ready() const noexcept {
    return !draining.load(std::memory_order_relaxed) && pipe_->queue_depth() < cfg_.limits.queue_capacity &&
           (cfg_.limits.queue_wait.count() == 0 || pipe_->oldest_wait() <= cfg_.limits.queue_wait) &&
           budget.used() < budget.limit();
}

std::optional<std::string> service::render_metrics() const {
    return durable_read([&] { return serialize_metrics(collectors_); });
}

void service::make_collectors() {
    using prometheus::MetricType;
    using values = value_collector::family;
    auto always = [](auto f) { return [f]() -> std::optional<double> { return static_cast<double>(f()); }; };
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
    const auto* j = &journal_;
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
         "Open client connections.",
         MetricType::Gauge,
         {{{}, always([this] { return connections.load(); })}}},
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
         {{{}, always([j] { return *j ? (*j)->records_written() : 0; })}}},
        {"faultline_journal_syncs_total",
         "fdatasync calls of the journal (each makes a group of deliveries durable).",
         MetricType::Counter,
         {{{}, always([j] { return *j ? (*j)->syncs() : 0; })}}},
        {"faultline_journal_write_failures_total",
         "Journal writes that failed (their deliveries were answered 500; the counts are then rebuilt from "
         "the disk without them).",
         MetricType::Counter,
         {{{}, always([j] { return *j ? (*j)->failures() : 0; })}}},
        {"faultline_journal_rebuilds_total",
         "Rebuilds of the counts from the state directory after failed journal writes.",
         MetricType::Counter,
         {{{}, always([this] { return rebuilds_.load(); })}}},
        {"faultline_journal_corrupt_tails",
         "Damaged journal tails found at start (kept aside as journal-N.log.corrupt-<ms>).",
         MetricType::Gauge,
         {{{}, always([this] { return journal_damaged_.load(); })}}},
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

namespace {
std::string state_path(const config::config& c) {
    return c.state_dir + "/state.json";
}
std::int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
} // namespace

service::restored service::restore_from_disk() {
    restored out;
    const std::string path = state_path(cfg_);
    std::uint64_t& replay_from = out.replay_from; // every segment, unless the snapshot says where it ends
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        log::info("no saved state: starting fresh", {{"path", path}});
    } else {
        auto text = core::aggregate::read_file(path);
        core::aggregate::delivery_ids ids;
        auto parsed = text ? core::aggregate::parse_state(*text, pipe_->patterns(), &replay_from, &ids)
                           : core::result<core::aggregate::counts>(text.error());
        if (parsed)
            for (const auto& [id, acked_ms] : ids)
                remember_delivery(id, acked_ms);
        if (!parsed) {
            replay_from = 0; // the snapshot is gone: every segment there is
            const std::string aside = path + ".corrupt-" + std::to_string(now_unix_ms());
            std::filesystem::rename(path, aside, ec);
            log::error("saved state unreadable: kept aside, starting fresh",
                       {{"path", path},
                        {"error", parsed.error().message},
                        {"kept_as", ec ? std::string("(rename failed: ") + ec.message() + ")" : aside}});
        } else {
            const std::size_t templates = parsed->templates.size();
            out.snapshot_events = parsed->events;
            pipe_->restore(std::move(*parsed));
            log::info("state restored", {{"path", path},
                                         {"templates", std::to_string(templates)},
                                         {"events", std::to_string(out.snapshot_events)}});
        }
    }
    // What was acknowledged after that snapshot: the journal's records, in order.
    // Each record is a delivery as received: decoded again, it adds what it added before.
    out.journal = core::aggregate::journal::replay(cfg_.state_dir, replay_from, [&](std::string_view record) {
        core::pipeline::delivery d;
        if (!pipe_->replay_record(record, &d)) return false;
        if (!d.dedupe_key.empty()) remember_delivery(d.dedupe_key, d.now_ms);
        return true;
    });
    for (std::size_t i = 0; i < out.journal.problems.size(); ++i)
        log::error(
            "journal damaged: replayed up to the damage, the rest kept aside",
            {{"problem", out.journal.problems[i]},
             {"kept_as", i < out.journal.kept_aside.size() ? out.journal.kept_aside[i] : std::string()}});
    journal_damaged_ += out.journal.kept_aside.size();
    return out;
}

void service::log_replayed(const restored& r) const {
    if (!r.journal.records && !r.journal.segments) return;
    const std::uint64_t events = pipe_->counters().totals.events;
    log::info("journal replayed",
              {{"records", std::to_string(r.journal.records)},
               {"events", std::to_string(events >= r.snapshot_events ? events - r.snapshot_events : 0)},
               {"segments", std::to_string(r.journal.segments)}});
}

void service::load_state() {
    if (cfg_.state_dir.empty()) {
        log::info(
            "state disabled (state_dir is empty): counters and templates start fresh and are not saved");
        return;
    }
    const restored r = restore_from_disk();
    log_replayed(r);
    auto opened = core::aggregate::journal::open(cfg_.state_dir, r.replay_from);
    if (!opened) {
        // Without a journal acknowledgements would not survive a crash: refuse to pretend.
        throw std::runtime_error("cannot open the journal: " + opened.error().message);
    }
    journal_ = std::move(*opened);
    pipe_->set_journal(journal_.get());
    // The replayed records are in the totals now: a snapshot makes them the starting point.
    if (r.journal.records) save_state();
}

bool service::journal_failed() const {
    return journal_ && journal_->failures() != failures_repaired_.load();
}

bool service::rebuild_after_failure() {
    if (!journal_failed()) return false;
    std::lock_guard one_at_a_time(save_mutex_);
    const std::uint64_t failures_before = failures_repaired_.load();
    restored r;
    // The counts in memory hold deliveries whose journal write failed (answered 500: their
    // senders retry them): they are dropped and the state is read again from the disk, which
    // has exactly what was acknowledged, as a restart would.
    pipe_->rebuild([&] {
        // Drained: every failure so far is behind this point. The count is rebuilt before the
        // failures are marked repaired (a reader that sees them repaired sees the new counts).
        // A reader that finds them repaired also finds the generation moved (it reads both after
        // its copy): its copy may predate the rebuild, so it reads again.
        const std::uint64_t failures = journal_->failures();
        ++rebuilds_;
        r = restore_from_disk();
        failures_repaired_.store(failures);
    });
    log::error("journal write failed: the counts were rebuilt from the state directory",
               {{"failed_writes", std::to_string(failures_repaired_.load() - failures_before)},
                {"records_replayed", std::to_string(r.journal.records)},
                {"dir", cfg_.state_dir}});
    return true;
}

std::optional<std::string> service::durable_read(const std::function<std::string()>& render) const {
    if (!journal_) return render();
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::uint64_t generation = rebuilds_.load();
        std::string out = render();
        // Every delivery counted in what was just read was appended to the journal before it
        // was committed: once the journal has synced up to here, all of it survives a crash.
        journal_->wait_synced(journal_->appended());
        // Unless a write failed and the counts were not rebuilt since: what was read may hold
        // deliveries answered 500, which a restart would not find. Not shown: the state is being
        // rebuilt (a rebuild during the read: read again).
        if (journal_failed()) return std::nullopt;
        if (rebuilds_.load() == generation) return out;
    }
    return std::nullopt;
}

void service::drain_journal() {
    if (journal_) journal_->drain();
}

std::uint64_t service::journal_bytes() const {
    return journal_ ? journal_->segment_bytes() : 0;
}

void service::remember_delivery(const std::string& id, std::int64_t acked_ms) {
    // Wall-clock ages become steady-clock points: the dedupe table ages entries on that clock.
    const auto now = std::chrono::steady_clock::now();
    const auto age = std::chrono::milliseconds(std::max<std::int64_t>(0, now_unix_ms() - acked_ms));
    dedupe_.remember(id, now - age, now);
    // A claim this process left in the shared store when it stopped (a crash between the journal
    // and the store's "done") would hold the id "in flight" for every replica until it expires:
    // an id acknowledged that recently is marked done again.
    if (store_ && age < cfg_.dedupe.in_flight_ttl) store_->finish(id, true);
}

core::aggregate::delivery_ids service::acknowledged_deliveries() const {
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t unix_now = now_unix_ms();
    core::aggregate::delivery_ids out;
    for (auto& [id, at] : dedupe_.acknowledged())
        out.emplace_back(id,
                         unix_now - std::chrono::duration_cast<std::chrono::milliseconds>(now - at).count());
    return out;
}

bool service::save_state() {
    if (cfg_.state_dir.empty()) return true;
    std::lock_guard one_at_a_time(save_mutex_);
    const std::string path = state_path(cfg_);
    std::string doc;
    std::uint64_t segment = 0;
    auto snapshot = [&] {
        const auto view = pipe_->view();
        const auto ids = acknowledged_deliveries();
        doc = core::aggregate::serialize_state(view.totals, *view.patterns, now_unix_ms(), segment, &ids);
    };
    if (journal_) {
        // A new segment starts while no delivery is being committed: the counts copied then plus
        // the segments from the new one on are the whole state. Only the copy is made while the
        // workers are held; the document is written after they go on.
        std::optional<core::pipeline::pipeline::totals_view> held;
        core::aggregate::delivery_ids ids;
        auto cp =
            pipe_->durable_checkpoint([&](core::pipeline::pipeline::totals_view& v, std::uint64_t next) {
                segment = next;
                // The ids of the deliveries in this copy, read in the hold: journaled ids of
                // later deliveries must not be in it (their records may never reach the disk).
                ids = acknowledged_deliveries();
                held.emplace(std::move(v));
            });
        if (!cp) {
            log::error("cannot start a new journal segment", {{"error", cp.error().message}});
            return false;
        }
        doc = core::aggregate::serialize_state(held->totals, *held->patterns, now_unix_ms(), segment, &ids);
        // Written only once the writer is in the new segment: until then the records after the
        // mark may still go to the old one, which this snapshot would let be removed.
        if (!cp->opened.get()) {
            log::error("cannot start a new journal segment: the state is kept in the journal until the next "
                       "snapshot",
                       {{"segment", std::to_string(segment)}, {"dir", cfg_.state_dir}});
            return false;
        }
        // A write failed before the mark: the copy may hold deliveries answered 500 (the
        // rebuild after the failure takes them out; the snapshot waits for it).
        if (journal_failed()) {
            log::error("state snapshot skipped: a journal write failed and the counts are not rebuilt yet",
                       {{"dir", cfg_.state_dir}});
            return false;
        }
    } else {
        snapshot();
    }
    if (auto r = core::aggregate::write_file_atomic(path, doc); !r) {
        log::error("cannot write the state snapshot", {{"path", path}, {"error", r.error().message}});
        return false;
    }
    if (journal_) journal_->remove_before(segment); // they are in the snapshot now
    return true;
}

std::optional<std::string> service::render_report() const {
    return durable_read([&] {
        const auto view = pipe_->view();
        return core::aggregate::render_report(view.totals, *view.patterns);
    });
}

std::optional<std::string> service::render_patterns(std::string_view group) const {
    return durable_read([&] {
        const auto view = pipe_->counters(); // counters and their pattern set, consistent across a reload
        return patterns_json(view.totals, *view.patterns, rates_.rates(std::chrono::seconds(60), group),
                             rates_.rates(std::chrono::seconds(900), group), group);
    });
}

std::optional<std::string> service::render_templates(const template_query& q) const {
    return durable_read([&] {
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
