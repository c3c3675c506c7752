// The worker pool shared by `faultline scan` and the server: one bounded queue of jobs, served in
// arrival order whichever thread submitted them (a mutex, a deque and a condition variable: jobs
// are whole deliveries, a few thousand a second, so the lock is never the bottleneck, and strict
// FIFO is what keeps the waiting time of every delivery alike), and one worker thread per core,
// each owning its decoder, matcher, analyzer and aggregate shard.
#pragma once

#include "faultline/core/aggregate/analyzer.hpp"
#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/match/pattern_set.hpp"
#include "faultline/core/mine/template_miner.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <thread>
#include <vector>

namespace faultline::core::pipeline {

struct delivery;

/// One template table shared by all workers (offline use): a template is stored once instead of
/// once per worker. Written once per batch, under its lock.
struct shared_templates {
    std::mutex mutex;
    aggregate::string_map<aggregate::template_stats> map;
};

/// Everything one worker owns. Jobs run on it; nothing in it is shared with other workers.
struct worker_context {
    worker_context(std::size_t index, std::shared_ptr<const match::pattern_set> patterns,
                   const decode::decode_limits& limits, const aggregate::analyze_options& options,
                   const aggregate::count_limits& count_limits);

    std::size_t index;
    decode::decoder decoder;
    match::matcher matcher;
    aggregate::analyzer analyzer;
    aggregate::counts batch;
    aggregate::shard shard;

    /// Starts a batch: events emitted to the returned sink are counted into `batch` only.
    /// Templates are stamped `now_ms` (Unix ms; 0 offline, where it is not reported).
    decode::event_sink& begin_batch(std::int64_t now_ms = 0) {
        // The miner recycled what it consumed; an uncommitted batch (a decode error) or one
        // committed as exact templates still holds counted entries.
        batch.restart(aggregate::counts::recycled_templates, !templates_recycled_, &analyzer.spare());
        templates_recycled_ = false;
        batch_now_ms = now_ms;
        analyzer.begin(batch, now_ms);
        return analyzer;
    }
    /// Makes the batch visible in the totals (all of it, at once), its events counted for `source`.
    void commit_batch(std::string_view source = {}) {
        if (!source.empty() && batch.events) {
            if (auto it = batch.by_source.find(source); it != batch.by_source.end())
                it->second += batch.events;
            else
                batch.by_source.emplace(source, batch.events);
        }
        if (miner && on_assignments) {
            assign_batch();
            templates_recycled_ = true;
        } else if (miner) {
            miner->add(batch.templates, batch_now_ms, nullptr,
                       &batch.open_details); // consumes its masked lines
            templates_recycled_ = true;
        } else if (templates) {
            batch.settle_details(); // each entry with its own details, moved whole below
            std::lock_guard lock(templates->mutex);
            for (auto& [text, stats] : batch.templates) {
                if (stats.count == 0) continue; // recycled: nothing
                auto it = templates->map.find(std::string_view(text));
                if (it == templates->map.end())
                    templates->map.emplace(text, std::move(stats));
                else
                    it->second.merge(stats);
            }
            batch.templates.clear();
        }
        // A mined batch of many lines is not kept until the next one (an idle worker would hold
        // it): past the bound its entries go to the spare list at once, as restart() does.
        if (miner) {
            batch.open_details.clear(); // merged into the templates
            batch.shed_templates(aggregate::counts::recycled_templates, &analyzer.spare());
        }
        shard.commit(batch); // exact templates: their details merged from the batch's array
    }

    shared_templates* templates = nullptr; ///< set when the pipeline shares one template table
    mine::template_miner* miner = nullptr; ///< set when templates are mined (Drain)
    std::int64_t batch_now_ms = 0;
    /// pipeline_options::on_assignments (mining only).
    const std::function<void(std::span<const std::uint64_t>)>* on_assignments = nullptr;

private:
    void assign_batch();
    /// Every entry of batch.templates is recycled (the last batch went to the miner).
    bool templates_recycled_ = false;
};

class durable_verdict;

/// Holds a durable verdict back while it lives (pipeline::commit_durably); it is given once the
/// hold is gone and the journal has answered.
class verdict_hold {
public:
    explicit verdict_hold(std::shared_ptr<durable_verdict> verdict) noexcept
        : verdict_(std::move(verdict)) {}
    verdict_hold(verdict_hold&&) noexcept = default;
    verdict_hold(const verdict_hold&) = delete;
    verdict_hold& operator=(const verdict_hold&) = delete;
    verdict_hold& operator=(verdict_hold&&) = delete;
    ~verdict_hold();

private:
    std::shared_ptr<durable_verdict> verdict_;
};

class job {
public:
    virtual ~job() = default;
    /// Runs on a worker thread. Must not throw.
    virtual void run(worker_context& worker) noexcept = 0;
};

struct pipeline_options {
    std::size_t workers = 0;         ///< 0: one per hardware thread
    std::size_t queue_capacity = 64; ///< jobs admitted and not finished (queued or running)
    decode::decode_limits limits;
    aggregate::analyze_options analyze;
    aggregate::count_limits totals;  ///< bounds of each worker's totals
    bool share_templates = false;    ///< one template table for all workers (offline use)
    std::size_t inline_contexts = 0; ///< contexts for callers that process tiny jobs themselves
    int worker_nice = 0;             ///< nice value of the worker threads (> 0: others get the larger share)
    /// Mine templates (Drain) instead of counting exact masked messages.
    std::optional<mine::miner_options> mining;
    std::int64_t start_ms = 0; ///< Unix ms of the start (the mining warm-up counts from it)
    /// try_submit() refuses (admission::queue_wait) while the oldest queued job has waited longer
    /// than this: a new job would wait at least as long. Zero: no bound (offline use).
    std::chrono::steady_clock::duration queue_wait{0};
    /// The clock queue waits are measured with (injected by the tests).
    std::function<std::chrono::steady_clock::time_point()> clock;
    /// When set, deliveries are committed through this journal (commit_durably): their record
    /// is queued and their counts applied at once, and their verdicts given only once the
    /// journal has the record on disk (readers that export counts wait for it too).
    aggregate::journal* journal = nullptr;
    /// When mining: called after each batch with, per event of the batch in order, the key of its
    /// template (template_miner keys; 0: not mined). From the worker threads: with more than one
    /// worker, batches come in any order.
    std::function<void(std::span<const std::uint64_t>)> on_assignments;
};

/// accepted: queued (runs, then its result goes to its callback). queue_full: as many jobs as
/// queue_capacity are admitted. queue_wait: the oldest queued job has waited longer than
/// queue_wait. stopped: stop() was called. On anything but accepted the job stays with the caller.
enum class admission { accepted, queue_full, queue_wait, stopped };

class pipeline {
public:
    pipeline(std::shared_ptr<const match::pattern_set> patterns, pipeline_options options);
    ~pipeline();
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;

    /// Never blocks. On anything but `accepted` the job stays with the caller.
    admission try_submit(std::unique_ptr<job>& j);
    /// Blocks while the queue is full (offline use).
    void submit(std::unique_ptr<job> j);
    /// Refuses new jobs, runs every admitted one, then stops the workers. Idempotent; must not be
    /// called from a worker.
    void stop();

    /// Totals of every committed batch so far (merged from the shards).
    aggregate::counts snapshot() const;
    /// Moves every shard's totals into one (the shards are left empty); for the end of an
    /// offline run, where a copy would double the peak memory.
    aggregate::counts take_totals();
    /// Adds totals restored from a saved state (templates go to the miner, which then ends its
    /// warm-up: the templates seen before the restart are known).
    void restore(aggregate::counts state);
    /// Per-pattern totals only (cheap).
    std::vector<std::uint64_t> pattern_totals() const;
    /// Per-pattern totals of at most `max_groups` groups (for per-group rates).
    aggregate::string_map<std::vector<std::uint64_t>> group_pattern_totals(std::size_t max_groups) const;

    std::size_t queue_depth() const noexcept { return depth_.load(std::memory_order_relaxed); }
    /// How long the oldest queued (not yet running) job has waited; zero when none waits.
    std::chrono::steady_clock::duration oldest_wait() const;
    std::size_t workers() const noexcept { return workers_; }
    /// A context owned by one caller thread (an I/O thread) for jobs it runs itself. Its totals
    /// are part of every snapshot.
    worker_context& inline_context(std::size_t i) noexcept { return *contexts_[workers() + i]; }
    /// The current pattern set. Single-threaded use only (e.g. scan); concurrent readers use
    /// current_patterns() or view(), which stay valid across swap_patterns().
    const match::pattern_set& patterns() const noexcept { return *patterns_; }
    std::shared_ptr<const match::pattern_set> current_patterns() const;

    /// Totals and the pattern set they are indexed by, taken together (consistent across a swap).
    struct totals_view {
        aggregate::counts totals;
        std::shared_ptr<const match::pattern_set> patterns;
    };
    totals_view view() const;
    /// The same without the templates (their count is in templates_alive()): what the counters of
    /// /metrics and /v1/patterns read, without copying a template.
    totals_view counters() const;
    /// Templates evicted by the cap so far (what counters() reports, without copying them).
    std::uint64_t templates_evicted() const;

    /// Some templates, chosen in place (see aggregate::template_pick), with the pattern set
    /// their pattern ids refer to and how many templates there are in all.
    struct templates_view {
        std::vector<aggregate::picked_template> picked;
        std::size_t alive = 0;
        std::shared_ptr<const match::pattern_set> patterns;
    };
    /// `make` is called with the pattern set in force (it may refer to it: a swap waits).
    templates_view
    pick_templates(const std::function<aggregate::template_pick(const match::pattern_set&)>& make) const;

    /// Swaps in another pattern set (a configuration reload): waits for the jobs being run to
    /// finish, re-indexes every total by pattern name (a pattern that is gone takes its counts
    /// with it; a new one starts at zero), and resumes. Jobs after it match with `next`.
    void swap_patterns(std::shared_ptr<const match::pattern_set> next);

    /// Runs a job on the calling thread with inline_context(i), under the same guard as workers.
    void run_inline(job& j, std::size_t i);
    /// Appends `record` followed by `body` (the delivery: journal_record_head, and its body
    /// moved in) to the journal, then commits the
    /// worker's batch for `source`. `complete(true)` runs once the record is on disk, the batch
    /// is committed and the returned hold is gone (the caller's bookkeeping goes first), so
    /// whoever is given the verdict reads the counts back; false: the write failed. Readers that
    /// export counts wait for durability (journal::wait_synced), so what they show survives a
    /// crash. Requires a journal. Throws only before the record is queued (then `complete` is
    /// never called).
    [[nodiscard]] verdict_hold commit_durably(worker_context& worker, std::string_view source,
                                              std::string record, std::string body,
                                              std::function<void(bool ok)> complete);
    /// The state snapshot with a journal: holds new jobs, waits for the running ones, starts a
    /// new journal segment (journal::start_segment: a mark, no wait for the disk) and calls
    /// `snapshot` with the totals and that segment's number (the totals hold exactly the
    /// records before it). The snapshot may be written once the returned `opened` says true.
    result<aggregate::journal::segment_start>
    durable_checkpoint(const std::function<void(totals_view&, std::uint64_t segment)>& snapshot);
    /// Starts over from the disk (after a failed journal write: the counts in memory hold
    /// deliveries answered false, which the disk does not have). Holds new jobs, waits for the
    /// running ones and for the journal to write what they appended, drops every count and
    /// template, then calls `load` with the pipeline to itself: it restores the snapshot and
    /// replays the journal (restore, replay_record, as at start). Counters that are not state
    /// (the miner's new-template total) keep their value.
    void rebuild(const std::function<void()>& load);
    /// Replays a journal record at start (single-threaded, before any job): decodes it again and
    /// applies it. False: not a record this build reads, or it no longer decodes. `replayed`,
    /// when given, receives the record's delivery (its body moved out).
    bool replay_record(std::string_view record, delivery* replayed = nullptr);
    aggregate::journal* journal() const noexcept { return options_.journal; }
    /// Sets the journal (at start, after replay, before any job is submitted).
    void set_journal(aggregate::journal* j) noexcept { options_.journal = j; }
    /// The template miner, when mining (null for exact templates).
    mine::template_miner* miner() noexcept { return miner_.get(); }
    const mine::template_miner* miner() const noexcept { return miner_.get(); }

private:
    struct queue;
    void work(worker_context& ctx);
    void release_slot();

    std::shared_ptr<const match::pattern_set> patterns_;
    pipeline_options options_;
    std::unique_ptr<queue> queue_;
    std::unique_ptr<shared_templates> templates_;
    std::unique_ptr<mine::template_miner> miner_;
    // Jobs run under a shared lock; swap_patterns() takes it exclusively. `swapping_` holds new
    // jobs back while a swap waits, so a stream of jobs cannot starve it.
    mutable std::shared_mutex epoch_;
    std::atomic<bool> swapping_{false};
    void wait_for_swap() const noexcept;
    totals_view view_unlocked() const;
    std::atomic<std::size_t> depth_{0};
    std::atomic<bool> stopped_{false};
    std::vector<std::unique_ptr<worker_context>> contexts_;
    std::size_t workers_ = 0;
    worker_context* durable_ = nullptr; ///< the last context: what the journal replays at start
    std::vector<std::jthread> threads_;
};

} // namespace faultline::core::pipeline
