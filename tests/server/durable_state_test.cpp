// durable_state (server/src/durable_state.cpp): the state directory of a running service, without
// a server: a pipeline with its journal, deliveries as the workers commit them, "crashes" (the
// objects dropped without a snapshot) and restarts (new objects on the same directory).
#include "faultline/server/durable_state.hpp"

#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/pipeline/delivery.hpp"

#include "../support/file_size_limit.hpp"
#include "../support/helpers.hpp"
#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include <unistd.h>

using faultline::core::aggregate::journal;
using faultline::core::pipeline::delivery;
using faultline::core::pipeline::delivery_job;
using faultline::core::pipeline::delivery_kind;
using faultline::core::pipeline::delivery_result;
using faultline::core::pipeline::pipeline;
using faultline::core::pipeline::pipeline_options;
using faultline::server::dedupe_cache;
using faultline::server::durable_state;
using faultline::test::temp_dir;
namespace fs = std::filesystem;

namespace {

/// One process's worth: a pipeline (mining), its dedupe table and its state directory, loaded.
struct process {
    dedupe_cache dedupe{1000, std::chrono::seconds(3600)};
    std::unique_ptr<pipeline> pipe;
    std::unique_ptr<durable_state> state;
    explicit process(const std::string& dir) {
        pipeline_options o;
        o.workers = 1;
        o.mining = faultline::core::mine::miner_options{};
        pipe = std::make_unique<pipeline>(faultline::test::compile_patterns("err\terror\tERROR\n"), o);
        state = std::make_unique<durable_state>(dir, *pipe, dedupe, nullptr, std::chrono::seconds(30));
        state->load();
    }
    ~process() {
        // As kill -9 leaves it: no snapshot; only the writer's queue is let finish.
        pipe->stop();
        state.reset();
    }
    /// Two events; true when answered as counted (the journal has the record).
    bool deliver(const std::string& text, const std::string& id = {}) {
        delivery d;
        d.kind = delivery_kind::webhook;
        d.source = "webhook:default";
        d.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count(); // acknowledged now: within the dedupe TTL at the restart
        d.body = "{\"message\":\"ERROR " + text + " 1\"}\n{\"message\":\"ERROR " + text + " 2\"}";
        d.body.reserve(d.body.size() + faultline::core::decode::json_padding);
        d.webhook = std::make_shared<faultline::core::decode::webhook_options>();
        d.dedupe_key = id;
        std::promise<bool> verdict;
        pipe->submit(std::make_unique<delivery_job>(
            std::move(d), [&](delivery_result r) { verdict.set_value(!r.failure && r.events == 2); },
            pipe.get()));
        auto f = verdict.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        return f.get();
    }
    /// What a view shows: the events counted, once durable (nullopt: not shown now).
    std::optional<std::string> events() const {
        return state->read([&] { return std::to_string(pipe->view().totals.events); });
    }
};

std::string newest_segment(const std::string& dir) {
    const auto all = journal::segments(dir);
    REQUIRE_FALSE(all.empty());
    return journal::segment_path(dir, all.back());
}

} // namespace

TEST_CASE("durable_state: an unreadable state.json and a torn journal tail are kept aside; the start goes on "
          "with every record before the damage") {
    temp_dir d;
    {
        process p(d.path);
        CHECK(p.deliver("one"));
        CHECK(p.deliver("two"));
        CHECK(p.state->save()); // state.json holds both; the journal starts a new segment
        CHECK(p.deliver("three", "webhook:default\nid-3"));
    } // crash: "three" is only in the journal
    {
        std::ofstream(d.path + "/state.json", std::ios::trunc) << "{\"version\": 1, \"events\": \"many\"";
        std::ofstream(newest_segment(d.path), std::ios::app | std::ios::binary)
            << std::string("FLJ1\x88\x13", 6);
    }
    process again(d.path);
    // The snapshot is gone (kept aside): its segments were removed when it was written, so only
    // "three" comes back, from the journal.
    CHECK(again.events() == std::optional<std::string>("2"));
    CHECK(again.state->damaged_tails() == 1);
    std::size_t kept = 0;
    for (const auto& e : fs::directory_iterator(d.path))
        kept += e.path().filename().string().find(".corrupt-") != std::string::npos;
    CHECK(kept == 2); // state.json.corrupt-<ms> and journal-<n>.log.corrupt-<ms>
    // The journal's delivery id is known again: a redelivery would be answered without counting.
    const auto ids = again.dedupe.acknowledged();
    CHECK(std::any_of(ids.begin(), ids.end(),
                      [](const auto& e) { return e.first == "webhook:default\nid-3"; }));
}

TEST_CASE(
    "durable_state: after a failed journal write nothing is shown or saved until the counts are rebuilt "
    "from the disk; then they equal the deliveries answered true, before and after a restart") {
    temp_dir d;
    {
        process p(d.path);
        CHECK(p.deliver("kept"));
        CHECK(p.events() == std::optional<std::string>("2"));
        CHECK_FALSE(p.state->failed());
        CHECK_FALSE(p.state->rebuild_after_failure()); // nothing failed: nothing done
        {
            // The disk takes 10 bytes more: the next record is written in part, then EFBIG.
            faultline::test::file_size_limit limit(fs::file_size(newest_segment(d.path)) + 10);
            CHECK_FALSE(p.deliver("refused"));
        }
        CHECK(p.state->failed());
        CHECK(p.events() == std::nullopt); // memory holds "refused": not shown
        CHECK_FALSE(p.state->save());      // nor saved
        CHECK(p.state->rebuild_after_failure());
        CHECK_FALSE(p.state->failed());
        CHECK(p.state->rebuilds() == 1);
        CHECK(p.events() == std::optional<std::string>("2"));
        CHECK(p.deliver("refused")); // the sender's retry: counted once
        CHECK(p.events() == std::optional<std::string>("4"));
        CHECK(p.state->save());
        CHECK(p.deliver("after the snapshot"));
    }
    process again(d.path);
    CHECK(again.events() == std::optional<std::string>("6"));
    CHECK(again.state->damaged_tails() == 0); // the failed write left nothing behind
}

TEST_CASE("durable_state: without a state directory nothing is read or written and the views show memory") {
    temp_dir d;
    dedupe_cache dedupe{10, std::chrono::seconds(60)};
    pipeline_options o;
    o.workers = 1;
    pipeline pipe(faultline::test::compile_patterns("err\terror\tERROR\n"), o);
    durable_state state("", pipe, dedupe, nullptr, std::chrono::seconds(30));
    state.load();
    CHECK(state.journal() == nullptr);
    CHECK(state.save());
    CHECK(state.read([] { return std::string("shown"); }) == std::optional<std::string>("shown"));
    CHECK_FALSE(fs::exists(d.path));
}
