// Drain-style template mining, shared by all workers: the tree is sharded by (token count, first
// token), so a template lives in exactly one shard; a batch takes each shard's lock once (never a
// lock per event). Also tracks new templates (first seen after the warm-up).
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/mine/drain.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace faultline::core::mine {

struct miner_options {
    drain_options drain; ///< max_clusters applies to each shard / shards of the total
    std::size_t shards = 16;
    std::int64_t warmup_ms = 600'000; ///< templates first seen later than this after start are "new"
    std::size_t mask_bytes = 4096;    ///< masked text kept per message for mining
    bool operator==(const miner_options&) const = default;
};

class template_miner {
public:
    /// `start_ms`: Unix ms of the start (the warm-up counts from it).
    template_miner(miner_options options, std::int64_t start_ms);
    ~template_miner();

    /// Which template a masked line went to: a key unique in this miner (shard and cluster),
    /// that names the template for its whole life, through later generalizations.
    using assigned_fn = std::function<void(const std::string& masked, std::uint64_t key)>;

    /// Mines a batch: `masked` maps masked lines to their stats (count and details: their own,
    /// or those at their batch_slot of `open`, the batch's array). Consumed.
    /// `assigned`, when given, is called with each masked line (the map's key) and its template.
    void add(aggregate::string_map<aggregate::template_stats>& masked, std::int64_t now_ms,
             const assigned_fn* assigned = nullptr, const aggregate::batch_details* open = nullptr);
    /// f(key, text) for every template alive.
    void for_each_key(const std::function<void(std::uint64_t key, const std::string& text)>& f) const;
    /// Called (under a shard lock) with each template the cap evicts: its key and last text.
    void on_evict(std::function<void(std::uint64_t key, const std::string& text)> f);

    /// Every template: text -> stats (details with previous_texts and is_new), merged into `out`.
    void snapshot(aggregate::string_map<aggregate::template_stats>& out) const;
    /// The templates `pick` chooses, best first, each with its previous texts: every template is
    /// looked at under its shard's lock, only the chosen ones (at most limit per shard) are copied.
    std::vector<aggregate::picked_template> pick(const aggregate::template_pick& pick) const;
    /// Moves every template into `out` (the miner is left empty).
    void take(aggregate::string_map<aggregate::template_stats>& out);

    /// Re-creates a template from a saved state (it is not new).
    void restore(const std::string& text, std::vector<std::string> previous_texts,
                 aggregate::template_stats stats);
    /// Ends the warm-up now (a state was restored: the templates seen before are known). With
    /// detection off (warmup_ms 0) nothing changes.
    void end_warmup() noexcept { warmup_end_ms_.store(0, std::memory_order_relaxed); }

    /// Re-indexes the pattern ids kept in every template (see aggregate::counts::remap).
    void remap(const std::vector<std::int32_t>& old_to_new);

    std::uint64_t new_total() const noexcept { return new_total_.load(std::memory_order_relaxed); }
    /// Sets the new-template total back to `n` (a counter: after the templates were taken and
    /// mined again from the disk, it goes on from what it showed).
    void keep_new_total(std::uint64_t n) noexcept { new_total_.store(n, std::memory_order_relaxed); }
    std::uint64_t evicted() const;
    std::size_t size() const;

    /// Called (under a shard lock) with the text of each new template.
    void on_new(std::function<void(const std::string&)> f) { on_new_ = std::move(f); }
    /// Asks whether a template this miner found new is new everywhere (the replicas' shared
    /// store: the first replica to claim it). Called with no lock held, after the batch; the
    /// template shows as new meanwhile. `verdict(true)`: it is counted in new_total() and
    /// on_new() hears of it; `verdict(false)` (another replica had it first): it is not new.
    /// `verdict` may run on any thread, once, while this miner lives. Set before mining starts.
    using verdict_fn = std::function<void(bool first)>;
    void judge_new(std::function<void(const std::string& text, verdict_fn verdict)> judge) {
        judge_ = std::move(judge);
    }

    const miner_options& options() const noexcept { return options_; }

private:
    struct shard {
        std::mutex mutex;
        drain tree;
        explicit shard(const drain_options& o)
            : tree(o) {}
    };
    std::size_t shard_of(std::string_view masked) const noexcept;

    miner_options options_;
    std::vector<std::unique_ptr<shard>> shards_;
    bool detect_new_; ///< warmup_ms > 0
    std::atomic<std::int64_t> warmup_end_ms_;
    std::atomic<std::uint64_t> new_total_{0};
    std::function<void(const std::string&)> on_new_;
    std::function<void(const std::string&, verdict_fn)> judge_;
    /// A template judged new (or not) elsewhere: counted and announced, or its mark cleared.
    void settle_new(std::size_t where, const std::string& text, bool first);
};

} // namespace faultline::core::mine
