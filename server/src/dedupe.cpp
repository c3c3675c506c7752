#include "faultline/server/dedupe.hpp"

#include <algorithm>

namespace faultline::server {

dedupe_cache::state dedupe_cache::begin(const std::string& id, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    // Expire by age from the oldest end.
    while (!order_.empty()) {
        auto it = entries_.find(order_.front());
        if (it == entries_.end() || !it->second.done || now - it->second.at <= ttl_) break;
        entries_.erase(it);
        order_.pop_front();
    }
    if (auto it = entries_.find(id); it != entries_.end())
        return it->second.done ? state::acknowledged : state::in_flight;
    if (capacity_ == 0) return state::fresh;
    order_.push_back(id);
    entries_.emplace(id, entry{false, false, now, std::prev(order_.end())});
    while (entries_.size() > capacity_) {
        // Evict the oldest acknowledged id (in-flight ones are few and bounded by the queue).
        auto victim = std::find_if(order_.begin(), order_.end(),
                                   [&](const std::string& k) { return entries_[k].done; });
        if (victim == order_.end()) break;
        entries_.erase(*victim);
        order_.erase(victim);
    }
    return state::fresh;
}

void dedupe_cache::finish(const std::string& id, bool counted, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (!counted) {
        order_.erase(it->second.pos);
        entries_.erase(it);
        return;
    }
    it->second.done = true;
    it->second.at = now;
    order_.splice(order_.end(), order_, it->second.pos); // most recent last
}

void dedupe_cache::journaled(const std::string& id, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end() && !it->second.done) {
        it->second.journaled = true;
        it->second.at = now;
    }
}

void dedupe_cache::remember(const std::string& id, std::chrono::steady_clock::time_point at,
                            std::chrono::steady_clock::time_point now) {
    if (capacity_ == 0 || now - at > ttl_) return;
    if (begin(id, now) != state::fresh) return; // already known (begin also applies the cap)
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.done = true;
    it->second.at = at; // its age is its acknowledgement's
}

std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>>
dedupe_cache::acknowledged() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> out;
    out.reserve(entries_.size());
    for (const std::string& id : order_)
        if (const auto it = entries_.find(id);
            it != entries_.end() && (it->second.done || it->second.journaled))
            out.emplace_back(id, it->second.at);
    return out;
}

std::size_t dedupe_cache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

} // namespace faultline::server
