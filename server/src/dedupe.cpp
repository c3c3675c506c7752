#include "faultline/server/dedupe.hpp"

#include <algorithm>

namespace faultline::server {

dedupe_cache::state dedupe_cache::begin(const std::string& id, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    // Expire by age from the oldest end.
    while (!order_.empty()) {
        const entry& oldest = order_.front();
        if (!oldest.done || now - oldest.at <= ttl_) break; // (a copy's cursor is never done)
        entries_.erase(oldest.id);                          // its key views the entry: erased first
        order_.pop_front();
    }
    if (auto it = entries_.find(id); it != entries_.end())
        return it->second->done ? state::acknowledged : state::in_flight;
    if (capacity_ == 0) return state::fresh;
    order_.push_back(entry{id, false, false, now, 0});
    entries_.emplace(order_.back().id, std::prev(order_.end()));
    while (entries_.size() > capacity_) {
        // Evict the oldest acknowledged id (in-flight ones are few and bounded by the queue).
        auto victim = std::find_if(order_.begin(), order_.end(), [](const entry& e) { return e.done; });
        if (victim == order_.end()) break;
        entries_.erase(victim->id);
        order_.erase(victim);
    }
    return state::fresh;
}

void dedupe_cache::finish(const std::string& id, bool counted, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    const auto e = it->second;
    if (!counted) {
        entries_.erase(it);
        order_.erase(e);
        return;
    }
    e->done = true;
    e->at = now;
    number(e);
}

void dedupe_cache::journaled(const std::string& id, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end() && !it->second->done) {
        it->second->journaled = true;
        it->second->at = now;
        number(it->second);
    }
}

void dedupe_cache::remember(const std::string& id, std::chrono::steady_clock::time_point at,
                            std::chrono::steady_clock::time_point now) {
    if (capacity_ == 0 || now - at > ttl_) return;
    if (begin(id, now) != state::fresh) return; // already known (begin also applies the cap)
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second->done = true;
    it->second->at = at; // its age is its acknowledgement's
    number(it->second);
}

void dedupe_cache::number(std::list<entry>::iterator e) {
    if (e->seq != 0) return; // numbered when first journaled: it keeps its place
    e->seq = ++seq_;
    order_.splice(order_.end(), order_, e);
}

std::uint64_t dedupe_cache::mark() const {
    std::lock_guard lock(mutex_);
    return seq_;
}

std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>>
dedupe_cache::acknowledged(std::uint64_t upto, std::size_t chunk) {
    chunk = std::max<std::size_t>(chunk, 1);
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> out;
    std::list<entry>::iterator cursor;
    {
        std::lock_guard lock(mutex_);
        upto = std::min(upto, seq_); // what comes during the copy is not waited for
        out.reserve(entries_.size());
        cursor = order_.insert(order_.begin(), entry{}); // no id, never done, no seq
    }
    // Gone however the copy ends (an allocation failing included): a cursor left at the front
    // would stop the expiry by age.
    struct cursor_guard {
        std::mutex& mutex;
        std::list<entry>& order;
        std::list<entry>::iterator at;
        ~cursor_guard() {
            std::lock_guard lock(mutex);
            order.erase(at);
        }
    } guard{mutex_, order_, cursor};
    // A chunk at a time, the lock released between: the cursor (a list node of its own) keeps the
    // place. An entry gets its seq as it moves to the end and never moves again, so every entry
    // up to `upto` still remembered is met once; one forgotten meanwhile is not listed.
    for (;;) {
        std::lock_guard lock(mutex_);
        auto it = std::next(cursor);
        for (std::size_t n = 0; it != order_.end() && n < chunk; ++it, ++n)
            if (it->seq != 0 && it->seq <= upto) // journaled or acknowledged (a cursor has none)
                out.emplace_back(it->id, it->at);
        if (it == order_.end()) return out;
        order_.splice(it, order_, cursor);
    }
}

std::size_t dedupe_cache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

} // namespace faultline::server
