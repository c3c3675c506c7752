// Delivery ids shared by every replica, in Redis or Valkey (`dedupe.store: redis://...`): a
// redelivery that lands on another replica is recognised there. An id is claimed with
// set-if-absent ("in flight", expiring after dedupe.in_flight_ttl so a crashed replica's claim
// goes away), marked done when its delivery is counted (kept for firehose.dedupe_ttl) and released
// when it is not. The store is an optimisation of correctness, never a dependency: a request that
// the store does not answer within dedupe.store_timeout is decided by this process's own table,
// and counted in faultline_dedupe_store_errors_total.
//
// One thread talks to the store with hiredis's blocking API, pipelining whatever requests are
// waiting into one round trip; callers get their answer through a callback on that thread (the
// server posts it back to the session's executor). I/O threads never wait on the store.
#pragma once

#include "faultline/config/config.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct redisContext;

namespace faultline::server {

class dedupe_store {
public:
    enum class verdict {
        claimed,      ///< nobody had the id: this replica processes it
        acknowledged, ///< a replica counted it: answer 200, count nothing
        in_flight,    ///< a replica is processing it: ask the sender to retry later
        unavailable,  ///< the store did not answer in time: this process's table decides
    };
    struct options {
        config::store_endpoint endpoint;
        std::chrono::milliseconds timeout{100};
        std::chrono::seconds in_flight_ttl{30};
        std::chrono::seconds done_ttl{900};
        std::size_t max_waiting = 10'000; ///< requests beyond this are answered unavailable at once
    };
    explicit dedupe_store(options o);
    ~dedupe_store();
    dedupe_store(const dedupe_store&) = delete;
    dedupe_store& operator=(const dedupe_store&) = delete;

    /// Claims `key` for this replica, or says who has it. `done` runs once, on the store's
    /// thread (unavailable when the request waited longer than the timeout, or at stop()).
    void claim(std::string key, std::function<void(verdict)> done);
    /// The delivery of a claimed `key` ended: marked done when counted, released (if this
    /// replica's claim is still the one stored) when not. Nobody waits for it: it is sent as soon
    /// as the store answers, across reconnections (a retry meanwhile finds the id in flight and
    /// is asked to come back); dropped and counted as an error only beyond max_waiting.
    void finish(std::string key, bool counted);
    /// Whether this replica is the first to claim template `id` (kept 30 days): a template is
    /// new in the cluster only where it was first seen. `done(true)` also when the store does
    /// not answer in time (this replica's own judgement stands; counted as an error).
    void first_template(std::string id, std::function<void(bool)> done);
    /// Answers what is waiting (unavailable), forgets unsent finishes, and stops the thread.
    /// Idempotent; later requests are answered at once. The server calls it before its
    /// io_contexts go: the answers are posted to them.
    void stop();
    /// A caller gave up waiting for an answer (its own deadline): counted as an error.
    void count_timeout() noexcept { errors_.fetch_add(1, std::memory_order_relaxed); }

    /// Requests the store failed, refused or did not answer in time.
    std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
    /// Whether the last exchange with the store succeeded.
    bool connected() const noexcept { return connected_.load(std::memory_order_relaxed); }

private:
    struct request {
        enum class op { claim, done, release, first } what;
        std::string key;
        std::chrono::steady_clock::time_point queued;
        std::function<void(verdict)> claimed;
        std::function<void(bool)> finished;
    };
    void run();
    void enqueue(request r);
    /// Answers `r` without the store (unavailable; a template: first), counting the error.
    void fail(request& r);
    /// Keeps an unsent finish for the next connection (dropped and counted beyond max_waiting).
    void keep(request r);
    /// Sends `batch` in one round trip and answers each; false when the connection broke.
    bool exchange(std::deque<request>& batch);
    bool connect();
    void disconnect(const char* why);

    options o_;
    std::string owner_; ///< this process's claim value ("i:<host>:<pid>:<random>")
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<request> waiting_;
    bool stopping_ = false;
    std::deque<request> unsent_; ///< finishes not yet taken by the store (the store's thread only)
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<bool> connected_{false};
    redisContext* ctx_ = nullptr; ///< owned by the store's thread
    std::chrono::steady_clock::time_point next_connect_{};
    std::thread thread_; ///< last: started once everything above exists
};

} // namespace faultline::server
