// template_miner: new templates judged elsewhere (the replicas' shared store): counted and
// announced only when first everywhere, their mark cleared when another replica had them first.
#include "faultline/core/mine/template_miner.hpp"

#include <doctest/doctest.h>

#include <cstdint>

#include <map>
#include <string>
#include <vector>

using faultline::core::aggregate::string_map;
using faultline::core::aggregate::template_stats;
using faultline::core::mine::miner_options;
using faultline::core::mine::template_miner;

namespace {

void mine(template_miner& m, std::initializer_list<const char*> lines, std::int64_t now_ms) {
    string_map<template_stats> batch;
    for (const char* l : lines)
        batch[l].count += 1;
    m.add(batch, now_ms);
}

std::map<std::string, bool> new_marks(const template_miner& m) {
    string_map<template_stats> all;
    m.snapshot(all);
    std::map<std::string, bool> out;
    for (const auto& [text, st] : all)
        out[text] = st.details && st.details->is_new;
    return out;
}

} // namespace

TEST_CASE("template_miner: a judge decides whether a new template is new everywhere") {
    miner_options o;
    o.warmup_ms = 1000;
    template_miner m(o, 0);
    std::vector<std::pair<std::string, template_miner::verdict_fn>> asked;
    m.judge_new([&](const std::string& text, template_miner::verdict_fn v) {
        asked.emplace_back(text, std::move(v));
    });
    std::vector<std::string> announced;
    m.on_new([&](const std::string& text) { announced.push_back(text); });

    mine(m, {"disk full on sda"}, 500); // in the warm-up: not new, nobody asked
    CHECK(asked.empty());
    mine(m, {"connection refused by db", "timeout calling payments"}, 2000);
    REQUIRE(asked.size() == 2);
    // Until the verdicts, they show as new here but are neither counted nor announced.
    CHECK(m.new_total() == 0);
    CHECK(announced.empty());
    CHECK(new_marks(m)["connection refused by db"]);

    for (auto& [text, verdict] : asked)
        verdict(text == "connection refused by db"); // first here; the other replica had "timeout ..."
    CHECK(m.new_total() == 1);
    CHECK(announced == std::vector<std::string>{"connection refused by db"});
    const auto marks = new_marks(m);
    CHECK(marks.at("connection refused by db"));
    CHECK_FALSE(marks.at("timeout calling payments"));
    CHECK_FALSE(marks.at("disk full on sda"));
}

TEST_CASE("template_miner: without a judge, new templates count at once") {
    miner_options o;
    o.warmup_ms = 1000;
    template_miner m(o, 0);
    mine(m, {"connection refused by db"}, 2000);
    CHECK(m.new_total() == 1);
    CHECK(new_marks(m)["connection refused by db"]);
}

TEST_CASE(
    "template_miner: a batch it consumed is emptied for reuse; only what is counted again is mined again") {
    template_miner m(miner_options{}, 0);
    string_map<template_stats> batch;
    batch["disk full on <NUM>"].count = 3;
    batch["connection reset by peer"].count = 2;
    m.add(batch, 1000);
    REQUIRE(batch.size() == 2); // kept, at 0: the next batch fills them without allocating
    for (const auto& [text, st] : batch)
        CHECK(st.count == 0);
    batch["disk full on <NUM>"].count = 1;
    m.add(batch, 2000);
    string_map<template_stats> all;
    m.snapshot(all);
    std::uint64_t disk = 0, reset = 0;
    for (const auto& [text, st] : all)
        (text.starts_with("disk") ? disk : reset) += st.count;
    CHECK(disk == 4);
    CHECK(reset == 2); // not mined a second time from its emptied entry
    // A batch of only emptied entries adds nothing.
    m.add(batch, 3000);
    all.clear();
    m.snapshot(all);
    std::uint64_t total = 0;
    for (const auto& [text, st] : all)
        total += st.count;
    CHECK(total == 6);
}

TEST_CASE("template_miner: its shards mine as one tree would (lines of one length and first token meet)") {
    // Lines that Drain's tree would compare (the same number of tokens, capped at max_tokens,
    // and the same first token, a variable one as <*>) must meet in one shard.
    miner_options o;
    o.drain.max_tokens = 6;
    std::vector<std::string> lines;
    for (int i = 0; i < 40; ++i) {
        const std::string n = std::to_string(i);
        lines.push_back("user " + n + " failed to log in");
        lines.push_back("<NUM> retries left for job " + n);
        lines.push_back(n + "abc retries left for job x");
        lines.push_back("disk full on volume " + n + " a b c d e f g h"); // past the token cap
        lines.push_back("disk full on volume " + n + " z");
        lines.push_back("trailing space " + n + " ");
        lines.push_back("double  space " + n);
        lines.push_back("x");
    }
    auto templates = [&](std::size_t shards) {
        miner_options with = o;
        with.shards = shards;
        template_miner m(with, 0);
        for (std::size_t at = 0; at < lines.size(); at += 16) {
            string_map<template_stats> batch;
            for (std::size_t i = at; i < lines.size() && i < at + 16; ++i)
                batch[lines[i]].count += 1;
            m.add(batch, 1000);
        }
        string_map<template_stats> all;
        m.snapshot(all);
        std::map<std::string, std::uint64_t> out;
        for (const auto& [text, st] : all)
            out[text] += st.count;
        return out;
    };
    const auto one = templates(1);
    CHECK(one.size() < lines.size() / 4); // the lines did generalize
    CHECK(templates(16) == one);
    CHECK(templates(7) == one);
}

TEST_CASE("template_miner: a batch's details in its array are mined as its entries' own would be") {
    // One batch, two ways: its details in the batch's array (as the analyzer leaves them), and
    // settled into its entries first. Three lines that generalize into one template, a second
    // batch two minutes later merging into the templates the first made.
    using faultline::core::aggregate::counts;
    const std::string g1 = "/aws/lambda/a", g2 = "/aws/lambda/b";
    const auto fill = [&](counts& batch, std::int64_t now_ms, int round) {
        batch.restart(counts::recycled_templates);
        batch.open_details.now_ms = now_ms;
        const std::uint32_t timeout[] = {0}, both[] = {0, 1};
        for (int i = 0; i < 6; ++i) {
            const std::string line = "ERROR upstream " + std::to_string(i % 3 + round) + "x refused";
            auto& st = batch.templates[line];
            const std::span<const std::uint32_t> ids =
                i == 4 ? std::span<const std::uint32_t>(both) : std::span<const std::uint32_t>(timeout);
            const std::string* group = i < 3 ? &g1 : &g2;
            if (st.count == 0)
                st.batch_slot =
                    batch.open_details.first("ERROR upstream " + std::to_string(i) + " refused", ids, group);
            else
                batch.open_details.again(st.batch_slot, ids, group);
            ++st.count;
        }
    };
    template_miner from_array({}, 0), from_entries({}, 0);
    counts a(2), b(2);
    for (int round = 0; round < 2; ++round) {
        const std::int64_t now = 60'000 + round * 120'000;
        fill(a, now, round);
        fill(b, now, round);
        from_array.add(a.templates, now, nullptr, &a.open_details);
        b.settle_details();
        from_entries.add(b.templates, now);
    }
    string_map<template_stats> got, want;
    from_array.snapshot(got);
    from_entries.snapshot(want);
    REQUIRE(got.size() == want.size());
    REQUIRE(!got.empty());
    std::uint64_t events = 0;
    for (const auto& [text, w] : want) {
        const std::string& name = text; // a structured binding is not captured (clang)
        CAPTURE(name);
        REQUIRE(got.count(text));
        const auto& g = got.at(text);
        CHECK(g.count == w.count);
        events += w.count;
        REQUIRE(g.details);
        REQUIRE(w.details);
        CHECK(g.details->sample == w.details->sample);
        CHECK(g.details->first_seen_ms == w.details->first_seen_ms);
        CHECK(g.details->last_seen_ms == w.details->last_seen_ms);
        CHECK(g.details->patterns == w.details->patterns);
        CHECK(g.details->groups == w.details->groups);
        CHECK(g.details->minutes == w.details->minutes);
        CHECK(g.details->previous_texts == w.details->previous_texts);
    }
    CHECK(events == 12);
    const auto& one = got.begin()->second.details;
    CHECK(one->first_seen_ms == 60'000);
    CHECK(one->last_seen_ms == 180'000);
}
