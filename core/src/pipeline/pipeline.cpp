#include "faultline/core/pipeline/pipeline.hpp"

#include "faultline/core/pipeline/delivery.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <unordered_map>

#include <sys/resource.h>
#include <unistd.h>

namespace faultline::core::pipeline {

worker_context::worker_context(std::size_t i, std::shared_ptr<const match::pattern_set> patterns,
                               const decode::decode_limits& limits, const aggregate::analyze_options& options,
                               const aggregate::count_limits& count_limits)
    : index(i)
    , decoder(limits)
    , matcher(patterns)
    , analyzer(matcher, options)
    , batch(patterns->size())
    , shard(patterns->size(), count_limits) {}

/// Jobs in arrival order across every submitting thread (a null job tells one worker to exit).
namespace {
/// Holds new jobs while it lives (they wait in wait_for_swap); released however the hold ends,
/// an exception included, and the waiting threads woken.
struct swap_hold {
    std::atomic<bool>& flag;
    explicit swap_hold(std::atomic<bool>& f)
        : flag(f) {
        flag.store(true, std::memory_order_release);
    }
    ~swap_hold() {
        flag.store(false, std::memory_order_release);
        flag.notify_all();
    }
    swap_hold(const swap_hold&) = delete;
    swap_hold& operator=(const swap_hold&) = delete;
};
} // namespace

struct pipeline::queue {
    struct entry {
        job* j;
        std::chrono::steady_clock::time_point queued;
    };
    mutable std::mutex mutex;
    std::condition_variable ready;
    std::deque<entry> jobs;

    void push(job* j, std::chrono::steady_clock::time_point now) {
        {
            std::lock_guard lock(mutex);
            jobs.push_back({j, now});
        }
        ready.notify_one();
    }
    job* pop() {
        std::unique_lock lock(mutex);
        ready.wait(lock, [this] { return !jobs.empty(); });
        job* j = jobs.front().j;
        jobs.pop_front();
        return j;
    }
    /// When the oldest waiting job was queued (nullopt: none waits).
    std::optional<std::chrono::steady_clock::time_point> oldest() const {
        std::lock_guard lock(mutex);
        if (jobs.empty()) return std::nullopt;
        return jobs.front().queued;
    }
};

pipeline::pipeline(std::shared_ptr<const match::pattern_set> patterns, pipeline_options options)
    : patterns_(std::move(patterns))
    , options_(options)
    , queue_(std::make_unique<queue>()) {
    std::size_t n = options_.workers ? options_.workers : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (options_.queue_capacity == 0) options_.queue_capacity = 1;
    if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
    if (options_.mining) options_.analyze.mask_bytes = options_.mining->mask_bytes;
    if (options_.mining && options_.on_assignments) options_.analyze.record_events = true;
    workers_ = n;
    // Workers, then the inline contexts, then the replay context (what the journal replays at start).
    for (std::size_t i = 0; i < n + options_.inline_contexts + 1; ++i)
        contexts_.push_back(std::make_unique<worker_context>(i, patterns_, options_.limits, options_.analyze,
                                                             options_.totals));
    durable_ = contexts_.back().get();
    if (options_.mining) miner_ = std::make_unique<mine::template_miner>(*options_.mining, options_.start_ms);
    if (options_.share_templates) {
        templates_ = std::make_unique<shared_templates>();
        for (auto& ctx : contexts_)
            ctx->templates = templates_.get();
    }
    for (auto& ctx : contexts_) {
        ctx->miner = miner_.get();
        if (miner_ && options_.on_assignments) ctx->on_assignments = &options_.on_assignments;
    }
    for (std::size_t i = 0; i < n; ++i)
        threads_.emplace_back([this, c = contexts_[i].get()] {
            // Linux: a nice value is per thread. Failing to lower the priority is harmless.
            if (options_.worker_nice > 0)
                (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.worker_nice);
            work(*c);
        });
}

pipeline::~pipeline() {
    stop();
}

void pipeline::work(worker_context& ctx) {
    for (;;) {
        job* j = queue_->pop();
        if (!j) return; // stop marker
        {
            wait_for_swap();
            std::shared_lock guard(epoch_);
            j->run(ctx);
        }
        delete j;
        release_slot();
    }
}

admission pipeline::try_submit(std::unique_ptr<job>& j) {
    // Admit first, then check for stop: stop() sets the flag before it waits for the admitted
    // count to reach zero, so a job is either refused here or run before the workers exit.
    if (depth_.fetch_add(1, std::memory_order_seq_cst) >= options_.queue_capacity) {
        release_slot();
        return admission::queue_full;
    }
    if (stopped_.load(std::memory_order_seq_cst)) {
        release_slot();
        return admission::stopped;
    }
    const auto now = options_.clock();
    if (options_.queue_wait.count() > 0) {
        // Waiting time, not only length: a queue whose head has waited too long cannot serve a
        // new job in time either (the sender would give up on it while it waits).
        if (const auto oldest = queue_->oldest(); oldest && now - *oldest > options_.queue_wait) {
            release_slot();
            return admission::queue_wait;
        }
    }
    queue_->push(j.release(), now);
    return admission::accepted;
}

std::chrono::steady_clock::duration pipeline::oldest_wait() const {
    const auto oldest = queue_->oldest();
    if (!oldest) return std::chrono::steady_clock::duration::zero();
    return std::max(options_.clock() - *oldest, std::chrono::steady_clock::duration::zero());
}

void pipeline::release_slot() {
    depth_.fetch_sub(1, std::memory_order_seq_cst);
    depth_.notify_all();
}

void pipeline::submit(std::unique_ptr<job> j) {
    for (;;) {
        const admission a = try_submit(j);
        if (a != admission::queue_full) return;
        const std::size_t seen = depth_.load(std::memory_order_acquire);
        if (seen >= options_.queue_capacity) depth_.wait(seen, std::memory_order_acquire);
    }
}

void pipeline::stop() {
    if (stopped_.exchange(true, std::memory_order_seq_cst)) return;
    // Every admitted job runs: wait until none is queued or running, then release the workers.
    for (std::size_t seen = depth_.load(); seen != 0; seen = depth_.load())
        depth_.wait(seen);
    for (std::size_t i = 0; i < threads_.size(); ++i)
        queue_->push(nullptr, options_.clock());
    threads_.clear(); // joins
}

void pipeline::wait_for_swap() const noexcept {
    // Blocked, not spinning: the thread holding the swap needs the cores to finish it.
    while (swapping_.load(std::memory_order_acquire))
        swapping_.wait(true, std::memory_order_acquire);
}

void pipeline::run_inline(job& j, std::size_t i) {
    wait_for_swap();
    std::shared_lock guard(epoch_);
    j.run(inline_context(i));
}

/// A durable verdict waits for two arrivals: the journal's (the record written, or not) and the
/// worker's (the batch committed). Whichever comes second gives it.
class durable_verdict {
public:
    explicit durable_verdict(std::function<void(bool ok)> complete)
        : complete_(std::move(complete)) {}
    void written(bool ok) noexcept {
        written_ = ok; // published by the release below
        arrive();
    }
    void committed() noexcept { arrive(); }

private:
    void arrive() noexcept {
        if (waiting_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        try {
            complete_(written_);
        } catch (...) {
            // The verdict could not be handed back: its session waits until its connection ends.
        }
    }
    std::function<void(bool ok)> complete_;
    std::atomic<int> waiting_{2};
    bool written_ = false;
};

verdict_hold::~verdict_hold() {
    if (verdict_) verdict_->committed();
}

verdict_hold pipeline::commit_durably(worker_context& worker, std::string_view source, std::string record,
                                      std::string body, std::function<void(bool ok)> complete) {
    // Appended first, committed after: a reader that sees the batch and then waits for what was
    // appended before its read to be synced (journal::wait_synced) exports nothing undurable.
    // The verdict waits for the commit too (and for the caller's hold): whoever has it reads
    // its counts back (a journal faster than the worker would otherwise answer before them).
    auto verdict = std::make_shared<durable_verdict>(std::move(complete));
    options_.journal->append(
        {std::move(record), [verdict](bool ok) { verdict->written(ok); }, std::move(body)});
    verdict_hold hold(std::move(verdict));
    // From here the record is the journal's: this must not throw (the caller would answer again).
    try {
        worker.commit_batch(source);
    } catch (...) {
        // Only an allocation can fail here. The verdict follows the disk, which a restart reads;
        // until then the counts in memory lack this batch.
    }
    return hold;
}

void worker_context::assign_batch() {
    // The batch's masked lines are keys of batch.templates: the analyzer recorded, per event,
    // the address of its line's key; the miner says which template each line went to.
    std::unordered_map<const std::string*, std::uint64_t> key_of_line;
    key_of_line.reserve(batch.templates.size());
    const mine::template_miner::assigned_fn note = [&](const std::string& masked, std::uint64_t key) {
        key_of_line.emplace(&masked, key);
    };
    const auto& events = analyzer.event_templates();
    miner->add(batch.templates, batch_now_ms, &note, &batch.open_details);
    std::vector<std::uint64_t> keys;
    keys.reserve(events.size());
    for (const std::string* line : events)
        keys.push_back(line ? key_of_line.at(line) : 0);
    (*on_assignments)(keys);
}

result<aggregate::journal::segment_start>
pipeline::durable_checkpoint(const std::function<void(totals_view&, std::uint64_t segment)>& snapshot) {
    if (!options_.journal) return make_error(errc::internal, "no journal");
    swap_hold hold(swapping_);      // new jobs wait (as for a pattern swap)
    std::unique_lock guard(epoch_); // the running jobs have appended and committed
    // Only a mark in the journal's queue: the records before it (in these totals) are written to
    // the old segment after the hold, without anybody waiting for the disk.
    auto start = options_.journal->start_segment();
    totals_view v = view_unlocked();
    snapshot(v, start.number);
    return start;
}

void pipeline::rebuild(const std::function<void()>& load) {
    swap_hold hold(swapping_);      // new jobs wait (as for a pattern swap)
    std::unique_lock guard(epoch_); // the running jobs have appended and committed
    if (options_.journal) options_.journal->drain();
    const std::uint64_t new_templates = miner_ ? miner_->new_total() : 0;
    (void)take_totals(); // dropped: the disk says what was acknowledged
    load();
    if (miner_) miner_->keep_new_total(new_templates);
}

bool pipeline::replay_record(std::string_view record, delivery* replayed) {
    auto d = parse_journal_record(record);
    if (!d) return false;
    // Decoded again and committed as a worker commits a delivery (stamped with its arrival).
    if (decode_delivery(*durable_, *d).failure) return false;
    durable_->commit_batch(d->source);
    if (replayed) *replayed = std::move(*d);
    return true;
}

std::shared_ptr<const match::pattern_set> pipeline::current_patterns() const {
    std::shared_lock guard(epoch_);
    return patterns_;
}

pipeline::totals_view pipeline::view() const {
    std::shared_lock guard(epoch_);
    return view_unlocked();
}

pipeline::totals_view pipeline::view_unlocked() const {
    totals_view v{aggregate::counts(patterns_->size()), patterns_};
    for (const auto& ctx : contexts_)
        ctx->shard.add_to(v.totals);
    if (miner_) {
        miner_->snapshot(v.totals.templates);
        v.totals.templates_evicted += miner_->evicted();
    }
    return v;
}

pipeline::totals_view pipeline::counters() const {
    std::shared_lock guard(epoch_);
    totals_view v{aggregate::counts(patterns_->size()), patterns_};
    for (const auto& ctx : contexts_)
        ctx->shard.add_counters_to(v.totals);
    if (miner_) v.totals.templates_evicted += miner_->evicted();
    return v;
}

std::uint64_t pipeline::templates_evicted() const {
    std::shared_lock guard(epoch_);
    std::uint64_t n = miner_ ? miner_->evicted() : 0;
    for (const auto& ctx : contexts_)
        n += ctx->shard.templates_evicted();
    return n;
}

pipeline::templates_view pipeline::pick_templates(
    const std::function<aggregate::template_pick(const match::pattern_set&)>& make) const {
    std::shared_lock guard(epoch_);
    templates_view v{{}, 0, patterns_};
    const aggregate::template_pick pick = make(*patterns_);
    if (miner_) {
        v.picked = miner_->pick(pick);
        v.alive = miner_->size();
    } else {
        // Exact templates: a text may be in several workers' shards, so they are merged first.
        aggregate::counts all(patterns_->size());
        for (const auto& ctx : contexts_)
            ctx->shard.add_to(all);
        v.picked = aggregate::pick_templates(all.templates, pick);
        v.alive = all.templates.size();
    }
    return v;
}

void pipeline::swap_patterns(std::shared_ptr<const match::pattern_set> next) {
    {
        swap_hold hold(swapping_);
        std::unique_lock guard(epoch_);
        std::vector<std::int32_t> old_to_new(patterns_->size(), -1);
        for (std::size_t i = 0; i < patterns_->size(); ++i)
            for (std::size_t k = 0; k < next->size(); ++k)
                if (patterns_->patterns()[i].name == next->patterns()[k].name)
                    old_to_new[i] = static_cast<std::int32_t>(k);
        for (auto& ctx : contexts_) {
            ctx->matcher.reset(next);
            ctx->batch = aggregate::counts(next->size());
            ctx->shard.remap(old_to_new, next->size());
        }
        if (miner_) miner_->remap(old_to_new);
        patterns_ = std::move(next);
    }
}

aggregate::counts pipeline::snapshot() const {
    std::shared_lock guard(epoch_);
    aggregate::counts out(patterns_->size());
    for (const auto& ctx : contexts_)
        ctx->shard.add_to(out);
    if (templates_) {
        std::lock_guard lock(templates_->mutex);
        for (const auto& [text, stats] : templates_->map)
            out.templates[text].merge(stats);
    }
    if (miner_) {
        miner_->snapshot(out.templates);
        out.templates_evicted += miner_->evicted();
    }
    return out;
}

aggregate::counts pipeline::take_totals() {
    aggregate::counts out = contexts_.front()->shard.take();
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
        aggregate::counts part = contexts_[i]->shard.take();
        // Merge the smaller into the larger.
        if (part.templates.size() > out.templates.size()) std::swap(part, out);
        out.merge(part);
    }
    if (templates_) {
        std::lock_guard lock(templates_->mutex);
        if (out.templates.empty())
            out.templates = std::move(templates_->map);
        else
            for (auto& [text, stats] : templates_->map)
                out.templates[text].merge(stats);
        templates_->map.clear();
    }
    if (miner_) {
        out.templates_evicted += miner_->evicted();
        miner_->take(out.templates);
    }
    return out;
}

void pipeline::restore(aggregate::counts state) {
    if (miner_) {
        for (auto& [text, stats] : state.templates) {
            std::vector<std::string> previous =
                stats.details ? stats.details->previous_texts : std::vector<std::string>{};
            miner_->restore(text, std::move(previous), std::move(stats));
        }
        state.templates.clear();
        miner_->end_warmup();
    }
    if (state.patterns.size() < patterns_->size()) state.patterns.resize(patterns_->size(), 0);
    contexts_.front()->shard.commit(state);
}

std::vector<std::uint64_t> pipeline::pattern_totals() const {
    std::shared_lock guard(epoch_);
    std::vector<std::uint64_t> out(patterns_->size(), 0);
    for (const auto& ctx : contexts_)
        ctx->shard.add_patterns_to(out);
    return out;
}

aggregate::string_map<std::vector<std::uint64_t>>
pipeline::group_pattern_totals(std::size_t max_groups) const {
    std::shared_lock guard(epoch_);
    aggregate::string_map<std::vector<std::uint64_t>> all;
    for (const auto& ctx : contexts_)
        ctx->shard.add_group_patterns_to(all);
    if (all.size() <= max_groups) return all;
    // The same groups every time (the first by name), so consecutive samples compare like with like.
    std::vector<std::string_view> names;
    names.reserve(all.size());
    for (const auto& [g, v] : all)
        names.push_back(g);
    std::nth_element(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(max_groups), names.end());
    names.resize(max_groups);
    aggregate::string_map<std::vector<std::uint64_t>> out;
    for (auto g : names)
        out.emplace(std::string(g), std::move(all.find(g)->second));
    return out;
}

} // namespace faultline::core::pipeline
