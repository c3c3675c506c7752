// The aggregate model: what faultline counts. One `counts` per batch (a request or a chunk of a
// file) is built without locks, then committed into the worker's shard; readers merge shards.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace faultline::core::aggregate {

/// XXH3 of `s` (counts.cpp): several times faster than std::hash's on the masked lines that key
/// a batch's templates, one lookup per error event.
std::size_t text_hash(std::string_view s) noexcept;

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return text_hash(s); }
};

template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

/// What the API shows of a template beyond its count (not kept by `faultline scan`).
struct template_details {
    std::int64_t first_seen_ms = 0; ///< Unix ms of the batch that first saw it
    std::int64_t last_seen_ms = 0;
    std::string sample;                  ///< one real message, truncated (UTF-8 safe)
    std::vector<std::uint32_t> patterns; ///< ids of the patterns its events matched, ascending
    std::vector<std::pair<std::string, std::uint64_t>> groups; ///< first few groups, with counts
    std::vector<std::string> previous_texts; ///< mined: texts it had before it generalized (oldest first)
    bool is_new = false;                     ///< mined: first seen after the warm-up
    /// Events per minute over the last 16 minutes (index: Unix minute % 16), for the recent rates.
    std::array<std::uint32_t, 16> minutes{};
    std::int64_t minute_seen = 0; ///< the latest Unix minute counted in `minutes`

    static constexpr std::size_t max_sample_bytes = 512;
    static constexpr std::size_t max_groups = 8;

    /// Counts `n` events in the Unix minute of `now_ms`.
    void count_minute(std::int64_t now_ms, std::uint64_t n) noexcept;
    /// Events per second over the last `minutes_back` whole minutes plus the current one, as of `now_ms`.
    double rate(std::int64_t now_ms, int minutes_back) const noexcept;
    /// Events counted in a Unix minute (0 when it is not among the 16 kept).
    std::uint32_t in_minute(std::int64_t minute) const noexcept {
        return minute <= minute_seen && minute > minute_seen - 16 ? minutes[slot(minute)] : 0;
    }
    /// The slot of a Unix minute in `minutes` (before 1970 too: never negative).
    static std::size_t slot(std::int64_t minute) noexcept {
        return static_cast<std::size_t>(((minute % 16) + 16) % 16);
    }
};

/// The details of one template of an open batch (aggregate::analyzer). A batch holds a few
/// hundred masked lines, most of them seen once or twice: their details are kept side by side in
/// one array (batch_details), where a line's events find them warm, rather than in a
/// template_details of their own each, which every event would find cold. The miner merges them
/// into its templates' details (template_stats::merge_batch); counts::settle_details() makes
/// template_details of them where a batch is merged as it is (exact templates).
struct batch_detail {
    static constexpr std::size_t inline_ids = 4;
    std::size_t sample_offset = 0; ///< the sample: batch_details::samples[offset, offset + size)
    std::uint32_t sample_size = 0;
    std::uint32_t id_count = 0; ///< pattern ids, ascending: in `ids`, or when more than
    std::int32_t spilled = -1;  ///< inline_ids, in batch_details::spilled_ids[spilled]
    std::array<std::uint32_t, inline_ids> ids{};
    std::uint32_t group_count = 0; ///< the first groups (at most max_groups), with events
    std::array<const std::string*, template_details::max_groups> groups{}; ///< keys of counts::by_group
    std::array<std::uint32_t, template_details::max_groups> group_events{};
};

/// An open batch's template details (see batch_detail); emptied when the batch restarts.
struct batch_details {
    std::int64_t now_ms = 0; ///< the batch's time: its templates' first and last seen
    std::vector<batch_detail> entries;
    std::string samples;
    std::vector<std::vector<std::uint32_t>> spilled_ids;

    /// The first event of a template in this batch; returns its slot in `entries`.
    std::uint32_t first(std::string_view message, std::span<const std::uint32_t> ids,
                        const std::string* group);
    /// Another event of the template at `slot`.
    void again(std::uint32_t slot, std::span<const std::uint32_t> ids, const std::string* group);
    std::span<const std::uint32_t> ids_of(const batch_detail& d) const noexcept {
        return d.spilled >= 0
                   ? std::span<const std::uint32_t>(spilled_ids[static_cast<std::size_t>(d.spilled)])
                   : std::span<const std::uint32_t>(d.ids.data(), d.id_count);
    }
    std::string_view sample_of(const batch_detail& d) const noexcept {
        return std::string_view(samples).substr(d.sample_offset, d.sample_size);
    }
    /// Empties it for the next batch, keeping the storage of a batch of up to kept_entries
    /// templates: a rare larger batch's goes (an idle worker would hold it).
    void clear() noexcept {
        if (entries.capacity() > kept_entries) {
            std::vector<batch_detail>().swap(entries);
            std::string().swap(samples);
        }
        entries.clear();
        samples.clear();
        spilled_ids.clear();
        if (samples.capacity() > kept_entries * 256) std::string().swap(samples);
    }
    static constexpr std::size_t kept_entries = 4096;
};

/// One template: its count, and its details when they are kept (24 bytes without them).
struct template_stats {
    static constexpr std::uint32_t no_batch_slot = UINT32_MAX;
    std::uint64_t count = 0;
    std::unique_ptr<template_details> details;
    /// In an open batch whose details are kept: its slot in the batch's batch_details (they are
    /// there, not in `details`). Copies have none.
    std::uint32_t batch_slot = no_batch_slot;

    template_stats() = default;
    template_stats(template_stats&&) noexcept = default;
    template_stats& operator=(template_stats&&) noexcept = default;
    template_stats(const template_stats& o)
        : count(o.count)
        , details(o.details ? std::make_unique<template_details>(*o.details) : nullptr) {}
    template_stats& operator=(const template_stats& o) {
        if (this != &o) *this = template_stats(o);
        return *this;
    }

    /// Counts one more event (group, matched pattern ids ascending, message) seen at `now_ms`.
    void add(std::string_view group, std::span<const std::uint32_t> ids, std::string_view message,
             std::int64_t now_ms);
    void merge(const template_stats& other);
    /// Merges `n` events of an open batch's template: its details at `slot` of `batch`, seen at
    /// the batch's time.
    void merge_batch(const batch_details& batch, std::uint32_t slot, std::uint64_t n);
    void remap(const std::vector<std::int32_t>& old_to_new);
    /// Empties it for reuse in another batch, keeping its allocations: count 0, and its details
    /// stand for nothing (every reader of a batch skips entries of count 0; the next add()
    /// replaces them in their storage, and a merge into it takes the other's). A batch entry is
    /// then found and filled again without allocating, and without a pass over its details.
    void recycle() noexcept;
    std::int64_t last_seen_ms() const noexcept { return details ? details->last_seen_ms : 0; }
};

/// Bounds of the totals (0: unbounded, as `faultline scan` needs for exact reports).
struct count_limits {
    std::size_t max_groups = 0;    ///< distinct groups; further groups are counted as "other"
    std::size_t max_templates = 0; ///< templates; the least recently seen are evicted beyond it
};

/// The group that stands for every group beyond count_limits::max_groups.
inline constexpr std::string_view other_group = "other";

/// Template entries taken out of a batch's map with their storage (see counts::restart).
using spare_templates = std::vector<string_map<template_stats>::node_type>;

struct counts {
    std::uint64_t documents = 0;         ///< CloudWatch DATA_MESSAGE documents
    std::uint64_t events = 0;            ///< log events (every event of a data message, every text line)
    std::uint64_t control_messages = 0;  ///< CloudWatch CONTROL_MESSAGE documents
    std::vector<std::uint64_t> patterns; ///< by pattern id
    string_map<std::vector<std::uint64_t>> by_group; ///< group -> by pattern id
    string_map<template_stats> templates;            ///< template text -> stats
    string_map<std::uint64_t> by_source;             ///< ingest source -> events
    std::uint64_t templates_evicted = 0;             ///< dropped by count_limits::max_templates
    /// An open batch's template details (template_stats::batch_slot); nothing in totals.
    batch_details open_details;

    explicit counts(std::size_t pattern_count = 0)
        : patterns(pattern_count, 0) {}

    /// Adds `other` (same pattern set) into this, within `limits`.
    void merge(const counts& other, const count_limits& limits = {});
    /// The same without the templates (what the counters of /metrics need).
    void merge_counters(const counts& other, const count_limits& limits = {});
    /// Re-indexes everything kept by pattern id after the pattern set changed: `old_to_new[i]` is
    /// the new id of old pattern i, or -1 when it is gone (its counts are dropped).
    void remap(const std::vector<std::int32_t>& old_to_new, std::size_t new_size);
    /// Empties the counters, keeping the pattern count (and allocations).
    void clear();
    /// Moves the open batch's template details into its templates' `details` (for a batch merged
    /// as it is, not through the miner): every counted entry then holds its own.
    void settle_details();
    /// Empties the counters for the next batch; the entries of up to `recycled_groups` groups and
    /// sources are kept at zero (every reader of a batch skips them; none when `keep` is 0).
    /// The template entries are kept, recycled (count 0:
    /// they stand for nothing until counted again), up to `keep` of them: the same templates come
    /// batch after batch, and their entries then cost no allocation. Beyond `keep` the map is
    /// emptied; up to `keep` of its entries go to `spare` whole (node, text, details), for new
    /// templates to be made from (the rest are freed). `recycle`: false when every entry is known
    /// to be recycled already (the miner consumed the last batch): no pass over them.
    void restart(std::size_t keep, bool recycle = true, spare_templates* spare = nullptr);
    /// restart()'s bound alone: past `keep` template entries, the map is emptied, up to `keep` of
    /// them going to `spare` whole (recycled). The counters are left as they are.
    void shed_templates(std::size_t keep, spare_templates* spare);
    /// Template entries a batch keeps between batches (counts::restart).
    static constexpr std::size_t recycled_templates = 1024;
    /// Group and source entries a batch keeps between batches, at zero (counts::restart).
    static constexpr std::size_t recycled_groups = 64;
    bool empty() const noexcept { return documents == 0 && events == 0 && control_messages == 0; }
};

/// Recycles a batch's template entries (template_stats::recycle), or frees them all when there
/// are more than `keep`: a batch keeps at most that many between batches.
void recycle_templates(string_map<template_stats>& templates, std::size_t keep);

/// A template chosen for a view: its text and a copy of its stats.
struct picked_template {
    std::string text;
    template_stats stats;
};

/// What a view asks of the templates: those `keep` accepts (null: all), the `limit` with the
/// largest `key` (null: the count), ties by text ascending. Readers look at every template in
/// place and copy only the chosen ones: a scrape costs a pass over the table, not a copy of it.
struct template_pick {
    std::function<bool(const template_stats&)> keep;
    std::function<std::int64_t(const template_stats&)> key;
    std::size_t limit = 100;

    std::int64_t key_of(const template_stats& s) const {
        return key ? key(s) : static_cast<std::int64_t>(s.count);
    }
    /// Whether (ka, a) ranks before (kb, b).
    static bool before(std::int64_t ka, std::string_view a, std::int64_t kb, std::string_view b) noexcept {
        return ka != kb ? ka > kb : a < b;
    }
};

/// Looks at templates owned elsewhere (valid until copy_into(), e.g. under their owner's lock)
/// and keeps pointers to the best `pick.limit` of them.
class template_picker {
public:
    explicit template_picker(const template_pick& pick)
        : pick_(pick) {}
    /// Considers one template; `tag` is the owner's (e.g. where it keeps more about it).
    void consider(const std::string& text, const template_stats& stats, std::size_t tag = 0) {
        if (pick_.keep && !pick_.keep(stats)) return;
        seen_.push_back({pick_.key_of(stats), &text, &stats, tag});
    }
    /// Copies the chosen ones (at most limit, best first) to the end of `out`, and forgets what
    /// it was given; `tags`, when given, gets the tag of each one copied. Returns how many.
    std::size_t copy_into(std::vector<picked_template>& out, std::vector<std::size_t>* tags = nullptr);

private:
    struct seen {
        std::int64_t key;
        const std::string* text;
        const template_stats* stats;
        std::size_t tag;
    };
    const template_pick& pick_;
    std::vector<seen> seen_;
};

/// Orders picked templates best first and keeps `pick.limit` (merging the picks of several owners
/// that each hold different templates).
void finish_pick(std::vector<picked_template>& picked, const template_pick& pick);

/// The pick over one table (an owner holding the templates in a map).
std::vector<picked_template> pick_templates(const string_map<template_stats>& templates,
                                            const template_pick& pick);

/// One worker's committed totals. Written by its worker once per batch (one uncontended lock),
/// read by snapshots: never a lock or an atomic per event.
class shard {
public:
    explicit shard(std::size_t pattern_count, count_limits limits = {})
        : totals_(pattern_count)
        , limits_(limits) {}
    void commit(const counts& batch) {
        std::lock_guard lock(mutex_);
        totals_.merge(batch, limits_);
    }
    void add_to(counts& out) const {
        std::lock_guard lock(mutex_);
        out.merge(totals_);
    }
    /// Templates evicted by the cap so far.
    std::uint64_t templates_evicted() const {
        std::lock_guard lock(mutex_);
        return totals_.templates_evicted;
    }
    /// Adds everything but the templates to `out`.
    void add_counters_to(counts& out) const {
        std::lock_guard lock(mutex_);
        out.merge_counters(totals_);
    }

    /// Moves the totals out (the shard is left empty): for a final merge without a copy.
    counts take() {
        std::lock_guard lock(mutex_);
        counts out = std::move(totals_);
        totals_ = counts(out.patterns.size());
        return out;
    }
    void remap(const std::vector<std::int32_t>& old_to_new, std::size_t new_size) {
        std::lock_guard lock(mutex_);
        totals_.remap(old_to_new, new_size);
    }
    /// Adds the per-pattern totals of each group to `out` (for per-group rates).
    void add_group_patterns_to(string_map<std::vector<std::uint64_t>>& out) const {
        std::lock_guard lock(mutex_);
        for (const auto& [g, v] : totals_.by_group) {
            auto& sum = out[g];
            if (sum.size() < v.size()) sum.resize(v.size(), 0);
            for (std::size_t i = 0; i < v.size(); ++i)
                sum[i] += v[i];
        }
    }
    /// Adds only the per-pattern totals (cheap: for rate sampling).
    void add_patterns_to(std::vector<std::uint64_t>& out) const {
        std::lock_guard lock(mutex_);
        if (out.size() < totals_.patterns.size()) out.resize(totals_.patterns.size(), 0);
        for (std::size_t i = 0; i < totals_.patterns.size(); ++i)
            out[i] += totals_.patterns[i];
    }

private:
    mutable std::mutex mutex_;
    counts totals_;
    count_limits limits_;
};

/// Stable id of a template: XXH3-64 of its text, 16 lower-case hex digits. The same text gives
/// the same id on every replica and after every restart.
std::string template_id(std::string_view text);

} // namespace faultline::core::aggregate
