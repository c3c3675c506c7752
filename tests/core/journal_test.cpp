#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/aggregate/state.hpp"
#include "faultline/core/pipeline/delivery.hpp"

#include "../support/file_size_limit.hpp"
#include "../support/helpers.hpp"
#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace faultline::core::aggregate {
struct journal_test_access {
    /// Swaps the current segment's descriptor for a read-only one: the next write fails.
    static void fail_next_write(journal& j) {
        const int ro = ::open(journal::segment_path(j.dir_, j.segment()).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(ro >= 0);
        REQUIRE(::dup2(ro, j.fd_) >= 0);
        ::close(ro);
    }
    /// Holds the writer at its next write: what is appended meanwhile is written as one group
    /// after it.
    static std::unique_lock<std::mutex> hold_writes(journal& j) {
        return std::unique_lock<std::mutex>(j.write_mutex_);
    }
};
} // namespace faultline::core::aggregate

using faultline::core::aggregate::journal;
using faultline::core::aggregate::journal_test_access;
using faultline::core::pipeline::pipeline;
using faultline::core::pipeline::pipeline_options;
using faultline::test::temp_dir;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> replay_all(const std::string& dir, std::uint64_t from,
                                    journal::replay_report* out = nullptr) {
    std::vector<std::string> seen;
    auto report = journal::replay(dir, from, [&](std::string_view p) {
        seen.emplace_back(p);
        return true;
    });
    if (out) *out = report;
    return seen;
}

} // namespace

TEST_CASE("journal: records come back in order; each completes once durable; wait_synced covers them") {
    temp_dir d;
    std::atomic<int> completed{0};
    {
        auto j = journal::open(d.path);
        REQUIRE(j);
        for (int i = 0; i < 100; ++i)
            (*j)->append({"record " + std::to_string(i), [&completed](bool ok) { completed += ok ? 1 : 0; }});
        (*j)->wait_synced((*j)->appended());
        CHECK(100u == (*j)->appended());
        (*j)->drain();
        CHECK(100 == completed.load());
        CHECK(100u == (*j)->records_written());
        CHECK((*j)->syncs() >= 1u);
    }
    const auto seen = replay_all(d.path, 0);
    REQUIRE(100u == seen.size());
    CHECK("record 0" == seen.front());
    CHECK("record 99" == seen.back());
}

TEST_CASE("journal: a record's tail is the rest of its payload, small (copied) or large (written in place)") {
    temp_dir d;
    // Small and large tails and empty pieces, in groups of more pieces than one writev takes
    // (IOV_MAX), with a new segment started amid them (the group is written in two writes,
    // around the mark): each comes back as payload + tail, with a checksum that holds.
    std::vector<std::string> expected;
    std::uint64_t mark = 0;
    {
        auto j = journal::open(d.path);
        REQUIRE(j);
        auto held = journal_test_access::hold_writes(**j);
        std::future<bool> opened;
        for (int i = 0; i < 3000; ++i) {
            if (i == 2000) {
                auto start = (*j)->start_segment();
                mark = start.number;
                opened = std::move(start.opened);
            }
            const std::size_t tail_bytes =
                i % 3 == 0 ? (16u << 10) + static_cast<std::size_t>(i) : (i % 3 == 1 ? 7 : 0);
            std::string head = i % 5 == 0 ? std::string() : "head " + std::to_string(i) + "|";
            std::string tail(tail_bytes, static_cast<char>('a' + i % 26));
            expected.push_back(head + tail);
            (*j)->append({std::move(head), {}, std::move(tail)});
        }
        held.unlock();
        (*j)->drain();
        CHECK(opened.get());
        CHECK(3000u == (*j)->records_written());
    }
    journal::replay_report report;
    const auto seen = replay_all(d.path, 0, &report);
    CHECK(report.problems.empty());
    REQUIRE(expected.size() == seen.size());
    for (std::size_t i = 0; i < seen.size(); ++i)
        REQUIRE(expected[i] == seen[i]);
    const auto after = replay_all(d.path, mark);
    REQUIRE(1000u == after.size());
    CHECK(expected[2000] == after.front());
    CHECK(expected.back() == after.back());
}

TEST_CASE("journal: a torn tail or a bad checksum stops the replay there; the rest is kept aside") {
    temp_dir d;

    {
        auto j = journal::open(d.path);
        REQUIRE(j);
        for (int i = 0; i < 3; ++i)
            (*j)->append({"good " + std::to_string(i), {}});
        (*j)->drain();
    }
    const std::string seg = journal::segment_path(d.path, 1);
    const auto good_size = fs::file_size(seg);
    SUBCASE("torn: a header promising more than follows") {
        std::ofstream(seg, std::ios::app | std::ios::binary)
            << std::string("FLJ1\x10\x27\0\0", 8) << "12345678"
            << "short";
    }
    SUBCASE("corrupt: a flipped byte in the last record") {
        std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(good_size) - 1);
        f.put('X');
    }
    journal::replay_report report;
    const auto seen = replay_all(d.path, 0, &report);
    CHECK(seen.size() >= 2u); // everything before the damage
    CHECK(seen.front() == "good 0");
    REQUIRE(1u == report.kept_aside.size());
    CHECK(fs::exists(report.kept_aside[0]));
    CHECK_FALSE(report.problems.empty());
    // The segment was cut at the damage: a second replay finds nothing wrong.
    journal::replay_report again;
    CHECK(seen == replay_all(d.path, 0, &again));
    CHECK(again.kept_aside.empty());
}

TEST_CASE("journal: start_segment is a mark: the records before it go to the old segment, the later "
          "ones to the new; replay from it skips the older ones; remove_before deletes them") {
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    CHECK(1u == (*j)->segment());
    // No drain before the mark: the queue decides where each record goes.
    (*j)->append({"before", {}});
    auto next = (*j)->start_segment();
    CHECK(2u == next.number);
    (*j)->append({"after", {}});
    CHECK(next.opened.get());
    (*j)->drain();
    CHECK(2u == (*j)->segment());
    CHECK(std::vector<std::string>{"after"} == replay_all(d.path, next.number));
    CHECK(std::vector<std::string>{"before", "after"} == replay_all(d.path, 0));
    (*j)->remove_before(next.number);
    CHECK(std::vector<std::uint64_t>{2} == journal::segments(d.path));
    // A reopened journal writes after every existing segment...
    j->reset();
    auto k = journal::open(d.path);
    REQUIRE(k);
    CHECK(3u == (*k)->segment());
    // ...and never below the segment a snapshot replays from (a mark the crashed writer had not
    // reached yet names a segment that does not exist).
    k->reset();
    auto m = journal::open(d.path, 7);
    REQUIRE(m);
    CHECK(7u == (*m)->segment());
    CHECK(8u == (*m)->start_segment().number);
}

namespace {
/// Completion outcomes, in the order they came.
struct outcomes {
    std::mutex m;
    std::vector<std::pair<std::string, bool>> seen;
    std::function<void(bool)> note(std::string what) {
        return [this, what](bool ok) {
            std::lock_guard l(m);
            seen.emplace_back(what, ok);
        };
    }
};
} // namespace

TEST_CASE("journal: a new segment that cannot be opened answers its mark false and keeps the later "
          "records in the current segment, acknowledged; the next mark opens its own") {
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    // A directory where segment 2 would be: opening it for writing fails.
    fs::create_directories(journal::segment_path(d.path, 2));
    outcomes o;
    (*j)->append({"before", o.note("before")});
    auto refused = (*j)->start_segment();
    CHECK(2u == refused.number);
    (*j)->append({"kept", o.note("kept")});
    CHECK_FALSE(refused.opened.get()); // no snapshot may name segment 2
    (*j)->drain();
    CHECK(1u == (*j)->segment());
    CHECK(0u == (*j)->failures());
    auto next = (*j)->start_segment();
    CHECK(3u == next.number);
    (*j)->append({"after", o.note("after")});
    CHECK(next.opened.get());
    (*j)->drain();
    CHECK(3u == (*j)->segment());
    CHECK(std::vector<std::pair<std::string, bool>>{{"before", true}, {"kept", true}, {"after", true}} ==
          o.seen);
    // The last snapshot written still names segment 1 (or none): its replay finds all three; a
    // snapshot of the state at the second mark replays segment 3 only.
    CHECK(std::vector<std::string>{"before", "kept", "after"} == replay_all(d.path, 0));
    CHECK(std::vector<std::string>{"after"} == replay_all(d.path, 3));
}

TEST_CASE("journal: after a failed write the next group goes to a fresh segment, never after a torn "
          "record; the failed records and the marks of their group answer false") {
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    outcomes o;
    (*j)->append({"first", o.note("first")});
    (*j)->drain();
    journal_test_access::fail_next_write(**j);
    (*j)->append({"lost", o.note("lost")});
    auto mark = (*j)->start_segment();
    (*j)->drain();
    // The mark answers false when it shared the failed group; when the writer reached it in a
    // later group, that group already went to a fresh segment above it.
    const bool opened = mark.opened.get();
    CHECK(1u == (*j)->failures());
    (*j)->append({"second", o.note("second")});
    (*j)->drain();
    CHECK((*j)->segment() > 1u); // "second" is not after the torn bytes
    if (opened) CHECK((*j)->segment() >= mark.number);
    CHECK(std::vector<std::pair<std::string, bool>>{{"first", true}, {"lost", false}, {"second", true}} ==
          o.seen);
    CHECK(std::vector<std::string>{"first", "second"} == replay_all(d.path, 0));
}

TEST_CASE("journal: a write cut short by the disk (a file size limit) is cut from the segment: the replay "
          "finds the records answered true and nothing of the one answered false") {
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    outcomes o;
    (*j)->append({"first", o.note("first")});
    (*j)->drain();
    const auto good = fs::file_size(journal::segment_path(d.path, 1));
    {
        // The process may write 10 bytes more to any file: the next record is written in part,
        // then write(2) fails with EFBIG (SIGXFSZ ignored, as faultline serve does).
        faultline::test::file_size_limit limit(good + 10);
        (*j)->append({std::string(1000, 'x'), o.note("cut")});
        (*j)->drain();
    }
    CHECK(1u == (*j)->failures());
    CHECK(0u == (*j)->cut_failures());
    CHECK(good == fs::file_size(journal::segment_path(d.path, 1))); // the partial record is gone
    (*j)->append({"second", o.note("second")});
    (*j)->drain();
    CHECK(std::vector<std::pair<std::string, bool>>{{"first", true}, {"cut", false}, {"second", true}} ==
          o.seen);
    journal::replay_report report;
    CHECK(std::vector<std::string>{"first", "second"} == replay_all(d.path, 0, &report));
    CHECK(report.kept_aside.empty()); // no torn tail: nothing to keep aside
    CHECK(report.problems.empty());
}

TEST_CASE("journal: a delivery record round-trips; a damaged record is refused, never read past its end") {
    using namespace faultline::core::pipeline;
    delivery dv;
    dv.kind = delivery_kind::webhook;
    dv.source = "webhook:gh";
    dv.now_ms = 1764201600123;
    dv.body = R"({"message":"ERROR x"})";
    auto w = std::make_shared<faultline::core::decode::webhook_options>();
    w->message_fields = {"commits.0.message", "message"};
    w->group = "gh";
    w->text = true;
    dv.webhook = w;
    const std::string rec = journal_record(dv);
    // What a worker journals: the head, then the body moved in after it.
    CHECK(journal_record_head(dv) + dv.body == rec);
    auto back = parse_journal_record(rec);
    REQUIRE(back);
    CHECK(back->kind == delivery_kind::webhook);
    CHECK(back->source == "webhook:gh");
    CHECK(back->now_ms == 1764201600123);
    CHECK(back->body == dv.body);
    CHECK(back->body.capacity() >= back->body.size() + faultline::core::decode::json_padding);
    REQUIRE(back->webhook);
    CHECK(back->webhook->message_fields == w->message_fields);
    CHECK(back->webhook->group == "gh");
    CHECK(back->webhook->text);
    CHECK_FALSE(back->webhook->gzipped);
    // Every truncation, and a trailing byte, is refused.
    for (std::size_t n = 0; n < rec.size(); ++n)
        CHECK_FALSE(parse_journal_record(std::string_view(rec).substr(0, n)));
    CHECK_FALSE(parse_journal_record(rec + "x"));
    // The dedupe key travels with the record (version 2 on); records of versions 1 and 2 still read.
    {
        delivery keyed = dv;
        keyed.dedupe_key = "webhook:gh\nabc-123";
        auto k = parse_journal_record(journal_record(keyed));
        REQUIRE(k);
        CHECK(k->dedupe_key == "webhook:gh\nabc-123");
        CHECK(k->body == dv.body);
        CHECK(back->dedupe_key.empty());
        // A delivery without OTLP options is written as version 2; version 3 (an OTLP flag before
        // the key: 8 zero bytes for "none") and version 1 (no key: 8 zero bytes for "" before the
        // body) are read too.
        REQUIRE(rec.starts_with("faultline-delivery-2"));
        const std::size_t key_at = rec.size() - dv.body.size() - 8 - 8;
        std::string v3 = rec.substr(0, key_at) + std::string(8, '\0') + rec.substr(key_at);
        v3[19] = '3';
        auto three = parse_journal_record(v3);
        REQUIRE(three);
        CHECK(three->body == dv.body);
        CHECK_FALSE(three->otlp);
        std::string v1 = rec.substr(0, key_at) + rec.substr(key_at + 8);
        v1[19] = '1';
        auto old = parse_journal_record(v1);
        REQUIRE(old);
        CHECK(old->body == dv.body);
        CHECK(old->source == "webhook:gh");
        CHECK(old->dedupe_key.empty());
        v1[19] = '2';
        CHECK_FALSE(parse_journal_record(v1));
    }
    // An arrival time before 1970 or after 9999 is damage (found by the journal fuzz target: a
    // negative time indexed the template's per-minute counts at -1).
    for (const std::int64_t t :
         {std::int64_t{-1}, std::int64_t{-60'000'000}, std::int64_t{253'402'300'800'001}}) {
        CAPTURE(t);
        delivery bad = dv;
        bad.now_ms = t;
        CHECK_FALSE(parse_journal_record(journal_record(bad)));
    }
}

TEST_CASE("template details: minutes before 1970 land in a slot of their own, never outside") {
    faultline::core::aggregate::template_details d;
    d.minute_seen = -100;
    d.count_minute(-3'540'000, 3); // minute -59
    d.count_minute(-1, 2);         // minute 0 (integer division), later
    CHECK(d.rate(0, 15) > 0);
    std::uint64_t sum = 0;
    for (const auto m : d.minutes)
        sum += m;
    CHECK(sum == 2); // the older minute was cleared by the newer one's sweep (more than 16 apart)
}

TEST_CASE("journal: an OTLP delivery's record keeps how to read it; without its options it is refused") {
    using namespace faultline::core::pipeline;
    delivery dv;
    dv.kind = delivery_kind::otlp;
    dv.source = "otlp";
    dv.now_ms = 1764201600123;
    dv.body = std::string("\x0a\x00", 2);
    auto o = std::make_shared<faultline::core::decode::otlp_options>();
    o->json = false;
    o->gzipped = true;
    o->group_attributes = {"k8s.pod.name"};
    o->group = "pods";
    o->message_fields = {"event"};
    dv.otlp = o;
    const std::string rec = journal_record(dv);
    auto back = parse_journal_record(rec);
    REQUIRE(back);
    CHECK(back->kind == delivery_kind::otlp);
    REQUIRE(back->otlp);
    CHECK_FALSE(back->otlp->json);
    CHECK(back->otlp->gzipped);
    CHECK(back->otlp->group_attributes == o->group_attributes);
    CHECK(back->otlp->group == "pods");
    CHECK(back->otlp->message_fields == o->message_fields);
    CHECK(back->body == dv.body);
    for (std::size_t n = 0; n < rec.size(); ++n)
        CHECK_FALSE(parse_journal_record(std::string_view(rec).substr(0, n)));
    delivery bare = dv;
    bare.otlp.reset();
    CHECK_FALSE(parse_journal_record(journal_record(bare))); // an OTLP kind needs its options
}

TEST_CASE("journal: a delivery_job calls `journaled` after committing its batch, before the verdict; "
          "without a journal, never") {
    using namespace faultline::core::pipeline;
    auto patterns = faultline::test::compile_patterns("err\terror\tERROR\n");
    auto make = [] {
        delivery dv;
        dv.kind = delivery_kind::webhook;
        dv.source = "webhook:gh";
        dv.now_ms = 1764201600123;
        dv.body = "{\"message\":\"ERROR x\"}\n{\"message\":\"ERROR y\"}";
        dv.body.reserve(dv.body.size() + faultline::core::decode::json_padding);
        auto w = std::make_shared<faultline::core::decode::webhook_options>();
        w->group = "gh";
        dv.webhook = w;
        dv.dedupe_key = "webhook:gh\nid-1";
        return dv;
    };
    for (const bool with_journal : {true, false}) {
        CAPTURE(with_journal);
        temp_dir d;
        auto j = journal::open(d.path);
        REQUIRE(j);
        pipeline_options o;
        o.workers = 1;
        if (with_journal) o.journal = j->get();
        pipeline p(patterns, o);
        std::atomic<int> order{0};
        std::atomic<int> journaled_at{-1}, done_at{-1};
        std::atomic<bool> counted{false};
        std::promise<void> finished;
        p.submit(std::make_unique<delivery_job>(
            make(),
            [&](delivery_result r) {
                counted = !r.failure && r.events == 2;
                done_at = order++;
                finished.set_value();
            },
            &p, [&] { journaled_at = order++; }));
        REQUIRE(finished.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        CHECK(counted);
        if (with_journal) {
            CHECK(journaled_at == 0);
            CHECK(done_at == 1);
        } else {
            CHECK(journaled_at == -1);
        }
        p.stop();
        CHECK(p.view().totals.events == 2);
    }
}

namespace {
/// A webhook delivery of two error events, "ERROR <text> 1" and "ERROR <text> 2".
faultline::core::pipeline::delivery two_error_events(const std::string& text) {
    using namespace faultline::core::pipeline;
    delivery dv;
    dv.kind = delivery_kind::webhook;
    dv.source = "webhook:gh";
    dv.now_ms = 1764201600123;
    dv.body = "{\"message\":\"ERROR " + text + " 1\"}\n{\"message\":\"ERROR " + text + " 2\"}";
    dv.body.reserve(dv.body.size() + faultline::core::decode::json_padding);
    dv.webhook = std::make_shared<faultline::core::decode::webhook_options>();
    return dv;
}
} // namespace

TEST_CASE("journal: after a failed write, pipeline::rebuild drops what is only in memory and reads the disk "
          "again: the counts equal the deliveries answered true, the miner's new-template total goes on") {
    using namespace faultline::core::pipeline;
    auto patterns = faultline::test::compile_patterns("err\terror\tERROR\n");
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    pipeline_options o;
    o.workers = 1;
    o.journal = j->get();
    faultline::core::mine::miner_options m;
    o.mining = m;
    pipeline p(patterns, o);
    auto deliver = [&](const std::string& text) {
        std::promise<bool> verdict;
        p.submit(std::make_unique<delivery_job>(
            two_error_events(text),
            [&](delivery_result r) { verdict.set_value(!r.failure && r.events == 2); }, &p));
        auto f = verdict.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        return f.get();
    };
    CHECK(deliver("kept one"));
    journal_test_access::fail_next_write(**j);
    CHECK_FALSE(deliver("refused two"));
    CHECK(1u == (*j)->failures());
    // Answered false, yet counted in memory: a retry would count it twice, a restart would not
    // find it (the counter would go down).
    CHECK(p.view().totals.events == 4);
    const std::uint64_t new_before = p.miner()->new_total();
    CHECK(new_before >= 2);
    journal::replay_report report;
    p.rebuild(
        [&] { report = journal::replay(d.path, 0, [&](std::string_view r) { return p.replay_record(r); }); });
    CHECK(report.records == 1);
    auto v = p.view();
    CHECK(v.totals.events == 2);
    CHECK(v.totals.templates.size() == 1); // "refused two" is gone from the templates too
    CHECK(p.miner()->new_total() == new_before);
    // It goes on (the writer is in a fresh segment): the retry is counted once.
    CHECK(deliver("refused two"));
    CHECK(p.view().totals.events == 4);
    p.stop();
    pipeline_options replaying = o;
    replaying.journal = nullptr;
    pipeline again(patterns, replaying);
    journal::replay(d.path, 0, [&](std::string_view r) { return again.replay_record(r); });
    CHECK(again.view().totals.events == 4);
}

TEST_CASE("journal: a durable verdict waits for the worker's commit: whoever is answered reads the counts "
          "back, even when the journal writes faster than the worker commits") {
    using namespace faultline::core::pipeline;
    auto patterns = faultline::test::compile_patterns("err\terror\tERROR\n");
    temp_dir d;
    auto j = journal::open(d.path);
    REQUIRE(j);
    for (const bool write_fails : {false, true}) {
        CAPTURE(write_fails);
        std::promise<delivery_result> verdict;
        const std::shared_future<delivery_result> answered = verdict.get_future().share();
        std::atomic<bool> answered_during_commit{false};
        std::promise<void> commit_held;
        std::atomic<bool> committing{false};
        pipeline_options o;
        o.workers = 1;
        o.journal = j->get();
        o.mining = faultline::core::mine::miner_options{};
        // Called inside the worker's commit, after the record was queued: the journal has time to
        // write it (or fail) while the commit is held here.
        o.on_assignments = [&, answered](std::span<const std::uint64_t>) {
            committing = true;
            answered_during_commit =
                answered.wait_for(std::chrono::milliseconds(300)) == std::future_status::ready;
            commit_held.set_value();
        };
        pipeline p(patterns, o);
        if (write_fails) journal_test_access::fail_next_write(**j);
        p.submit(std::make_unique<delivery_job>(
            two_error_events("a"), [&](delivery_result r) { verdict.set_value(std::move(r)); }, &p));
        REQUIRE(answered.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        const delivery_result r = answered.get();
        CHECK(p.view().totals.events == 2); // read right after the verdict: this delivery's two events
        REQUIRE(commit_held.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        CHECK(committing);
        CHECK_FALSE(answered_during_commit);
        CHECK(static_cast<bool>(r.failure) == write_fails);
        p.stop();
    }
}
