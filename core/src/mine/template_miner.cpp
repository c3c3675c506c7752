#include "faultline/core/mine/template_miner.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace faultline::core::mine {

template_miner::template_miner(miner_options options, std::int64_t start_ms)
    : options_(options)
    , detect_new_(options.warmup_ms > 0)
    , warmup_end_ms_(start_ms + options.warmup_ms) {
    if (options_.shards == 0) options_.shards = 1;
    drain_options per_shard = options_.drain;
    per_shard.max_clusters =
        std::max<std::size_t>(1, (options_.drain.max_clusters + options_.shards - 1) / options_.shards);
    for (std::size_t i = 0; i < options_.shards; ++i)
        shards_.push_back(std::make_unique<shard>(per_shard));
}

template_miner::~template_miner() = default;

std::size_t template_miner::shard_of(std::string_view masked) const noexcept {
    // Drain's root splits by token count, then by the first token (a variable one routes as
    // "<*>"): hash both, so that lines that would meet in one tree meet in one shard.
    // The spaces are found by memchr (vectorized), not counted a byte at a time (this build's
    // -O2 leaves std::count's loop scalar: half of this function's cost), and only up to the cap.
    const std::uint64_t cap = options_.drain.max_tokens;
    std::uint64_t tokens = masked.empty() ? 0 : 1;
    const char* const end = masked.data() + masked.size();
    for (const char* p = masked.data(); tokens < cap && p != end; ++tokens) {
        p = static_cast<const char*>(std::memchr(p, ' ', static_cast<std::size_t>(end - p)));
        if (!p) break;
        ++p;
    }
    tokens = std::min<std::uint64_t>(tokens, cap);
    std::string_view first = masked.substr(0, masked.find(' '));
    if (is_variable(first)) first = wildcard;
    const std::uint64_t h = XXH3_64bits_withSeed(first.data(), first.size(), tokens);
    return static_cast<std::size_t>(h % shards_.size());
}

namespace {
std::uint64_t key_of(std::size_t shard, const cluster& c) noexcept {
    return (static_cast<std::uint64_t>(shard) << 44) | c.id;
}
} // namespace

void template_miner::for_each_key(const std::function<void(std::uint64_t, const std::string&)>& f) const {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        std::lock_guard lock(shards_[i]->mutex);
        shards_[i]->tree.for_each([&](const cluster& c) { f(key_of(i, c), c.text); });
    }
}

void template_miner::on_evict(std::function<void(std::uint64_t, const std::string&)> f) {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        std::lock_guard lock(shards_[i]->mutex);
        if (f)
            shards_[i]->tree.on_evict([i, f](const cluster& c) { f(key_of(i, c), c.text); });
        else
            shards_[i]->tree.on_evict({});
    }
}

void template_miner::add(aggregate::string_map<aggregate::template_stats>& masked, std::int64_t now_ms,
                         const assigned_fn* assigned, const aggregate::batch_details* open) {
    // Group by shard, then take each shard's lock once. Entries of count 0 are recycled ones
    // (aggregate::counts::restart): nothing.
    // The order's storage is the calling thread's, kept between batches: a batch costs no
    // allocation for it (nothing called from here adds a batch again).
    thread_local std::vector<
        std::pair<std::size_t, aggregate::string_map<aggregate::template_stats>::iterator>>
        order;
    order.clear();
    struct release { // however this ends (a throw too): no iterators kept, nor a rare large batch's storage
        decltype(order)& o;
        ~release() {
            if (o.capacity() > 4096)
                o = {};
            else
                o.clear();
        }
    } released{order};
    order.reserve(masked.size());
    for (auto it = masked.begin(); it != masked.end(); ++it)
        if (it->second.count) order.emplace_back(shard_of(it->first), it);
    if (order.empty()) return;
    // Within a shard, the lines of more events first (then by text: the same batch always mines
    // the same way): the common form of a message makes the template, and rare variants are
    // then compared with it (a settled template does not take a new plain word).
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        if (a.second->second.count != b.second->second.count)
            return a.second->second.count > b.second->second.count;
        return a.second->first < b.second->first;
    });
    const std::int64_t warm = warmup_end_ms_.load(std::memory_order_relaxed);
    std::vector<std::pair<std::size_t, std::string>> to_judge; // new here: new everywhere? (shard, text)
    std::size_t i = 0;
    while (i < order.size()) {
        shard& sh = *shards_[order[i].first];
        std::lock_guard lock(sh.mutex);
        for (const std::size_t s = order[i].first; i < order.size() && order[i].first == s; ++i) {
            auto& [text, stats] = *order[i].second;
            const auto r = sh.tree.add(text, std::max<std::uint64_t>(1, stats.count));
            cluster& c = *r.c;
            if (assigned) (*assigned)(text, key_of(order[i].first, c));
            const bool is_new = r.created && detect_new_ && now_ms >= warm;
            if (is_new) {
                if (judge_) {
                    to_judge.emplace_back(order[i].first, c.text);
                } else {
                    new_total_.fetch_add(1, std::memory_order_relaxed);
                    if (on_new_) on_new_(c.text);
                }
            }
            if (open && stats.batch_slot < open->entries.size())
                c.stats.merge_batch(*open, stats.batch_slot, stats.count);
            else
                c.stats.merge(stats);
            if (is_new && !c.stats.details) c.stats.details = std::make_unique<aggregate::template_details>();
            if (r.created && c.stats.details) c.stats.details->is_new = is_new;
        }
    }
    // Consumed: the entries are emptied for the next batch to fill again without allocating
    // (the batch's restart empties a map past aggregate::counts::recycled_templates, keeping
    // entries for new templates). Only those counted: no pass over the others.
    for (auto& [where, it] : order)
        it->second.recycle();
    for (auto& [where, text] : to_judge)
        judge_(text, [this, where = where, text = text](bool first) { settle_new(where, text, first); });
}

void template_miner::settle_new(std::size_t where, const std::string& text, bool first) {
    if (first) new_total_.fetch_add(1, std::memory_order_relaxed);
    // Looked up by text in its shard: a template that generalized since is another text (and
    // keeps its mark); on_new is called under the shard lock, as when the miner finds one itself.
    shard& sh = *shards_[where];
    std::lock_guard lock(sh.mutex);
    bool found = false;
    sh.tree.for_each_mutable([&](cluster& c) {
        if (found || c.text != text) return;
        found = true;
        if (!first && c.stats.details) c.stats.details->is_new = false; // another replica had it first
    });
    if (found && first && on_new_) on_new_(text);
}

void template_miner::snapshot(aggregate::string_map<aggregate::template_stats>& out) const {
    for (const auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        sh->tree.for_each([&](const cluster& c) {
            auto& dst = out[c.text];
            dst.merge(c.stats);
            if (dst.details) dst.details->previous_texts = c.previous_texts;
            if (dst.details && c.stats.details) dst.details->is_new = c.stats.details->is_new;
        });
    }
}

std::vector<aggregate::picked_template> template_miner::pick(const aggregate::template_pick& p) const {
    std::vector<aggregate::picked_template> out;
    std::vector<const cluster*> seen;
    std::vector<std::size_t> chosen;
    aggregate::template_picker picker(p);
    for (const auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        seen.clear();
        chosen.clear();
        sh->tree.for_each([&](const cluster& c) {
            picker.consider(c.text, c.stats, seen.size());
            seen.push_back(&c);
        });
        const std::size_t first = out.size();
        picker.copy_into(out, &chosen);
        for (std::size_t i = 0; i < chosen.size(); ++i) {
            auto& dst = out[first + i].stats;
            if (dst.details) dst.details->previous_texts = seen[chosen[i]]->previous_texts;
        }
    }
    aggregate::finish_pick(out, p);
    return out;
}

void template_miner::take(aggregate::string_map<aggregate::template_stats>& out) {
    snapshot(out);
    for (auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        sh->tree = drain(sh->tree.options());
    }
}

void template_miner::restore(const std::string& text, std::vector<std::string> previous_texts,
                             aggregate::template_stats stats) {
    shard& sh = *shards_[shard_of(text)];
    std::lock_guard lock(sh.mutex);
    std::vector<std::string> tokens;
    std::string_view rest = text;
    while (!rest.empty()) {
        const std::size_t sp = rest.find(' ');
        tokens.emplace_back(rest.substr(0, sp));
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    const std::uint64_t events = stats.count;
    cluster* c = sh.tree.restore(std::move(tokens), std::move(previous_texts), events);
    if (c) c->stats = std::move(stats);
}

void template_miner::remap(const std::vector<std::int32_t>& old_to_new) {
    for (auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        sh->tree.for_each_mutable([&](cluster& c) { c.stats.remap(old_to_new); });
    }
}

std::uint64_t template_miner::evicted() const {
    std::uint64_t n = 0;
    for (const auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        n += sh->tree.evicted();
    }
    return n;
}

std::size_t template_miner::size() const {
    std::size_t n = 0;
    for (const auto& sh : shards_) {
        std::lock_guard lock(sh->mutex);
        n += sh->tree.size();
    }
    return n;
}

} // namespace faultline::core::mine
