#include "faultline/core/aggregate/counts.hpp"

#define XXH_INLINE_ALL // text_hash: the hash of every template lookup, inlined
#include <xxhash.h>

#include <algorithm>

namespace faultline::core::aggregate {

std::size_t text_hash(std::string_view s) noexcept {
    return static_cast<std::size_t>(XXH3_64bits(s.data(), s.size()));
}

namespace {
/// A group's per-pattern counts that count nothing (a batch's recycled entry, or a group only
/// removed patterns had counted): no group for the totals.
bool counts_nothing(const std::vector<std::uint64_t>& per_pattern) noexcept {
    return std::all_of(per_pattern.begin(), per_pattern.end(), [](std::uint64_t n) { return n == 0; });
}

void add_vector(std::vector<std::uint64_t>& into, const std::vector<std::uint64_t>& from) {
    if (into.size() < from.size()) into.resize(from.size(), 0);
    for (std::size_t i = 0; i < from.size(); ++i)
        into[i] += from[i];
}
} // namespace

namespace {
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t k = max;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80)
        --k;
    return s.substr(0, k);
}

void union_ids(std::vector<std::uint32_t>& into, std::span<const std::uint32_t> ids) {
    // Mostly the ids it already has (its events match the same patterns).
    // Compared in a loop, not by std::equal (a memcmp call for a few ids, per event and merge).
    if (ids.size() == into.size()) {
        std::size_t k = 0;
        while (k < ids.size() && ids[k] == into[k])
            ++k;
        if (k == ids.size()) return;
    }
    for (const std::uint32_t id : ids) {
        auto it = std::lower_bound(into.begin(), into.end(), id);
        if (it == into.end() || *it != id) into.insert(it, id);
    }
}

void add_group(std::vector<std::pair<std::string, std::uint64_t>>& groups, std::string_view group,
               std::uint64_t n) {
    if (n == 0) return;
    for (auto& entry : groups) {
        if (entry.first == group) {
            entry.second += n;
            return;
        }
    }
    if (groups.size() < template_details::max_groups) groups.emplace_back(group, n);
}

/// Details that stood for nothing (new, or a recycled entry's) made those of `n` events seen at
/// `now_ms`, in the storage they have; their groups are the caller's to set.
void restart_details(template_details& d, std::int64_t now_ms, std::string_view sample,
                     std::span<const std::uint32_t> ids, std::uint64_t n) {
    d.first_seen_ms = d.last_seen_ms = now_ms;
    d.sample.assign(sample);
    d.patterns.assign(ids.begin(), ids.end());
    d.previous_texts.clear();
    d.is_new = false;
    d.minutes.fill(0);
    d.minute_seen = now_ms / 60'000;
    d.minutes[template_details::slot(d.minute_seen)] =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(n, UINT32_MAX));
}
} // namespace

void template_details::count_minute(std::int64_t now_ms, std::uint64_t n) noexcept {
    const std::int64_t minute = now_ms / 60'000;
    if (minute > minute_seen) {
        // Clear the minutes skipped since the last count (all of them after a long pause).
        for (std::int64_t m = minute_seen + 1; m <= minute && m <= minute_seen + 16; ++m)
            minutes[slot(m)] = 0;
        minute_seen = minute;
    } else if (minute < minute_seen - 15) {
        return; // too old to matter
    }
    auto& cell = minutes[slot(minute)];
    cell = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{cell} + n, UINT32_MAX));
}

double template_details::rate(std::int64_t now_ms, int minutes_back) const noexcept {
    const std::int64_t minute = now_ms / 60'000;
    std::uint64_t sum = 0;
    for (std::int64_t m = minute - minutes_back; m <= minute; ++m)
        sum += in_minute(m);
    // The current minute is partly over: divide by the time actually covered.
    const double secs = minutes_back * 60.0 + static_cast<double>(now_ms % 60'000) / 1000.0;
    return secs > 0 ? static_cast<double>(sum) / secs : 0.0;
}

void template_stats::add(std::string_view group, std::span<const std::uint32_t> ids, std::string_view message,
                         std::int64_t now_ms) {
    if (!details) details = std::make_unique<template_details>();
    template_details& d = *details;
    if (count == 0) {
        // Its first event (a new entry, or a recycled one: whatever its details still hold
        // stands for nothing, and is replaced here, in the storage it has).
        count = 1;
        restart_details(d, now_ms, utf8_prefix(message, template_details::max_sample_bytes), ids, 1);
        d.groups.resize(1); // one slot, its string's storage reused
        d.groups[0].first.assign(group);
        d.groups[0].second = 1;
        return;
    }
    ++count;
    d.last_seen_ms = std::max(d.last_seen_ms, now_ms);
    d.count_minute(now_ms, 1);
    union_ids(d.patterns, ids);
    add_group(d.groups, group, 1);
}

void template_stats::merge(const template_stats& other) {
    if (other.count == 0) return;
    if (other.details) {
        const template_details& o = *other.details;
        if (!details) {
            details = std::make_unique<template_details>(o);
        } else if (count == 0) { // it stood for nothing (a recycled entry): what it held goes
            *details = o;
        } else {
            if (o.first_seen_ms < details->first_seen_ms) details->first_seen_ms = o.first_seen_ms;
            if (details->sample.empty()) details->sample = o.sample;
            details->last_seen_ms = std::max(details->last_seen_ms, o.last_seen_ms);
            union_ids(details->patterns, o.patterns);
            if (o.minute_seen == details->minute_seen) { // the same 16 minutes: slot by slot
                for (std::size_t k = 0; k < o.minutes.size(); ++k)
                    details->minutes[k] = static_cast<std::uint32_t>(std::min<std::uint64_t>(
                        std::uint64_t{details->minutes[k]} + o.minutes[k], UINT32_MAX));
            } else {
                for (std::int64_t m = o.minute_seen - 15; m <= o.minute_seen; ++m)
                    if (const std::uint32_t n = o.in_minute(m); n && m >= 0)
                        details->count_minute(m * 60'000, n);
            }
            for (const auto& [g, n] : o.groups)
                add_group(details->groups, g, n);
        }
    }
    count += other.count;
}

std::uint32_t batch_details::first(std::string_view message, std::span<const std::uint32_t> ids,
                                   const std::string* group) {
    const std::string_view sample = utf8_prefix(message, template_details::max_sample_bytes);
    batch_detail& d = entries.emplace_back();
    d.sample_offset = samples.size();
    d.sample_size = static_cast<std::uint32_t>(sample.size());
    samples.append(sample);
    if (ids.size() <= batch_detail::inline_ids) {
        std::copy(ids.begin(), ids.end(), d.ids.begin());
        d.id_count = static_cast<std::uint32_t>(ids.size());
    } else {
        d.spilled = static_cast<std::int32_t>(spilled_ids.size());
        spilled_ids.emplace_back(ids.begin(), ids.end());
    }
    d.group_count = 1;
    d.groups[0] = group;
    d.group_events[0] = 1;
    return static_cast<std::uint32_t>(entries.size() - 1);
}

void batch_details::again(std::uint32_t slot, std::span<const std::uint32_t> ids, const std::string* group) {
    batch_detail& d = entries[slot];
    // Mostly the ids it has (its events match the same patterns), compared in a loop.
    if (d.spilled >= 0) {
        union_ids(spilled_ids[static_cast<std::size_t>(d.spilled)], ids);
    } else {
        bool same = ids.size() == d.id_count;
        for (std::size_t k = 0; same && k < ids.size(); ++k)
            same = ids[k] == d.ids[k];
        if (!same) {
            std::vector<std::uint32_t> all(d.ids.begin(), d.ids.begin() + d.id_count);
            union_ids(all, ids);
            if (all.size() <= batch_detail::inline_ids) {
                std::copy(all.begin(), all.end(), d.ids.begin());
                d.id_count = static_cast<std::uint32_t>(all.size());
            } else {
                d.spilled = static_cast<std::int32_t>(spilled_ids.size());
                spilled_ids.push_back(std::move(all));
            }
        }
    }
    // Groups by their key in counts::by_group: one name, one address.
    for (std::uint32_t k = 0; k < d.group_count; ++k) {
        if (d.groups[k] == group) {
            if (d.group_events[k] != UINT32_MAX) ++d.group_events[k];
            return;
        }
    }
    if (d.group_count < template_details::max_groups) {
        d.groups[d.group_count] = group;
        d.group_events[d.group_count] = 1;
        ++d.group_count;
    }
}

void template_stats::merge_batch(const batch_details& batch, std::uint32_t slot, std::uint64_t n) {
    if (n == 0) return;
    const batch_detail& b = batch.entries[slot];
    const std::int64_t now_ms = batch.now_ms;
    if (!details) details = std::make_unique<template_details>();
    template_details& d = *details;
    if (count == 0) { // new, or it stood for nothing (a recycled entry): in the storage it has
        restart_details(d, now_ms, batch.sample_of(b), batch.ids_of(b), n);
        d.groups.resize(b.group_count);
        for (std::uint32_t k = 0; k < b.group_count; ++k) {
            d.groups[k].first.assign(*b.groups[k]);
            d.groups[k].second = b.group_events[k];
        }
    } else {
        if (now_ms < d.first_seen_ms) d.first_seen_ms = now_ms;
        if (d.sample.empty()) d.sample.assign(batch.sample_of(b));
        d.last_seen_ms = std::max(d.last_seen_ms, now_ms);
        union_ids(d.patterns, batch.ids_of(b));
        d.count_minute(now_ms, n);
        for (std::uint32_t k = 0; k < b.group_count; ++k)
            add_group(d.groups, *b.groups[k], b.group_events[k]);
    }
    count += n;
}

void template_stats::recycle() noexcept {
    count = 0; // its details are replaced by its next first event (add), in their storage
    batch_slot = no_batch_slot;
}

void template_stats::remap(const std::vector<std::int32_t>& old_to_new) {
    if (!details) return;
    std::vector<std::uint32_t> ids;
    for (const std::uint32_t id : details->patterns)
        if (id < old_to_new.size() && old_to_new[id] >= 0)
            ids.push_back(static_cast<std::uint32_t>(old_to_new[id]));
    std::sort(ids.begin(), ids.end());
    details->patterns = std::move(ids);
}

namespace {
std::vector<std::uint64_t> remapped(const std::vector<std::uint64_t>& v,
                                    const std::vector<std::int32_t>& old_to_new, std::size_t new_size) {
    std::vector<std::uint64_t> out(new_size, 0);
    for (std::size_t i = 0; i < v.size() && i < old_to_new.size(); ++i)
        if (old_to_new[i] >= 0) out[static_cast<std::size_t>(old_to_new[i])] += v[i];
    return out;
}
} // namespace

void counts::remap(const std::vector<std::int32_t>& old_to_new, std::size_t new_size) {
    patterns = remapped(patterns, old_to_new, new_size);
    for (auto& [group, v] : by_group)
        v = remapped(v, old_to_new, new_size);
    // A group left with nothing (only removed patterns had counted it) is no group: merges skip
    // such entries (merge_counters), so kept it would hold a place under count_limits::max_groups
    // while no view showed it.
    std::erase_if(by_group, [](const auto& entry) { return counts_nothing(entry.second); });
    for (auto& [text, stats] : templates)
        stats.remap(old_to_new);
}

std::string template_id(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::uint64_t h = XXH3_64bits(text.data(), text.size());
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, h >>= 4)
        out[static_cast<std::size_t>(i)] = hex[h & 15];
    return out;
}

void counts::merge_counters(const counts& other, const count_limits& limits) {
    documents += other.documents;
    events += other.events;
    control_messages += other.control_messages;
    add_vector(patterns, other.patterns);
    for (const auto& [group, per_pattern] : other.by_group) {
        // A batch's recycled entry (counts::restart) that counted nothing this time: no group.
        if (counts_nothing(per_pattern)) continue;
        auto it = by_group.find(group);
        if (it == by_group.end()) {
            const bool full = limits.max_groups && by_group.size() >= limits.max_groups;
            if (full)
                it = by_group.try_emplace(std::string(other_group)).first;
            else
                it = by_group.emplace(group, std::vector<std::uint64_t>()).first;
        }
        add_vector(it->second, per_pattern);
    }
    for (const auto& [source, n] : other.by_source)
        if (n) by_source[source] += n;
    templates_evicted += other.templates_evicted;
}

void counts::merge(const counts& other, const count_limits& limits) {
    merge_counters(other, limits);
    for (const auto& [tpl, stats] : other.templates) {
        if (stats.count == 0) continue; // a batch's recycled entry: nothing
        const bool in_array = stats.batch_slot < other.open_details.entries.size(); // an open batch's
        auto it = templates.find(tpl);
        if (it == templates.end() && !in_array) {
            templates.emplace(tpl, stats);
            continue;
        }
        if (it == templates.end()) it = templates.try_emplace(tpl).first;
        if (in_array)
            it->second.merge_batch(other.open_details, stats.batch_slot, stats.count);
        else
            it->second.merge(stats);
    }
    // Evict in bulk (10 % headroom), least recently seen first: amortized, and bounded.
    if (limits.max_templates && templates.size() > limits.max_templates + limits.max_templates / 10) {
        std::vector<std::pair<std::int64_t, const std::string*>> order;
        order.reserve(templates.size());
        for (const auto& [tpl, stats] : templates)
            order.emplace_back(stats.last_seen_ms(), &tpl);
        const std::size_t drop = templates.size() - limits.max_templates;
        std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop), order.end());
        std::vector<std::string> victims;
        for (std::size_t i = 0; i < drop; ++i)
            victims.push_back(*order[i].second);
        for (const auto& v : victims)
            templates.erase(v);
        templates_evicted += drop;
    }
}

void recycle_templates(string_map<template_stats>& templates, std::size_t keep) {
    if (templates.size() > keep) {
        templates.clear();
        return;
    }
    for (auto& [text, stats] : templates)
        if (stats.count) stats.recycle();
}

void counts::restart(std::size_t keep, bool recycle, spare_templates* spare) {
    documents = events = control_messages = 0;
    std::fill(patterns.begin(), patterns.end(), 0);
    // A batch's groups and sources are mostly those of the last one: up to `recycled_groups`,
    // their entries are kept at zero (merge_counters skips them) rather than freed and made again.
    if (keep && by_group.size() <= recycled_groups)
        for (auto& [group, per_pattern] : by_group)
            std::fill(per_pattern.begin(), per_pattern.end(), 0);
    else
        by_group.clear();
    if (keep && by_source.size() <= recycled_groups)
        for (auto& [source, n] : by_source)
            n = 0;
    else
        by_source.clear();
    templates_evicted = 0;
    open_details.clear();
    if (templates.size() > keep)
        shed_templates(keep, spare);
    else if (recycle)
        recycle_templates(templates, keep);
}

void counts::shed_templates(std::size_t keep, spare_templates* spare) {
    if (templates.size() <= keep) return;
    if (spare) {
        spare->reserve(keep); // no allocation below: nothing throws half-way
        while (!templates.empty() && spare->size() < keep) {
            auto node = templates.extract(templates.begin());
            node.mapped().recycle();
            spare->push_back(std::move(node));
        }
    }
    templates.clear();
}

void counts::clear() {
    restart(0);
}

void counts::settle_details() {
    if (open_details.entries.empty()) return;
    for (auto& [text, stats] : templates) {
        if (stats.count == 0 || stats.batch_slot == template_stats::no_batch_slot) continue;
        const std::uint64_t n = stats.count;
        stats.count = 0; // what its details held stands for nothing: replaced in their storage
        stats.merge_batch(open_details, stats.batch_slot, n);
        stats.batch_slot = template_stats::no_batch_slot;
    }
    open_details.clear();
}

} // namespace faultline::core::aggregate

namespace faultline::core::aggregate {

std::size_t template_picker::copy_into(std::vector<picked_template>& out, std::vector<std::size_t>* tags) {
    const auto better = [](const seen& a, const seen& b) {
        return template_pick::before(a.key, *a.text, b.key, *b.text);
    };
    const std::size_t n = std::min(pick_.limit, seen_.size());
    std::partial_sort(seen_.begin(), seen_.begin() + static_cast<std::ptrdiff_t>(n), seen_.end(), better);
    out.reserve(out.size() + n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back({*seen_[i].text, *seen_[i].stats});
        if (tags) tags->push_back(seen_[i].tag);
    }
    seen_.clear();
    return n;
}

void finish_pick(std::vector<picked_template>& picked, const template_pick& pick) {
    std::vector<std::pair<std::int64_t, std::size_t>> order;
    order.reserve(picked.size());
    for (std::size_t i = 0; i < picked.size(); ++i)
        order.emplace_back(pick.key_of(picked[i].stats), i);
    const std::size_t n = std::min(pick.limit, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                      [&](const auto& a, const auto& b) {
                          return template_pick::before(a.first, picked[a.second].text, b.first,
                                                       picked[b.second].text);
                      });
    std::vector<picked_template> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(std::move(picked[order[i].second]));
    picked = std::move(out);
}

std::vector<picked_template> pick_templates(const string_map<template_stats>& templates,
                                            const template_pick& pick) {
    template_picker picker(pick);
    for (const auto& [text, stats] : templates)
        picker.consider(text, stats);
    std::vector<picked_template> out;
    picker.copy_into(out);
    return out;
}

} // namespace faultline::core::aggregate
