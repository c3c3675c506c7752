// The journal (write-ahead log) of the state directory: each acknowledged delivery, on disk
// before its 200 leaves. Records are appended to numbered segment files (`journal-<n>.log`) by
// one writer thread that writes every record queued meanwhile, fdatasyncs once (group commit:
// many requests share one fsync) and then completes them. Readers that export counts wait for
// the records appended before their read to be durable (wait_synced), so an exported counter
// never exceeds what a restart restores. A checkpoint (the state snapshot, taken while no record
// is appended) starts a new segment: a mark in the queue, so the records before it go to the old
// segment and the later ones to the new, and nobody waits for the disk meanwhile. The snapshot
// plus the segments from the new one on are the whole state; older segments are removed.
//
// Record: "FLJ1" | payload length (u32 LE) | XXH3-64 of the payload (u64 LE) | payload.
// A torn or corrupt tail (a crash mid-write, a damaged disk) is detected by the length and the
// checksum: replay stops there, the bytes from there on are kept aside as
// `journal-<n>.log.corrupt-<ms>` and reported; the start never fails on it.
#pragma once

#include "faultline/core/error.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace faultline::core::aggregate {

class journal {
public:
    /// A record, and what runs once it is durable (`ok` false: the write failed). The record's
    /// payload is `payload` followed by `tail`: a delivery's body goes in `tail`, moved in rather
    /// than copied, and a large one is written from where it is (one writev per group).
    struct entry {
        entry(std::string p = {}, std::function<void(bool ok)> c = {}, std::string t = {})
            : payload(std::move(p))
            , complete(std::move(c))
            , tail(std::move(t)) {}
        std::string payload;
        std::function<void(bool ok)> complete;
        std::string tail;
    };

    /// What start-up found in the segments after the snapshot.
    struct replay_report {
        std::uint64_t records = 0;
        std::uint64_t segments = 0;
        std::vector<std::string> kept_aside; ///< paths of corrupt tails moved aside
        std::vector<std::string> problems;   ///< what was wrong with them
    };

    /// What one segment's bytes hold: `records` good records in the first `good_bytes` bytes,
    /// then (when `problem` is not empty) damage.
    struct segment_scan {
        std::size_t good_bytes = 0;
        std::uint64_t records = 0;
        std::string problem;
    };
    /// Reads the records of one segment's bytes in order through `fn` (false: the record is
    /// unusable, and counts as damage there). Pure: no file is touched.
    static segment_scan scan_segment(std::string_view data,
                                     const std::function<bool(std::string_view payload)>& fn);
    /// Appends one record (header and payload) as written to a segment.
    static void frame_record(std::string& out, std::string_view payload);

    /// Replays the records of `dir`'s segments numbered `from` and later, in order, through
    /// `fn` (its payload; false: the record is unusable and counts as corruption). Never fails
    /// on a damaged file: see the file comment.
    static replay_report replay(const std::string& dir, std::uint64_t from,
                                const std::function<bool(std::string_view payload)>& fn);

    /// Opens a new segment after every existing one, numbered `at_least` or more (the segment
    /// the snapshot replays from: what is written now must be replayed after it), and starts
    /// the writer.
    static result<std::unique_ptr<journal>> open(const std::string& dir, std::uint64_t at_least = 1);
    ~journal();
    journal(const journal&) = delete;
    journal& operator=(const journal&) = delete;

    /// Queues a record; never blocks on the disk. Returns its sequence number (1, 2, ...).
    std::uint64_t append(entry e);
    /// The sequence number of the last record appended.
    std::uint64_t appended() const;
    /// Waits until every record up to `seq` has been written and synced (or its write failed:
    /// failures() counts it before this returns).
    void wait_synced(std::uint64_t seq);
    /// A segment started: its number, and whether the writer opened it on reaching the mark.
    struct segment_start {
        std::uint64_t number = 0;
        /// True once the segment is open (its name synced in the directory) and the records
        /// before the mark are written; false when it could not be opened, or a write before
        /// it failed: the later records then stay in the current segment (numbered below), so
        /// a snapshot naming `number` must not be written.
        std::future<bool> opened;
    };
    /// The records appended from now on go to a new segment. Never waits: the writer opens
    /// the segment when it reaches this point of the queue, after writing the records before
    /// it to the old one. The caller makes sure no record is appended meanwhile: a snapshot of
    /// what was appended before, plus the segments from the returned number on, are the whole
    /// state, once `opened` says true.
    segment_start start_segment();
    /// Removes the segments numbered below `upto` (after the snapshot naming `upto` is on disk).
    void remove_before(std::uint64_t upto);
    /// Waits until every queued record is applied and completed (pattern swaps, shutdown).
    void drain();
    /// The segment being written (the writer's: a segment started is current once the writer
    /// reached its mark).
    std::uint64_t segment() const;
    /// Bytes written to the current segment.
    std::uint64_t segment_bytes() const { return segment_bytes_.load(); }
    /// Records written, fsyncs done, and write failures so far (metrics).
    std::uint64_t records_written() const;
    std::uint64_t syncs() const;
    std::uint64_t failures() const;
    /// Failed writes whose bytes could not be cut from the segment afterwards (a replay may
    /// find records that were answered false: the disk refused the truncate too).
    std::uint64_t cut_failures() const;

    static std::string segment_path(const std::string& dir, std::uint64_t n);
    /// The numbers of the segments in `dir`, ascending.
    static std::vector<std::uint64_t> segments(const std::string& dir);

private:
    friend struct journal_test_access; ///< tests reach the segment's descriptor to make a write fail

    /// A queued record, or (segment != 0) the mark where segment `segment` starts.
    struct item {
        entry e;
        std::uint64_t segment = 0;
        std::promise<bool> opened; ///< a mark's outcome
    };

    journal(std::string dir, std::uint64_t segment, int fd);
    void run();
    /// Writes one group (under write_mutex_), switching segments at its marks and answering
    /// them. False: a write or a sync failed; `written` says how many of its records (from the
    /// front, marks not counted) are on disk. After a failure the next group starts a fresh
    /// segment (a torn record would hide every later one from the replay).
    bool write_group(std::deque<item>& group, std::size_t& written);
    /// Opens segment `n` (its name synced) and makes it the current one; false: it could not.
    bool switch_segment(std::uint64_t n);

    std::string dir_;
    mutable std::mutex queue_mutex_;
    std::condition_variable queued_;
    std::condition_variable idle_;
    std::deque<item> queue_;
    std::size_t queued_bytes_ = 0;
    std::size_t last_group_records_ = 0; ///< items in the last group written (records and marks)
    bool busy_ = false;
    bool stop_ = false;
    bool idle_wait_ = false; ///< the writer waits for a record (under queue_mutex_)
    bool gathering_ = false; ///< the writer lets a group gather (under queue_mutex_)
    std::condition_variable synced_cv_;
    std::uint64_t appended_ = 0;     ///< under queue_mutex_
    std::uint64_t synced_ = 0;       ///< written and synced (or failed) up to here; under queue_mutex_
    std::uint64_t last_segment_ = 0; ///< the newest segment, started or open; under queue_mutex_
    /// A write or sync failed: the next group goes to a fresh segment; writer only.
    bool fresh_needed_ = false;
    /// Held while a group is written and synced (and its segments switched).
    mutable std::mutex write_mutex_;
    std::uint64_t segment_ = 0;
    int fd_ = -1;
    std::atomic<std::uint64_t> records_{0}, syncs_{0}, failures_{0}, cut_failures_{0}, segment_bytes_{0};
    std::thread writer_;
};

} // namespace faultline::core::aggregate
