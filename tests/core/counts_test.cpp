#include "faultline/core/aggregate/counts.hpp"

#include <doctest/doctest.h>

#include <span>
#include <string>
#include <vector>

using faultline::core::aggregate::finish_pick;
using faultline::core::aggregate::pick_templates;
using faultline::core::aggregate::picked_template;
using faultline::core::aggregate::string_map;
using faultline::core::aggregate::template_pick;
using faultline::core::aggregate::template_picker;
using faultline::core::aggregate::template_stats;

namespace {

template_stats stats_of(std::uint64_t count, std::int64_t last_seen_ms, std::string group) {
    template_stats s;
    s.add(group, {}, "a sample", last_seen_ms);
    s.count = count;
    return s;
}

/// Three templates: d (1 event, last seen 400, g1), b (5, 100, g2), a (5, 200, g1).
string_map<template_stats> three_templates() {
    string_map<template_stats> table;
    table.emplace("d", stats_of(1, 400, "g1"));
    table.emplace("b", stats_of(5, 100, "g2"));
    table.emplace("a", stats_of(5, 200, "g1"));
    return table;
}

std::vector<std::string> texts(const std::vector<picked_template>& picked) {
    std::vector<std::string> out;
    for (const auto& p : picked)
        out.push_back(p.text);
    return out;
}

} // namespace

TEST_CASE("counts: a pick keeps the largest counts, ties by text, at most limit, with their stats") {
    auto table = three_templates();
    table.emplace("c", stats_of(9, 300, "g2"));
    template_pick pick;
    pick.limit = 3;
    const auto top = pick_templates(table, pick);
    CHECK(texts(top) == std::vector<std::string>{"c", "a", "b"});
    CHECK(top[0].stats.count == 9u);
    REQUIRE(top[0].stats.details);
    CHECK(top[0].stats.details->groups.front().first == "g2");

    pick.limit = 10; // more than there are: all of them
    CHECK(texts(pick_templates(table, pick)) == std::vector<std::string>{"c", "a", "b", "d"});
    pick.limit = 0;
    CHECK(pick_templates(table, pick).empty());
}

TEST_CASE("counts: a pick filters with keep and ranks by key") {
    const auto table = three_templates();
    template_pick pick;
    pick.key = [](const template_stats& s) { return s.last_seen_ms(); };
    CHECK(texts(pick_templates(table, pick)) == std::vector<std::string>{"d", "a", "b"});
    pick.keep = [](const template_stats& s) { return s.details && s.details->groups.front().first == "g1"; };
    CHECK(texts(pick_templates(table, pick)) == std::vector<std::string>{"d", "a"});
    pick.keep = [](const template_stats&) { return false; };
    CHECK(pick_templates(table, pick).empty());
}

TEST_CASE("counts: picks of several owners merge into one ranking; tags name what was copied") {
    string_map<template_stats> first, second;
    first.emplace("x", stats_of(3, 0, "g"));
    first.emplace("y", stats_of(8, 0, "g"));
    first.emplace("z", stats_of(1, 0, "g"));
    second.emplace("p", stats_of(5, 0, "g"));
    second.emplace("q", stats_of(2, 0, "g"));
    template_pick pick;
    pick.limit = 2;
    template_picker picker(pick);
    std::vector<picked_template> out;
    std::vector<std::size_t> tags;
    std::vector<std::string> given; // tag -> text
    for (const auto& [text, s] : first) {
        picker.consider(text, s, given.size());
        given.push_back(text);
    }
    CHECK(picker.copy_into(out, &tags) == 2u);
    CHECK(texts(out) == std::vector<std::string>{"y", "x"});
    REQUIRE(tags.size() == 2u);
    CHECK(given.at(tags[0]) == "y"); // each tag is the one given with the copied template
    CHECK(given.at(tags[1]) == "x");
    for (const auto& [text, s] : second)
        picker.consider(text, s);
    CHECK(picker.copy_into(out) == 2u); // the second owner's own best two
    CHECK(out.size() == 4u);
    finish_pick(out, pick);
    CHECK(texts(out) == std::vector<std::string>{"y", "p"});
}

TEST_CASE("counts: a batch's template entries are recycled between batches and never count twice") {
    using faultline::core::aggregate::counts;
    const std::uint32_t timeout_id = 0;
    counts batch(1), totals(1);
    auto count = [&](const char* text, const char* group, std::int64_t now_ms) {
        batch.templates[text].add(group, std::span<const std::uint32_t>(&timeout_id, 1), text, now_ms);
        ++batch.events;
    };
    count("Task timed out", "/aws/lambda/a-function-with-a-long-name", 60'000);
    count("Task timed out", "/aws/lambda/b-function-with-a-long-name", 60'000);
    count("OOM", "/aws/lambda/a-function-with-a-long-name", 60'000);
    totals.merge(batch);
    // The next batch: the entries stay, emptied (count 0: nothing), with their storage.
    batch.restart(counts::recycled_templates);
    CHECK(batch.events == 0);
    REQUIRE(batch.templates.size() == 2);
    const auto& kept = batch.templates.at("Task timed out");
    CHECK(kept.count == 0); // it stands for nothing
    REQUIRE(kept.details);  // its storage kept
    const std::string* const kept_groups = &kept.details->groups[0].first;
    // Only what this batch counts is merged; a recycled entry adds nothing.
    {
        counts none(1);
        none.merge(batch);
        CHECK(none.templates.empty());
    }
    count("Task timed out", "/aws/lambda/c-function-with-a-long-name", 120'000);
    totals.merge(batch);
    CHECK(totals.templates.at("Task timed out").count == 3);
    CHECK(totals.templates.at("OOM").count == 1);
    const auto& t = *totals.templates.at("Task timed out").details;
    CHECK(t.first_seen_ms == 60'000);
    CHECK(t.last_seen_ms == 120'000);
    CHECK(t.groups.size() == 3);
    for (const auto& [g, n] : t.groups)
        CHECK(n == 1);
    // The reused entry holds only this batch's event: nothing of the two groups, the minute or
    // the first event of the batch before.
    const auto& reused = *batch.templates.at("Task timed out").details;
    CHECK(reused.first_seen_ms == 120'000); // its first event in this batch
    CHECK(reused.last_seen_ms == 120'000);
    CHECK(reused.sample == "Task timed out");
    REQUIRE(reused.groups.size() == 1);
    CHECK(&reused.groups[0].first == kept_groups); // a recycled slot
    CHECK(reused.groups[0].first == "/aws/lambda/c-function-with-a-long-name");
    CHECK(reused.groups[0].second == 1);
    CHECK(reused.patterns == std::vector<std::uint32_t>{timeout_id});
    CHECK(reused.in_minute(1) == 0);
    CHECK(reused.in_minute(2) == 1);
    // A template new to the totals, from a recycled entry: only what this batch counted.
    counts fresh(1);
    fresh.merge(batch);
    REQUIRE(fresh.templates.count("Task timed out"));
    CHECK_FALSE(fresh.templates.count("OOM"));
    const auto& f = *fresh.templates.at("Task timed out").details;
    CHECK(fresh.templates.at("Task timed out").count == 1);
    CHECK(f.groups.size() == 1);
    CHECK(f.first_seen_ms == 120'000);
    CHECK(f.in_minute(1) == 0);
    CHECK(f.in_minute(2) == 1);
    // Merged into a recycled entry (count 0), another template's stats replace what it held.
    batch.restart(counts::recycled_templates);
    auto& target = batch.templates.at("Task timed out");
    REQUIRE(target.count == 0);
    template_stats other;
    other.add("g2", {}, "OOM again", 180'000);
    target.merge(other);
    CHECK(target.count == 1);
    CHECK(target.details->sample == "OOM again");
    CHECK(target.details->first_seen_ms == 180'000);
    REQUIRE(target.details->groups.size() == 1);
    CHECK(target.details->groups[0].first == "g2");
    CHECK(target.details->in_minute(2) == 0);
    // Hostile: distinct templates beyond the bound are freed, not kept batch after batch.
    for (std::size_t i = 0; i <= counts::recycled_templates; ++i)
        count(("distinct " + std::to_string(i)).c_str(), "g", 1);
    batch.restart(counts::recycled_templates);
    CHECK(batch.templates.empty());
}

TEST_CASE("counts: a group that only removed patterns counted is gone after a remap, and frees its place") {
    using faultline::core::aggregate::count_limits;
    using faultline::core::aggregate::counts;
    counts totals(2);
    totals.by_group["only-removed"] = {0, 5};
    totals.by_group["kept"] = {3, 1};
    totals.patterns = {3, 6};
    totals.remap({0, -1}, 1); // pattern 1 is gone
    CHECK(totals.by_group.size() == 1);
    REQUIRE(totals.by_group.count("kept"));
    CHECK(totals.by_group.at("kept") == std::vector<std::uint64_t>{3});
    CHECK(totals.patterns == std::vector<std::uint64_t>{3});
    // Its place under max_groups is free again: a new group is itself, not "other".
    counts batch(1);
    batch.by_group["new"] = {2};
    totals.merge(batch, count_limits{2, 0});
    CHECK(totals.by_group.count("new"));
    CHECK_FALSE(totals.by_group.count("other"));
}
