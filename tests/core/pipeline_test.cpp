#include "faultline/core/pipeline/pipeline.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using faultline::core::aggregate::counts;
using faultline::core::decode::decoder;
using faultline::core::pipeline::admission;
using faultline::core::pipeline::job;
using faultline::core::pipeline::pipeline;
using faultline::core::pipeline::pipeline_options;
using faultline::core::pipeline::worker_context;
using faultline::test::pattern_id;

namespace {

using namespace std::chrono_literals;

struct job_stats {
    std::atomic<int> ran{0};
    std::atomic<int> destroyed{0};
};

/// Decodes `text` as lines of `group` into the worker's batch, then commits it (unless told not to).
class lines_job final : public job {
public:
    lines_job(std::string text, std::string group, job_stats* stats = nullptr, bool commit = true)
        : text_(std::move(text))
        , group_(std::move(group))
        , stats_(stats)
        , commit_(commit) {}
    ~lines_job() override {
        if (stats_) stats_->destroyed.fetch_add(1);
    }
    void run(worker_context& ctx) noexcept override {
        auto& sink = ctx.begin_batch();
        decoder::lines(text_, group_, sink);
        if (commit_) ctx.commit_batch();
        if (stats_) stats_->ran.fetch_add(1);
    }

private:
    std::string text_, group_;
    job_stats* stats_;
    bool commit_;
};

/// Holds its worker until the gate opens.
struct gate {
    std::atomic<int> started{0};
    std::atomic<bool> open{false};
    void release() {
        open.store(true);
        open.notify_all();
    }
    /// Waits (bounded) until `n` blocking jobs are running.
    bool wait_started(int n) {
        for (int i = 0; i < 3000 && started.load() < n; ++i)
            std::this_thread::sleep_for(1ms);
        return started.load() >= n;
    }
};

class blocking_job final : public job {
public:
    explicit blocking_job(std::shared_ptr<gate> g)
        : gate_(std::move(g)) {}
    void run(worker_context&) noexcept override {
        gate_->started.fetch_add(1);
        gate_->open.wait(false);
    }

private:
    std::shared_ptr<gate> gate_;
};

/// Opens the gate when the scope ends (declared after the pipeline, so a failed REQUIRE cannot
/// leave a worker blocked while the pipeline's destructor joins it).
struct gate_guard {
    std::shared_ptr<gate> g;
    ~gate_guard() { g->release(); }
};

pipeline_options with_inline_contexts(pipeline_options o, std::size_t n) {
    o.inline_contexts = n;
    return o;
}

/// The `limit` templates with the most events (pick_templates without a filter).
pipeline::templates_view top_templates(const pipeline& p, std::size_t limit) {
    return p.pick_templates([limit](const faultline::core::match::pattern_set&) {
        faultline::core::aggregate::template_pick pick;
        pick.limit = limit;
        return pick;
    });
}

bool wait_idle(const pipeline& p) {
    for (int i = 0; i < 30000 && p.queue_depth() != 0; ++i)
        std::this_thread::sleep_for(1ms);
    return p.queue_depth() == 0;
}

pipeline_options options(std::size_t workers, std::size_t capacity) {
    pipeline_options o;
    o.workers = workers;
    o.queue_capacity = capacity;
    return o;
}

} // namespace

TEST_CASE("pipeline: one worker runs jobs that decode lines, commit, and the snapshot sums them") {
    auto set = faultline::test::bench_patterns();
    const auto error_level = pattern_id(*set, "error_level");
    const auto timeout = pattern_id(*set, "timeout");
    const auto warn_level = pattern_id(*set, "warn_level");
    job_stats stats;
    pipeline p(set, options(1, 8));
    CHECK(std::size_t{1} == p.workers());
    CHECK(std::size_t{16} == p.patterns().size());

    p.submit(std::make_unique<lines_job>("ERROR disk 1 full\nall fine\n", "app", &stats));
    p.submit(std::make_unique<lines_job>("ERROR disk 22 full\r\nrequest timed out\n\nWARN low memory", "app",
                                         &stats));
    p.submit(std::make_unique<lines_job>("ERROR disk 333 full\n", "db", &stats));
    p.submit(std::make_unique<lines_job>("ERROR never committed\n", "ghost", &stats, false));
    p.stop();
    CHECK(4 == stats.ran.load());
    CHECK(4 == stats.destroyed.load());
    CHECK(std::size_t{0} == p.queue_depth());

    const counts c = p.snapshot();
    CHECK(0u == c.documents);
    CHECK(0u == c.control_messages);
    CHECK(6u == c.events);
    CHECK(3u == c.patterns[error_level]);
    CHECK(1u == c.patterns[timeout]);
    CHECK(1u == c.patterns[warn_level]);
    CHECK(std::size_t{2} == c.by_group.size());
    REQUIRE(c.by_group.count("app"));
    CHECK(2u == c.by_group.at("app")[error_level]);
    CHECK(1u == c.by_group.at("app")[timeout]);
    CHECK(1u == c.by_group.at("app")[warn_level]);
    REQUIRE(c.by_group.count("db"));
    CHECK(1u == c.by_group.at("db")[error_level]);
    CHECK(0u == c.by_group.count("ghost"));
    CHECK(std::size_t{2} == c.templates.size());
    CHECK(3u == c.templates.at("ERROR disk <NUM> full").count);
    CHECK(1u == c.templates.at("request timed out").count);

    // The snapshot is a copy: stable across calls.
    const counts again = p.snapshot();
    CHECK(c.events == again.events);
    CHECK(faultline::test::template_counts(c) == faultline::test::template_counts(again));
}

TEST_CASE("pipeline: analyze options reach the workers (max_message_bytes)") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    pipeline_options o = options(1, 4);
    o.analyze.max_message_bytes = 16;
    pipeline p(set, o);
    // Matched and masked on the first 16 bytes only, but every event is counted.
    p.submit(
        std::make_unique<lines_job>("0123456789abcdef ERROR late\nERROR 12 early and long message\n", "g"));
    p.stop();
    const counts c = p.snapshot();
    CHECK(2u == c.events);
    CHECK(1u == c.patterns[0]);
    REQUIRE(std::size_t{1} == c.templates.size());
    CHECK(1u == c.templates.at("ERROR <NUM> early a").count); // "ERROR 12 early a" is 16 bytes
}

TEST_CASE("pipeline: workers = 0 means one per hardware thread") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    pipeline p(set, options(0, 4));
    CHECK(p.workers() >= std::size_t{1});
    CHECK(std::size_t{std::max(1u, std::thread::hardware_concurrency())} == p.workers());
}

TEST_CASE("pipeline: try_submit returns queue_full at capacity and keeps the job with the caller") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto g = std::make_shared<gate>();
    job_stats stats;
    pipeline p(set, options(1, 2));
    gate_guard guard{g};

    std::unique_ptr<job> blocker = std::make_unique<blocking_job>(g);
    REQUIRE(admission::accepted == p.try_submit(blocker));
    CHECK(nullptr == blocker);
    REQUIRE(g->wait_started(1));
    CHECK(std::size_t{1} == p.queue_depth()); // running jobs count against the capacity

    std::unique_ptr<job> second = std::make_unique<lines_job>("ERROR a\n", "g", &stats);
    REQUIRE(admission::accepted == p.try_submit(second));
    CHECK(std::size_t{2} == p.queue_depth());

    std::unique_ptr<job> third = std::make_unique<lines_job>("ERROR b\n", "g", &stats);
    CHECK(admission::queue_full == p.try_submit(third));
    CHECK(nullptr != third);
    CHECK(admission::queue_full == p.try_submit(third));
    CHECK(std::size_t{2} == p.queue_depth());
    CHECK(0 == stats.ran.load());

    g->release();
    REQUIRE(wait_idle(p));
    CHECK(1 == stats.ran.load());
    REQUIRE(admission::accepted == p.try_submit(third));
    CHECK(nullptr == third);
    REQUIRE(wait_idle(p));
    CHECK(2u == p.snapshot().events);
}

TEST_CASE("pipeline: after stop() try_submit returns stopped, and stop() is idempotent") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    job_stats stats;
    pipeline p(set, options(2, 4));
    p.submit(std::make_unique<lines_job>("ERROR one\n", "g", &stats));
    p.stop();
    CHECK(1 == stats.ran.load());

    std::unique_ptr<job> late = std::make_unique<lines_job>("ERROR late\n", "g", &stats);
    CHECK(admission::stopped == p.try_submit(late));
    CHECK(nullptr != late);
    p.stop();
    CHECK(admission::stopped == p.try_submit(late));
    late.reset();
    CHECK(1 == stats.ran.load());
    CHECK(1u == p.snapshot().events);
}

TEST_CASE("pipeline: stop() runs the jobs already queued") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto g = std::make_shared<gate>();
    job_stats stats;
    pipeline p(set, options(1, 64));
    gate_guard guard{g};
    p.submit(std::make_unique<blocking_job>(g));
    REQUIRE(g->wait_started(1));
    for (int i = 0; i < 20; ++i)
        p.submit(std::make_unique<lines_job>("ERROR x\n", "g", &stats));
    std::jthread opener([g] {
        std::this_thread::sleep_for(100ms);
        g->release();
    });
    p.stop(); // returns once the worker has run everything queued before it
    CHECK(20 == stats.ran.load());
    CHECK(20u == p.snapshot().events);
}

TEST_CASE("pipeline: stop() from another thread runs every job queued before it") {
    // The jobs are queued by this thread, stop() is called from another one while they wait.
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto g = std::make_shared<gate>();
    job_stats stats;
    {
        pipeline p(set, options(1, 64));
        gate_guard guard{g};
        p.submit(std::make_unique<blocking_job>(g));
        REQUIRE(g->wait_started(1));
        for (int i = 0; i < 3; ++i)
            p.submit(std::make_unique<lines_job>("ERROR x\n", "g", &stats));
        std::jthread stopper([&p] { p.stop(); });
        std::this_thread::sleep_for(200ms); // the stopper has queued its stop marker by now
        g->release();
        stopper.join();
        CHECK(3 == stats.ran.load());
        CHECK(3u == p.snapshot().events);
    }
    CHECK(3 == stats.destroyed.load()); // no job left behind in the queue
}

TEST_CASE("pipeline: stress, 4 workers and 4 producers, exact totals") {
    auto set = faultline::test::bench_patterns();
    const auto error_level = pattern_id(*set, "error_level");
    const auto warn_level = pattern_id(*set, "warn_level");
    constexpr int producers = 4, jobs_each = 2500;
    job_stats stats;
    pipeline p(set, options(4, 64));
    REQUIRE(std::size_t{4} == p.workers());

    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> snapshots{0};
    bool monotonic = true;
    std::jthread reader([&] {
        std::uint64_t last = 0;
        while (!done.load()) {
            const auto events = p.snapshot().events;
            if (events < last) monotonic = false;
            last = events;
            snapshots.fetch_add(1);
            std::this_thread::sleep_for(1ms);
        }
    });
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < producers; ++t)
            threads.emplace_back([&, t] {
                const std::string group = "producer-" + std::to_string(t);
                for (int i = 0; i < jobs_each; ++i)
                    p.submit(std::make_unique<lines_job>("ERROR item " + std::to_string(i) + " of " + group +
                                                             "\nok\n\nWARN w" + std::to_string(t) + "\n",
                                                         group, &stats));
            });
    } // producers joined
    REQUIRE(wait_idle(p));
    done.store(true);
    reader.join();

    const counts before_stop = p.snapshot();
    p.stop();
    const counts after_stop = p.snapshot();
    CHECK(producers * jobs_each == stats.ran.load());
    CHECK(producers * jobs_each == stats.destroyed.load());
    CHECK(monotonic);
    CHECK(snapshots.load() > 0u);
    for (const counts* c : {&before_stop, &after_stop}) {
        CHECK(std::uint64_t{3} * producers * jobs_each == c->events);
        CHECK(std::uint64_t{producers} * jobs_each == c->patterns[error_level]);
        CHECK(std::uint64_t{producers} * jobs_each == c->patterns[warn_level]);
        CHECK(std::size_t{producers} == c->by_group.size());
        for (int t = 0; t < producers; ++t) {
            const std::string group = "producer-" + std::to_string(t);
            REQUIRE(c->by_group.count(group));
            CHECK(std::uint64_t{jobs_each} == c->by_group.at(group)[error_level]);
            CHECK(std::uint64_t{jobs_each} == c->by_group.at(group)[warn_level]);
        }
        REQUIRE(std::size_t{1} == c->templates.size());
        CHECK(std::uint64_t{producers} * jobs_each ==
              c->templates.at("ERROR item <NUM> of producer-<NUM>").count);
    }
}

TEST_CASE("pipeline: swap_patterns under load keeps every event and re-indexes counts by name") {
    using faultline::core::match::pattern;
    using faultline::core::match::pattern_class;
    using faultline::core::match::pattern_set;
    auto make = [](std::vector<std::string> names) {
        std::vector<pattern> ps;
        for (const auto& n : names) {
            pattern p;
            p.name = n;
            p.cls = pattern_class::error;
            p.regex = n == "keep" ? "KEEP" : n == "other" ? "OTHER" : "NEVER";
            ps.push_back(std::move(p));
        }
        return *pattern_set::compile(std::move(ps));
    };
    auto first = make({"keep", "other"});
    pipeline_options o;
    o.workers = 2;
    o.queue_capacity = 64;
    pipeline p(first, o);
    constexpr int producers = 3, jobs_each = 300;
    std::vector<std::thread> threads;
    for (int k = 0; k < producers; ++k)
        threads.emplace_back([&] {
            for (int i = 0; i < jobs_each; ++i)
                p.submit(std::make_unique<lines_job>("KEEP OTHER line\nKEEP line\n", "g"));
        });
    // Swap back and forth while the jobs run: "keep" survives every swap, "other" comes and goes.
    for (int s = 0; s < 20; ++s) {
        p.swap_patterns(s % 2 ? make({"keep", "other"}) : make({"added", "keep"}));
        std::this_thread::sleep_for(1ms);
    }
    for (auto& t : threads)
        t.join();
    p.stop();
    const auto v = p.view();
    CHECK(std::uint64_t{producers} * jobs_each * 2 == v.totals.events); // nothing lost
    const auto keep = pattern_id(*v.patterns, "keep");
    CHECK(std::uint64_t{producers} * jobs_each * 2 == v.totals.patterns[keep]); // counted under every set
    CHECK(v.totals.by_group.at("g")[keep] == v.totals.patterns[keep]);
}

namespace {

/// Records the order in which jobs run.
class order_job final : public job {
public:
    order_job(int id, std::mutex& m, std::vector<int>& order)
        : id_(id)
        , m_(m)
        , order_(order) {}
    void run(worker_context&) noexcept override {
        std::lock_guard lock(m_);
        order_.push_back(id_);
    }

private:
    int id_;
    std::mutex& m_;
    std::vector<int>& order_;
};

} // namespace

TEST_CASE("pipeline: jobs run in arrival order whichever thread submitted them") {
    // Several submitting threads (the I/O threads) and one worker: the worker takes jobs in the
    // order they arrived, not one producer's backlog before another's (moodycamel's queue, FIFO
    // per producer only, ran them grouped by producer).
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto g = std::make_shared<gate>();
    pipeline p(set, options(1, 1024));
    gate_guard guard{g};
    std::unique_ptr<job> blocker = std::make_unique<blocking_job>(g);
    REQUIRE(admission::accepted == p.try_submit(blocker));
    REQUIRE(g->wait_started(1));
    std::mutex m;
    std::vector<int> order;
    constexpr int producers = 4, rounds = 50;
    // Thread k submits job (round * producers + k) after thread k-1 submitted its job of the round.
    std::atomic<int> turn{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < producers; ++k)
        threads.emplace_back([&, k] {
            for (int r = 0; r < rounds; ++r) {
                const int id = r * producers + k;
                while (turn.load() != id)
                    std::this_thread::yield();
                std::unique_ptr<job> j = std::make_unique<order_job>(id, m, order);
                const auto a = p.try_submit(j);
                turn.store(id + 1);
                CHECK(admission::accepted == a);
            }
        });
    for (auto& t : threads)
        t.join();
    g->release();
    REQUIRE(wait_idle(p));
    std::vector<int> expected(producers * rounds);
    for (int i = 0; i < producers * rounds; ++i)
        expected[static_cast<std::size_t>(i)] = i;
    std::lock_guard lock(m); // the worker wrote it under m
    CHECK(expected == order);
}

TEST_CASE("pipeline: while the oldest queued job has waited over queue_wait, new jobs are refused") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto g = std::make_shared<gate>();
    job_stats stats;
    auto now = std::make_shared<std::atomic<std::int64_t>>(0); // ms on the injected clock
    pipeline_options o = options(1, 16);
    o.queue_wait = 1000ms;
    o.clock = [now] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(now->load())); };
    pipeline p(set, o);
    gate_guard guard{g};
    std::unique_ptr<job> blocker = std::make_unique<blocking_job>(g);
    REQUIRE(admission::accepted == p.try_submit(blocker));
    REQUIRE(g->wait_started(1)); // running, not waiting: the queue is empty
    CHECK(0ms == p.oldest_wait());

    std::unique_ptr<job> first = std::make_unique<lines_job>("ERROR a\n", "g", &stats);
    REQUIRE(admission::accepted == p.try_submit(first)); // queued at t = 0
    now->store(1000);
    CHECK(1000ms == p.oldest_wait());
    std::unique_ptr<job> second = std::make_unique<lines_job>("ERROR b\n", "g", &stats);
    CHECK(admission::accepted == p.try_submit(second)); // waited exactly the bound: still admitted
    now->store(1001);
    std::unique_ptr<job> third = std::make_unique<lines_job>("ERROR c\n", "g", &stats);
    CHECK(admission::queue_wait == p.try_submit(third)); // over it: refused, the job stays here
    CHECK(nullptr != third);
    CHECK(std::size_t{3} == p.queue_depth()); // the refusal took no slot

    g->release(); // the queue drains: nothing waits any more
    REQUIRE(wait_idle(p));
    CHECK(0ms == p.oldest_wait());
    CHECK(admission::accepted == p.try_submit(third));
    REQUIRE(wait_idle(p));
    CHECK(3 == stats.ran.load());
}

TEST_CASE("pipeline: counters() has every counter of the snapshot and no template") {
    auto set = faultline::test::bench_patterns();
    pipeline p(set, with_inline_contexts(options(1, 8), 2));
    lines_job a("ERROR disk 1 full\nWARN low memory\n", "app");
    lines_job b("ERROR disk 22 full\nrequest timed out\n", "db");
    p.run_inline(a, 0);
    p.run_inline(b, 1);
    const counts all = p.snapshot();
    const auto v = p.counters();
    CHECK(v.patterns.get() == p.current_patterns().get());
    CHECK(v.totals.events == all.events);
    CHECK(v.totals.patterns == all.patterns);
    CHECK(v.totals.by_group.size() == all.by_group.size());
    CHECK(v.totals.by_group.at("db") == all.by_group.at("db"));
    CHECK(v.totals.templates.empty());
    CHECK(all.templates.size() == 2u);
}

TEST_CASE("pipeline: pick_templates with exact templates sums a template held by several workers") {
    auto set = faultline::test::bench_patterns();
    pipeline p(set, with_inline_contexts(options(1, 8), 2));
    lines_job a("ERROR disk 1 full\nrequest timed out\n", "app");
    lines_job b("ERROR disk 22 full\n", "db");
    p.run_inline(a, 0); // the same template in two contexts' shards
    p.run_inline(b, 1);
    const std::size_t error_level = pattern_id(*set, "error_level");
    const auto v = p.pick_templates([&](const faultline::core::match::pattern_set& s) {
        CHECK(&s == p.current_patterns().get());
        faultline::core::aggregate::template_pick pick;
        pick.limit = 1;
        return pick;
    });
    CHECK(v.alive == 2u);
    REQUIRE(v.picked.size() == 1u);
    CHECK(v.picked[0].text == "ERROR disk <NUM> full");
    CHECK(v.picked[0].stats.count == 2u);
    REQUIRE(v.picked[0].stats.details);
    CHECK(v.picked[0].stats.details->patterns ==
          std::vector<std::uint32_t>{static_cast<std::uint32_t>(error_level)});
}

TEST_CASE("pipeline: pick_templates when mining gives what a full snapshot would, previous texts included") {
    auto set = faultline::test::bench_patterns();
    auto o = options(1, 8);
    o.inline_contexts = 1;
    faultline::core::mine::miner_options m;
    m.shards = 4;
    m.warmup_ms = 0;
    o.mining = m;
    pipeline p(set, o);
    std::string text;
    for (int i = 0; i < 40; ++i) // a template generalized from two plain words, and 39 others
        text += "ERROR " + std::string(1, static_cast<char>('a' + i % 26)) + std::string(i / 26 + 1, 'q') +
                " broke" + std::string(static_cast<std::size_t>(i % 7), '!') + "\n";
    text += "ERROR upstream alpha refused\nERROR upstream beta refused\n";
    lines_job job(text, "app");
    p.run_inline(job, 0);
    const counts all = p.snapshot();
    REQUIRE(all.templates.count("ERROR upstream <*> refused"));
    for (std::size_t limit : {1u, 5u, 1000u}) {
        const auto v = top_templates(p, limit);
        CHECK(v.alive == all.templates.size());
        // The reference: every template of the snapshot, ranked the same way.
        std::vector<std::pair<std::uint64_t, std::string>> ranked;
        for (const auto& [t, s] : all.templates)
            ranked.emplace_back(s.count, t);
        std::sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) {
            return x.first != y.first ? x.first > y.first : x.second < y.second;
        });
        REQUIRE(v.picked.size() == std::min(limit, ranked.size()));
        for (std::size_t i = 0; i < v.picked.size(); ++i) {
            CHECK(v.picked[i].text == ranked[i].second);
            CHECK(v.picked[i].stats.count == ranked[i].first);
        }
    }
    const auto top = top_templates(p, 1);
    REQUIRE(top.picked.size() == 1u);
    CHECK(top.picked[0].text == "ERROR upstream <*> refused");
    REQUIRE(top.picked[0].stats.details);
    CHECK(top.picked[0].stats.details->previous_texts ==
          all.templates.at("ERROR upstream <*> refused").details->previous_texts);
    CHECK(!top.picked[0].stats.details->previous_texts.empty());
}

TEST_CASE("worker_context: a mined batch of many lines is not kept after its commit; the next "
          "batch's new lines are made from its entries") {
    // Hostile: one delivery of 6 000 distinct error lines, then an idle worker.
    auto patterns = faultline::test::compile_patterns("oom\terror\tOutOfMemory\n");
    worker_context ctx(0, patterns, {}, {}, {});
    faultline::core::mine::template_miner miner({}, 0);
    ctx.miner = &miner;
    const auto word = faultline::test::distinct_word; // each line its own masked text
    auto& sink = ctx.begin_batch(60'000);
    sink.on_document("/aws/lambda/a");
    for (std::size_t i = 0; i < 6000; ++i)
        sink.on_event("OutOfMemory in " + word(i) + " while " + word(i * 7 + 1) + " ran");
    REQUIRE(ctx.batch.templates.size() > counts::recycled_templates);
    const std::size_t open_before = ctx.batch.open_details.entries.capacity();
    ctx.commit_batch("firehose");
    CHECK(ctx.batch.templates.empty());
    CHECK(ctx.analyzer.spare().size() == counts::recycled_templates);
    // Nor its details' array: kept up to its bound only.
    CHECK(open_before > faultline::core::aggregate::batch_details::kept_entries);
    CHECK(ctx.batch.open_details.entries.empty());
    CHECK(ctx.batch.open_details.entries.capacity() <=
          faultline::core::aggregate::batch_details::kept_entries);
    CHECK(ctx.batch.open_details.samples.capacity() <=
          faultline::core::aggregate::batch_details::kept_entries * 256);
    counts totals(1);
    ctx.shard.add_to(totals);
    CHECK(totals.events == 6000);
    // The next batch: its lines take dropped entries, and count as they should.
    auto& next = ctx.begin_batch(120'000);
    next.on_document("/aws/lambda/b");
    next.on_event("OutOfMemory in a brand new place");
    CHECK(ctx.analyzer.spare().size() == counts::recycled_templates - 1);
    REQUIRE(ctx.batch.templates.size() == 1);
    const auto& entry = ctx.batch.templates.begin()->second;
    CHECK(entry.count == 1);
    ctx.batch.settle_details(); // from the batch's array into the entry
    REQUIRE(entry.details);
    CHECK(entry.details->sample == "OutOfMemory in a brand new place");
    CHECK(entry.details->first_seen_ms == 120'000);
}
