// The journal (write-ahead log) of the state directory: each acknowledged delivery, on disk
// before its 200 leaves. Records are appended to numbered segment files (`journal-<n>.log`) by
// one writer thread that writes every record queued meanwhile, fdatasyncs once (group commit:
// many requests share one fsync) and then completes them. Readers that export counts wait for
// the records appended before their read to be durable (wait_synced), so an exported counter
// never exceeds what a restart restores. A checkpoint (the state snapshot, taken while no record
// is appended) starts a new segment: the snapshot plus the later segments are the whole state,
// and older segments are removed.
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
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace faultline::core::aggregate {

class journal {
public:
    /// A record, and what runs once it is durable (`ok` false: the write failed).
    struct entry {
        std::string payload;
        std::function<void(bool ok)> complete;
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

    /// Opens a new segment after every existing one and starts the writer.
    static result<std::unique_ptr<journal>> open(const std::string& dir);
    ~journal();
    journal(const journal&) = delete;
    journal& operator=(const journal&) = delete;

    /// Queues a record; never blocks on the disk. Returns its sequence number (1, 2, ...).
    std::uint64_t append(entry e);
    /// The sequence number of the last record appended.
    std::uint64_t appended() const;
    /// Waits until every record up to `seq` has been written and synced (or its write failed).
    void wait_synced(std::uint64_t seq);
    /// Starts a new segment; returns its number. The caller makes sure no record is appended
    /// meanwhile and everything appended is written (drain): a snapshot taken then plus the
    /// segments from the returned number on are the whole state.
    result<std::uint64_t> rotate();
    /// Removes the segments numbered below `upto` (after the snapshot naming `upto` is on disk).
    void remove_before(std::uint64_t upto);
    /// Waits until every queued record is applied and completed (pattern swaps, shutdown).
    void drain();
    std::uint64_t segment() const;
    /// Bytes written to the current segment.
    std::uint64_t segment_bytes() const { return segment_bytes_.load(); }
    /// Records written, fsyncs done, and write failures so far (metrics).
    std::uint64_t records_written() const;
    std::uint64_t syncs() const;
    std::uint64_t failures() const;

    static std::string segment_path(const std::string& dir, std::uint64_t n);
    /// The numbers of the segments in `dir`, ascending.
    static std::vector<std::uint64_t> segments(const std::string& dir);

private:
    journal(std::string dir, std::uint64_t segment, int fd);
    void run();
    bool open_segment(std::uint64_t n);

    std::string dir_;
    mutable std::mutex queue_mutex_;
    std::condition_variable queued_;
    std::condition_variable idle_;
    std::deque<entry> queue_;
    std::size_t queued_bytes_ = 0;
    bool busy_ = false;
    bool stop_ = false;
    std::condition_variable synced_cv_;
    std::uint64_t appended_ = 0; ///< under queue_mutex_
    std::uint64_t synced_ = 0;   ///< written and synced (or failed) up to here; under queue_mutex_
    /// Held while a group is written and synced, and by rotate() (which swaps the file).
    mutable std::mutex write_mutex_;
    std::uint64_t segment_ = 0;
    int fd_ = -1;
    std::atomic<std::uint64_t> records_{0}, syncs_{0}, failures_{0}, segment_bytes_{0};
    std::thread writer_;
};

} // namespace faultline::core::aggregate
