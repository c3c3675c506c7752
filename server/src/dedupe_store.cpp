#include "faultline/server/dedupe_store.hpp"

#include "faultline/server/log.hpp"

#include <hiredis/hiredis.h>

#include <random>
#include <sys/time.h>
#include <unistd.h>

namespace faultline::server {

namespace {

/// Claims KEYS[1] with ARGV[1] for ARGV[2] ms unless it is set; returns what was there (nil: claimed).
/// A script rather than SET NX GET: that needs Redis 7, the script runs on every Redis and Valkey.
constexpr std::string_view claim_script = "local v = redis.call('GET', KEYS[1]) "
                                          "if v then return v end "
                                          "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                          "return false";
/// Deletes KEYS[1] only while it still holds this replica's claim ARGV[1].
constexpr std::string_view release_script = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                            "return redis.call('DEL', KEYS[1]) end return 0";
constexpr std::string_view key_prefix = "faultline:dedupe:";
constexpr std::string_view template_prefix = "faultline:template:";
constexpr std::string_view template_ttl_s = "2592000"; // 30 days
constexpr std::string_view done_value = "d";

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

std::string owner_token() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::random_device rd;
    return "i:" + std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(rd());
}

/// Sends one command (binary-safe arguments).
void append(redisContext* c, std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
}

} // namespace

dedupe_store::dedupe_store(options o)
    : o_(std::move(o))
    , owner_(owner_token())
    , thread_([this] { run(); }) {}

dedupe_store::~dedupe_store() {
    stop();
}

void dedupe_store::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (ctx_) { // the thread is gone: the connection is this caller's to close
        redisFree(ctx_);
        ctx_ = nullptr;
        connected_.store(false, std::memory_order_relaxed);
    }
}

namespace {
/// Runs a caller's callback; what it throws stays here (the store's thread goes on).
template <class F, class... A>
void answer(F& f, A... a) noexcept {
    if (!f) return;
    try {
        f(a...);
    } catch (...) {
    }
}
} // namespace

void dedupe_store::enqueue(request r) {
    {
        std::unique_lock lock(mutex_);
        if (!stopping_ && waiting_.size() < o_.max_waiting) {
            waiting_.push_back(std::move(r));
            lock.unlock();
            wake_.notify_one();
            return;
        }
    }
    if (r.what == request::op::claim || r.what == request::op::first)
        fail(r);
    else
        errors_.fetch_add(1, std::memory_order_relaxed); // a finish dropped: its claim expires
}

void dedupe_store::claim(std::string key, std::function<void(verdict)> done) {
    enqueue({request::op::claim, std::move(key), std::chrono::steady_clock::now(), std::move(done), {}});
}

void dedupe_store::finish(std::string key, bool counted) {
    enqueue({counted ? request::op::done : request::op::release,
             std::move(key),
             std::chrono::steady_clock::now(),
             {},
             {}});
}

void dedupe_store::first_template(std::string id, std::function<void(bool)> done) {
    enqueue({request::op::first, std::move(id), std::chrono::steady_clock::now(), {}, std::move(done)});
}

void dedupe_store::fail(request& r) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    answer(r.claimed, verdict::unavailable);
    // A template's judgement falls back to this replica's own (it found the template new).
    answer(r.finished, true);
}

void dedupe_store::keep(request r) {
    if (unsent_.size() < o_.max_waiting)
        unsent_.push_back(std::move(r));
    else
        errors_.fetch_add(1, std::memory_order_relaxed); // dropped: its claim expires
}

void dedupe_store::run() {
    connect(); // at start: faultline_dedupe_store_up and the log say at once whether it is there
    for (;;) {
        std::deque<request> batch;
        {
            std::unique_lock lock(mutex_);
            // New requests, or (with finishes left unsent) the next connection attempt.
            if (unsent_.empty())
                wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
            else
                wake_.wait_until(lock, next_connect_, [this] { return stopping_ || !waiting_.empty(); });
            batch.swap(waiting_);
            if (stopping_) {
                lock.unlock();
                // Questions are answered "unavailable"; the finishes get one last exchange (a
                // graceful stop leaves no claim behind), or expire after in_flight_ttl.
                std::deque<request> last = std::exchange(unsent_, {});
                for (auto& r : batch) {
                    if (r.what == request::op::claim || r.what == request::op::first)
                        fail(r);
                    else
                        last.push_back(std::move(r));
                }
                if (!last.empty() && ctx_) exchange(last);
                unsent_.clear();
                return;
            }
        }
        // Questions that waited past the timeout were decided without the store by now:
        // answer them so. Finishes never expire (nobody waits for them).
        const auto now = std::chrono::steady_clock::now();
        std::deque<request> live = std::exchange(unsent_, {});
        for (auto& r : batch) {
            const bool question = r.what == request::op::claim || r.what == request::op::first;
            if (question && now - r.queued > o_.timeout)
                fail(r);
            else
                live.push_back(std::move(r));
        }
        if (live.empty()) continue;
        if (!ctx_ && !connect()) {
            for (auto& r : live) {
                if (r.what == request::op::done || r.what == request::op::release)
                    keep(std::move(r));
                else
                    fail(r);
            }
            continue;
        }
        if (!exchange(live)) disconnect("the store stopped answering");
    }
}

bool dedupe_store::connect() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_connect_) return false;
    next_connect_ = now + std::chrono::seconds(1); // at most one attempt a second while it is down
    const auto& e = o_.endpoint;
    const timeval tv = to_timeval(o_.timeout);
    redisContext* c = redisConnectWithTimeout(e.host.c_str(), e.port, tv);
    if (!c || c->err) {
        connected_.store(false, std::memory_order_relaxed);
        log::write_limited(
            "dedupe store", 1, log::level::warn,
            "the dedupe store is unreachable: this process's table decides",
            {{"store", e.host + ":" + std::to_string(e.port)}, {"error", c ? c->errstr : "out of memory"}});
        if (c) redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    auto setup = [c](std::initializer_list<std::string_view> args) {
        append(c, args);
        void* reply = nullptr;
        if (redisGetReply(c, &reply) != REDIS_OK) return std::string(c->errstr);
        auto* r = static_cast<redisReply*>(reply);
        std::string error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string();
        freeReplyObject(r);
        return error;
    };
    std::string error;
    if (!e.password.empty())
        error = e.user.empty() ? setup({"AUTH", e.password}) : setup({"AUTH", e.user, e.password});
    if (error.empty() && e.db != 0) error = setup({"SELECT", std::to_string(e.db)});
    if (!error.empty()) {
        log::write_limited("dedupe store", 1, log::level::warn,
                           "the dedupe store refused the connection: this process's table decides",
                           {{"store", e.host + ":" + std::to_string(e.port)}, {"error", error}});
        redisFree(c);
        return false;
    }
    ctx_ = c;
    connected_.store(true, std::memory_order_relaxed);
    log::write(log::level::info, "connected to the dedupe store",
               {{"store", e.host + ":" + std::to_string(e.port)}});
    return true;
}

void dedupe_store::disconnect(const char* why) {
    log::write_limited("dedupe store", 1, log::level::warn,
                       "lost the dedupe store: this process's table decides",
                       {{"error", ctx_ && ctx_->err ? ctx_->errstr : why}});
    redisFree(ctx_);
    ctx_ = nullptr;
    connected_.store(false, std::memory_order_relaxed);
}

bool dedupe_store::exchange(std::deque<request>& batch) {
    const std::string in_flight_ms = std::to_string(std::chrono::milliseconds(o_.in_flight_ttl).count());
    const std::string done_ms = std::to_string(std::chrono::milliseconds(o_.done_ttl).count());
    for (const auto& r : batch) {
        const std::string key =
            std::string(r.what == request::op::first ? template_prefix : key_prefix) + r.key;
        switch (r.what) {
        case request::op::first:
            append(ctx_, {"SET", key, owner_, "NX", "EX", template_ttl_s});
            break;
        case request::op::claim:
            append(ctx_, {"EVAL", claim_script, "1", key, owner_, in_flight_ms});
            break;
        case request::op::done:
            append(ctx_, {"SET", key, done_value, "PX", done_ms});
            break;
        case request::op::release:
            append(ctx_, {"EVAL", release_script, "1", key, owner_});
            break;
        }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& r = batch[i];
        void* reply = nullptr;
        if (redisGetReply(ctx_, &reply) != REDIS_OK) {
            for (std::size_t k = i; k < batch.size(); ++k) {
                if (batch[k].what == request::op::done || batch[k].what == request::op::release)
                    keep(std::move(batch[k])); // sent again after the reconnection (idempotent)
                else
                    fail(batch[k]);
            }
            return false;
        }
        auto* rep = static_cast<redisReply*>(reply);
        if (rep->type == REDIS_REPLY_ERROR) {
            log::write_limited("dedupe store error", 1, log::level::warn,
                               "the dedupe store refused a request",
                               {{"error", std::string_view(rep->str, rep->len)}});
            freeReplyObject(rep);
            fail(r);
            continue;
        }
        // Only the replies these commands give are taken; anything else is the store's error.
        const int expected = r.what == request::op::done || r.what == request::op::first ? REDIS_REPLY_STATUS
                             : r.what == request::op::release                            ? REDIS_REPLY_INTEGER
                                                                                         : REDIS_REPLY_STRING;
        const bool nil_ok = r.what == request::op::claim || r.what == request::op::first;
        if (rep->type != expected && !(nil_ok && rep->type == REDIS_REPLY_NIL)) {
            log::write_limited("dedupe store error", 1, log::level::warn,
                               "the dedupe store gave an unexpected reply",
                               {{"reply_type", std::to_string(rep->type)}});
            freeReplyObject(rep);
            fail(r);
            continue;
        }
        if (r.what == request::op::claim) {
            verdict v = verdict::claimed; // nil: it was absent, now it is this replica's
            if (rep->type == REDIS_REPLY_STRING)
                v = std::string_view(rep->str, rep->len) == done_value ? verdict::acknowledged
                                                                       : verdict::in_flight;
            freeReplyObject(rep);
            answer(r.claimed, v);
        } else {
            // SET NX: "OK" when this replica set it, nil when another one had (first: false).
            const bool ok = rep->type != REDIS_REPLY_NIL;
            freeReplyObject(rep);
            answer(r.finished, ok);
        }
    }
    return true;
}

} // namespace faultline::server
