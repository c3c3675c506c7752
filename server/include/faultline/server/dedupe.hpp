// The delivery ids this process remembers (Firehose request ids, webhook delivery ids): a redelivery
// is recognised and not counted again. Bounded by count and age; the clock is the caller's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
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
    /// A point in the order in which ids are journaled or acknowledged, for acknowledged(upto):
    /// taken while a snapshot holds the workers, it costs nothing there, and the ids are copied
    /// after they go on.
    std::uint64_t mark() const;
    /// The acknowledged (or journaled) ids with when each was acknowledged, in the order they
    /// were: what a snapshot of the counts holds. With `upto` (a mark()), only those journaled or
    /// acknowledged before that mark (and still remembered); without, those before the call.
    /// The table is locked for `chunk` entries at a time, never for the whole copy (100 000 ids
    /// take tens of milliseconds: every request with an id would wait that long).
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>>
    acknowledged(std::uint64_t upto = UINT64_MAX, std::size_t chunk = 1024);

private:
    struct entry {
        std::string id;
        bool done = false;
        bool journaled = false;
        std::chrono::steady_clock::time_point at;
        std::uint64_t seq = 0; ///< when it was first journaled or acknowledged (0: neither yet, or an
                               ///< acknowledged() copy's cursor)
    };
    /// Gives `e` its seq (journaled or acknowledged from now on) and moves it to the end; once.
    void number(std::list<entry>::iterator e);
    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::chrono::seconds ttl_;
    std::uint64_t seq_ = 0;
    /// In flight in the order they came, then by `seq`: an entry moves to the end when it gets
    /// its seq, and stays (a copy going through the list meets every entry before its mark).
    std::list<entry> order_;
    /// id -> its entry (the key views the entry's id)
    std::unordered_map<std::string_view, std::list<entry>::iterator> entries_;
};

} // namespace faultline::server
