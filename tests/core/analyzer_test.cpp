// The per-event step: matching, masking, counting into a batch, and the entries a batch reuses.
#include "faultline/core/aggregate/analyzer.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using faultline::core::aggregate::analyzer;
using faultline::core::aggregate::counts;
using faultline::core::match::matcher;
using faultline::test::compile_patterns;

namespace {

const char* const two_patterns = "timeout\terror\t(?i)timed out\n"
                                 "oom\terror\tOutOfMemory\n";

} // namespace

TEST_CASE("analyzer: a batch's error events are counted by pattern, group and masked template") {
    matcher m(compile_patterns(two_patterns));
    analyzer a(m);
    counts batch(m.set().size());
    a.begin(batch, 60'000);
    a.on_document("/aws/lambda/a");
    a.on_event("Task timed out after 3.00 seconds");
    a.on_event("Task timed out after 9.00 seconds");
    a.on_event("all is well");
    a.on_document("/aws/lambda/b");
    a.on_event("java.lang.OutOfMemory timed out");
    CHECK(batch.events == 4);
    CHECK(batch.documents == 2);
    CHECK(batch.patterns == std::vector<std::uint64_t>{3, 1});
    CHECK(batch.by_group.at("/aws/lambda/a") == std::vector<std::uint64_t>{2, 0});
    CHECK(batch.by_group.at("/aws/lambda/b") == std::vector<std::uint64_t>{1, 1});
    REQUIRE(batch.templates.size() == 2);
    const auto& t = batch.templates.at("Task timed out after <NUM> seconds");
    CHECK(t.count == 2);
    REQUIRE(t.details);
    CHECK(t.details->sample == "Task timed out after 3.00 seconds");
    CHECK(t.details->first_seen_ms == 60'000);
}

TEST_CASE("analyzer: new templates are made from the entries a full batch dropped, with nothing of "
          "theirs") {
    // Hostile first: every event a new template, past the bound of entries a batch keeps.
    matcher m(compile_patterns(two_patterns));
    analyzer a(m);
    counts batch(m.set().size());
    const std::size_t keep = counts::recycled_templates;
    a.begin(batch, 60'000);
    for (std::size_t g = 0; g < 8; ++g) {
        a.on_document("/aws/lambda/old-" + std::to_string(g));
        for (std::size_t i = 0; i < keep / 4; ++i)
            a.on_event("OutOfMemory timed out in handler " + faultline::test::distinct_word(g * keep + i));
    }
    REQUIRE(batch.templates.size() > keep);
    for (auto& [text, stats] : batch.templates) { // what a mined batch may carry
        stats.details->is_new = true;
        stats.details->previous_texts.push_back("an older text");
    }
    // Past the bound: the map is emptied, `keep` entries kept whole for new templates.
    batch.restart(keep, true, &a.spare());
    CHECK(batch.templates.empty());
    CHECK(batch.events == 0);
    REQUIRE(a.spare().size() == keep);

    a.begin(batch, 120'000);
    a.on_document("/aws/lambda/new");
    a.on_event("Task timed out after 3.00 seconds");
    a.on_event("Task timed out after 4.00 seconds");
    a.on_event("Lambda ran OutOfMemory");
    CHECK(a.spare().size() == keep - 2); // two new templates, both from dropped entries
    REQUIRE(batch.templates.size() == 2);
    const auto& t = batch.templates.at("Task timed out after <NUM> seconds");
    CHECK(t.count == 2);
    REQUIRE(t.details);
    CHECK(t.details->sample == "Task timed out after 3.00 seconds");
    CHECK(t.details->first_seen_ms == 120'000);
    CHECK(t.details->last_seen_ms == 120'000);
    CHECK(t.details->patterns == std::vector<std::uint32_t>{0});
    CHECK_FALSE(t.details->is_new);
    CHECK(t.details->previous_texts.empty());
    CHECK(t.details->in_minute(2) == 2);
    CHECK(t.details->in_minute(1) == 0);
    std::uint64_t in_groups = 0;
    for (const auto& [g, n] : t.details->groups) {
        CHECK((n == 0 || g == "/aws/lambda/new"));
        in_groups += n;
    }
    CHECK(in_groups == 2);
    // Merged into totals: exactly what this batch counted.
    counts totals(m.set().size());
    totals.merge(batch);
    REQUIRE(totals.templates.size() == 2);
    const auto& merged = *totals.templates.at("Lambda ran OutOfMemory").details;
    REQUIRE(merged.groups.size() == 1);
    CHECK(merged.groups[0] == std::pair<std::string, std::uint64_t>{"/aws/lambda/new", 1});
    CHECK(merged.patterns == std::vector<std::uint32_t>{1});
    CHECK(merged.sample == "Lambda ran OutOfMemory");
    // The spare entries are bounded: another full batch adds none beyond `keep`.
    for (std::size_t i = 0; i < 2 * keep; ++i)
        a.on_event("OutOfMemory again in " + faultline::test::distinct_word(i));
    batch.restart(keep, true, &a.spare());
    CHECK(a.spare().size() == keep);
    CHECK(batch.templates.empty());
}

TEST_CASE(
    "analyzer: a batch's group and source entries are kept at zero between batches, and never counted") {
    matcher m(compile_patterns(two_patterns));
    analyzer a(m);
    counts batch(m.set().size()), totals(m.set().size());
    a.begin(batch, 60'000);
    a.on_document("/aws/lambda/a");
    a.on_event("Task timed out after 3.00 seconds");
    batch.by_source["firehose"] += batch.events;
    totals.merge(batch);
    batch.restart(counts::recycled_templates, true, &a.spare());
    // Kept, at zero: what a batch that sees them again fills without allocating.
    REQUIRE(batch.by_group.count("/aws/lambda/a"));
    CHECK(batch.by_group.at("/aws/lambda/a") == std::vector<std::uint64_t>{0, 0});
    REQUIRE(batch.by_source.count("firehose"));
    CHECK(batch.by_source.at("firehose") == 0);
    {
        counts fresh(m.set().size());
        fresh.merge(batch); // zero entries are not groups nor sources of the totals
        CHECK(fresh.by_group.empty());
        CHECK(fresh.by_source.empty());
    }
    a.begin(batch, 120'000);
    a.on_document("/aws/lambda/b");
    a.on_event("Lambda ran OutOfMemory");
    a.on_document("/aws/lambda/a");
    a.on_event("nothing to see");
    totals.merge(batch);
    CHECK(totals.by_group.size() == 2);
    CHECK(totals.by_group.at("/aws/lambda/a") == std::vector<std::uint64_t>{1, 0});
    CHECK(totals.by_group.at("/aws/lambda/b") == std::vector<std::uint64_t>{0, 1});
    CHECK(totals.by_source.at("firehose") == 1);

    // Under a pattern set of another size (a reload), a kept entry is made to its size.
    matcher m3(compile_patterns("timeout\terror\t(?i)timed out\n"
                                "oom\terror\tOutOfMemory\n"
                                "panic\terror\tpanic:\n"));
    analyzer a3(m3);
    counts wide(m3.set().size());
    wide.by_group["/aws/lambda/a"] = {0}; // kept from a batch under a smaller set
    a3.begin(wide, 180'000);
    a3.on_document("/aws/lambda/a");
    a3.on_event("panic: runtime error");
    CHECK(wide.by_group.at("/aws/lambda/a") == std::vector<std::uint64_t>{0, 0, 1});

    // Hostile: more groups than the bound are freed, not kept batch after batch.
    a.begin(batch, 240'000);
    for (std::size_t g = 0; g <= counts::recycled_groups; ++g) {
        a.on_document("/aws/lambda/many-" + std::to_string(g));
        a.on_event("Task timed out after 1.00 seconds");
    }
    batch.restart(counts::recycled_templates, true, &a.spare());
    CHECK(batch.by_group.empty());
    // And counts::clear() keeps nothing.
    batch.by_group["x"] = {1, 0};
    batch.clear();
    CHECK(batch.by_group.empty());
}
