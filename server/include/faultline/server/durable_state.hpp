// The state directory (state_dir) of a running service: the snapshot (state.json) and the journal
// of acknowledged deliveries (core/aggregate/journal.hpp). It restores them at start, writes
// snapshots (each a journal checkpoint), rebuilds the counts from them after a failed journal
// write, and lets a view show only what is durable. It owns the journal. Files only: no
// networking, no HTTP (service holds one; the snapshot thread and the views call it).
#pragma once

#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/aggregate/state.hpp"
#include "faultline/core/pipeline/pipeline.hpp"
#include "faultline/server/dedupe.hpp"
#include "faultline/server/dedupe_store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace faultline::server {

class durable_state {
public:
    /// `dir` empty: no state (nothing read or written, the views show what memory has). The
    /// delivery ids of the snapshot and of the journal's records go to `dedupe` (and, recent
    /// ones, to `store` as done: a claim a crash left there must not hold them).
    durable_state(std::string dir, core::pipeline::pipeline& pipe, dedupe_cache& dedupe, dedupe_store* store,
                  std::chrono::milliseconds in_flight_ttl);
    ~durable_state();
    durable_state(const durable_state&) = delete;
    durable_state& operator=(const durable_state&) = delete;

    /// At start, before any delivery: restores the snapshot if there is one (an unreadable file
    /// is logged and kept aside as state.json.corrupt-<ms>: the journal alone is replayed),
    /// replays the journal after it (a damaged tail is kept aside and reported, never fatal),
    /// then opens a new journal segment for the pipeline. Throws when the journal cannot be
    /// opened (acknowledgements would not survive a crash).
    void load();
    /// Writes the snapshot (atomically): with the journal, a checkpoint after which the older
    /// segments are removed. Failures are logged; false then. Skipped (false) while a failed
    /// journal write is not rebuilt: the counts may hold deliveries answered 503.
    bool save();
    /// A journal write failed and the counts were not rebuilt since.
    bool failed() const;
    /// After a failed journal write: drops the counts in memory and reads the state again from
    /// the disk (exactly what was acknowledged, as a restart would). False: nothing failed.
    bool rebuild_after_failure();
    /// `render`'s text once what it read is durable (an exported counter never exceeds what a
    /// restart restores). Nullopt while a failed write is not rebuilt (the views answer 503).
    std::optional<std::string> read(const std::function<std::string()>& render) const;
    /// Waits until every delivery handed to the journal is durable and answered.
    void drain();

    /// Bytes in the journal's current segment (0 without a journal).
    std::uint64_t journal_bytes() const;
    /// The journal (null without a state directory, or before load()).
    const core::aggregate::journal* journal() const noexcept { return journal_.get(); }
    /// Damaged journal tails kept aside (at start and at rebuilds).
    std::size_t damaged_tails() const noexcept { return damaged_.load(); }
    std::uint64_t rebuilds() const noexcept { return rebuilds_.load(); }

private:
    /// What restore found.
    struct restored {
        core::aggregate::journal::replay_report journal;
        std::uint64_t replay_from = 0;     ///< the first segment the snapshot did not hold
        std::uint64_t snapshot_events = 0; ///< events in the snapshot restored
    };
    /// The snapshot, then the journal after it, into a pipeline that holds nothing (at start, or
    /// in pipeline::rebuild).
    restored restore();
    void log_replayed(const restored& r) const;
    /// state_dir/state.json
    std::string file() const;
    /// Restores an acknowledged delivery id (from the state file or a journal record).
    void remember(const std::string& id, std::int64_t acked_ms);
    /// The acknowledged delivery ids with their Unix ms, for the state file (with `upto`: those
    /// acknowledged or journaled before that dedupe_cache::mark()).
    core::aggregate::delivery_ids acknowledged(std::uint64_t upto = UINT64_MAX) const;

    std::string dir_;
    core::pipeline::pipeline& pipe_;
    dedupe_cache& dedupe_;
    dedupe_store* store_;
    std::chrono::milliseconds in_flight_ttl_;
    std::unique_ptr<core::aggregate::journal> journal_;
    std::mutex save_mutex_; ///< one snapshot or rebuild at a time
    std::atomic<std::size_t> damaged_{0};
    std::atomic<std::uint64_t> failures_repaired_{0}; ///< journal failures the last rebuild covered
    std::atomic<std::uint64_t> rebuilds_{0};
};

} // namespace faultline::server
