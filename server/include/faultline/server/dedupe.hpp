// The delivery ids this process remembers (Firehose request ids, webhook delivery ids): a redelivery
// is recognised and not counted again. Bounded by count and age; the clock is the caller's.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace faultline::server {

/// Firehose request ids recently acknowledged (bounded by count and age), and those in flight.
class dedupe_cache {
public:
    enum class state { fresh, acknowledged, in_flight };
    dedupe_cache(std::size_t capacity, std::chrono::seconds ttl)
        : capacity_(capacity)
        , ttl_(ttl) {}
    /// Claims `id` for a new request (fresh), or says it was acknowledged or is being processed.
    state begin(const std::string& id, std::chrono::steady_clock::time_point now);
    /// The request of `id` ended: remembered when it was counted, forgotten when it failed.
    void finish(const std::string& id, bool counted, std::chrono::steady_clock::time_point now);
    /// The delivery of `id` is committed and its journal record queued (its 200 waits for the
    /// sync): a snapshot from now on holds its counts, so acknowledged() lists it.
    void journaled(const std::string& id, std::chrono::steady_clock::time_point now);
    std::size_t size() const;
    /// Remembers `id` as acknowledged at `at` (a restart restoring what the state file or the
    /// journal holds); nothing when that is older than the TTL.
    void remember(const std::string& id, std::chrono::steady_clock::time_point at,
                  std::chrono::steady_clock::time_point now);
    /// The acknowledged (or journaled) ids with when each was acknowledged, oldest first: what
    /// a snapshot of the counts holds.
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> acknowledged() const;

private:
    struct entry {
        bool done = false;
        bool journaled = false;
        std::chrono::steady_clock::time_point at;
        std::list<std::string>::iterator pos;
    };
    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::chrono::seconds ttl_;
    std::list<std::string> order_; // oldest first
    std::unordered_map<std::string, entry> entries_;
};

} // namespace faultline::server
