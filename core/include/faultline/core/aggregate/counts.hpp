// The aggregate model: what faultline counts. One `counts` per batch (a request or a chunk of a
// file) is built without locks, then committed into the worker's shard; readers merge shards.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace faultline::core::aggregate {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

struct counts {
    std::uint64_t documents = 0;        ///< CloudWatch DATA_MESSAGE documents
    std::uint64_t events = 0;           ///< log events (every event of a data message, every text line)
    std::uint64_t control_messages = 0; ///< CloudWatch CONTROL_MESSAGE documents
    std::vector<std::uint64_t> patterns;                      ///< by pattern id
    string_map<std::vector<std::uint64_t>> by_group;          ///< group -> by pattern id
    string_map<std::uint64_t> templates;                      ///< exact template -> events

    explicit counts(std::size_t pattern_count = 0) : patterns(pattern_count, 0) {}

    /// Adds `other` (same pattern set) into this.
    void merge(const counts& other);
    /// Empties the counters, keeping the pattern count (and allocations).
    void clear();
    bool empty() const noexcept { return documents == 0 && events == 0 && control_messages == 0; }
};

/// One worker's committed totals. Written by its worker once per batch (one uncontended lock),
/// read by snapshots: never a lock or an atomic per event.
class shard {
public:
    explicit shard(std::size_t pattern_count) : totals_(pattern_count) {}
    void commit(const counts& batch) {
        std::lock_guard lock(mutex_);
        totals_.merge(batch);
    }
    void add_to(counts& out) const {
        std::lock_guard lock(mutex_);
        out.merge(totals_);
    }

private:
    mutable std::mutex mutex_;
    counts totals_;
};

} // namespace faultline::core::aggregate
