// The per-event step: matching, masking, counting into a batch, and the entries a batch reuses.
#include "faultline/core/aggregate/analyzer.hpp"
#include "faultline/core/mine/masker.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using faultline::core::aggregate::analyze_options;
using faultline::core::aggregate::analyzer;
using faultline::core::aggregate::counts;
using faultline::core::aggregate::template_details;
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
    // Its details are in the batch's array until they are merged or settled.
    CHECK_FALSE(t.details);
    REQUIRE(t.batch_slot < batch.open_details.entries.size());
    CHECK(batch.open_details.sample_of(batch.open_details.entries[t.batch_slot]) ==
          "Task timed out after 3.00 seconds");
    batch.settle_details();
    CHECK(batch.open_details.entries.empty());
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
    batch.settle_details();                       // each entry with details of its own
    for (auto& [text, stats] : batch.templates) { // and what a mined batch may carry
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
    // Merged into totals: exactly what this batch counted, from the batch's array.
    counts totals(m.set().size());
    totals.merge(batch);
    REQUIRE(totals.templates.size() == 2);
    {
        const auto& merged = *totals.templates.at("Lambda ran OutOfMemory").details;
        REQUIRE(merged.groups.size() == 1);
        CHECK(merged.groups[0] == std::pair<std::string, std::uint64_t>{"/aws/lambda/new", 1});
        CHECK(merged.patterns == std::vector<std::uint32_t>{1});
        CHECK(merged.sample == "Lambda ran OutOfMemory");
        CHECK_FALSE(merged.is_new);
        CHECK(merged.previous_texts.empty());
    }
    // Settled into the entries, whose storage held a dropped template's: nothing of it left.
    batch.settle_details();
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

namespace {

/// What the analyzer keeps of a template, counted one event at a time into details of its own
/// (template_stats::add): the reference for the batch's array of details.
struct reference_batch {
    explicit reference_batch(std::shared_ptr<const faultline::core::match::pattern_set> set)
        : m(std::move(set)) {}
    void on_event(std::string_view group, std::string_view message, std::int64_t now_ms) {
        const auto hits = m.match(message);
        bool is_error = false;
        for (const std::uint32_t id : hits)
            is_error = is_error || m.set().is_error(id);
        if (!is_error) return;
        std::string masked;
        faultline::core::mine::mask_message(message, masked, analyze_options{}.mask_bytes);
        templates[masked].add(group, hits, message, now_ms);
    }
    matcher m;
    faultline::core::aggregate::string_map<faultline::core::aggregate::template_stats> templates;
};

void check_same_details(const faultline::core::aggregate::template_details& got,
                        const faultline::core::aggregate::template_details& want) {
    CHECK(got.first_seen_ms == want.first_seen_ms);
    CHECK(got.last_seen_ms == want.last_seen_ms);
    CHECK(got.sample == want.sample);
    CHECK(got.patterns == want.patterns);
    CHECK(got.groups == want.groups);
    CHECK(got.minutes == want.minutes);
    CHECK(got.minute_seen == want.minute_seen);
    CHECK(got.is_new == want.is_new);
    CHECK(got.previous_texts == want.previous_texts);
}

} // namespace

TEST_CASE("analyzer: a batch's details, kept in its array, are those of its events counted one by one") {
    // Hostile first: more patterns per event than a detail holds inline, more groups than a
    // template keeps, a group left and come back to, a sample cut inside a UTF-8 character.
    const char* const six = "a\terror\tALPHA\n"
                            "b\terror\tBETA\n"
                            "c\terror\tGAMMA\n"
                            "d\terror\tDELTA\n"
                            "e\terror\tEPSILON\n"
                            "f\terror\tZETA\n"
                            "w\twarn\tslow\n"
                            "http4\terror\tstatus 4[0-9][0-9]\n"
                            "http5\terror\tstatus 5[0-9][0-9]\n";
    const auto set = compile_patterns(six);
    matcher m(set);
    analyzer a(m);
    const std::vector<std::string> words{"ALPHA", "BETA", "GAMMA", "DELTA", "EPSILON", "ZETA", "slow"};
    std::string long_message = "ALPHA BETA GAMMA DELTA EPSILON ZETA ";
    while (long_message.size() < 511)
        long_message += "x";
    long_message += "\xc3\xa9 and more"; // a 2-byte character across the 512-byte cut
    // Two batches, three minutes apart; the second brings patterns and groups the first had not.
    std::vector<counts> batches(2, counts(m.set().size()));
    reference_batch first(set), second(set);
    reference_batch* const refs[] = {&first, &second};
    for (std::size_t b = 0; b < 2; ++b) {
        const std::int64_t now = 3'600'000 + static_cast<std::int64_t>(b) * 180'000;
        a.begin(batches[b], now);
        for (std::size_t doc = 20 * b; doc < 20 * b + 20; ++doc) {
            // Groups 0..11, going back to earlier ones: the same name each time it comes back.
            const std::string group = "/aws/lambda/g" + std::to_string((doc * 7) % (b ? 12 : 5));
            a.on_document(group);
            for (const char* every : {"ZETA in every document", "GAMMA in every document"}) {
                a.on_event(every);
                refs[b]->on_event(group, every, now);
            }
            for (std::size_t i = 0; i < 25; ++i) {
                std::string message;
                for (std::size_t w = 0; w < words.size(); ++w)
                    if (((doc + 3 * i) >> w) & 1 && (b || w % 3 != 0)) message += words[w] + " ";
                // Which patterns an event matches varies within a template (masked: <NUM>), and
                // the second batch brings one the first had not.
                message += "failed with status " + std::string(b && i % 2 ? "503" : "404");
                message += " in handler " + std::to_string(i % 3);
                if (i == 24 && doc % 5 == 0) message = long_message;
                a.on_event(message);
                refs[b]->on_event(group, message, now);
            }
        }
        CHECK(!batches[b].open_details.spilled_ids.empty()); // some kept more ids than fit inline
    }
    // Both merged into totals as they are: the same as the references merged (each batch keeps
    // its first max_groups groups, as the totals do).
    counts totals(m.set().size());
    totals.merge(batches[0]);
    totals.merge(batches[1]);
    faultline::core::aggregate::string_map<faultline::core::aggregate::template_stats> both;
    for (const auto* ref : refs)
        for (const auto& [text, st] : ref->templates)
            both[text].merge(st);
    REQUIRE(totals.templates.size() == both.size());
    for (const auto& [text, want] : both) {
        const std::string& name = text; // a structured binding is not captured (clang)
        CAPTURE(name);
        REQUIRE(totals.templates.count(text));
        const auto& merged = totals.templates.at(text);
        CHECK(merged.count == want.count);
        REQUIRE(merged.details);
        check_same_details(*merged.details, *want.details);
    }
    // Each settled into its entries: the same as its own reference.
    bool some_full = false; // a template of more than max_groups groups kept the first ones
    for (std::size_t b = 0; b < 2; ++b) {
        batches[b].settle_details();
        CHECK(batches[b].open_details.entries.empty());
        std::size_t with_events = 0;
        for (const auto& [text, stats] : batches[b].templates)
            with_events += stats.count > 0;
        CHECK(with_events == refs[b]->templates.size());
        for (const auto& [text, want] : refs[b]->templates) {
            const std::string& name = text; // a structured binding is not captured (clang)
            CAPTURE(name);
            REQUIRE(batches[b].templates.count(text));
            const auto& settled = batches[b].templates.at(text);
            CHECK(settled.count == want.count);
            REQUIRE(settled.details);
            check_same_details(*settled.details, *want.details);
            some_full = some_full || want.details->groups.size() == template_details::max_groups;
        }
    }
    CHECK(some_full);
}

TEST_CASE("analyzer: a batch counted at two times keeps both (its array is settled at the second)") {
    matcher m(compile_patterns(two_patterns));
    analyzer a(m);
    counts batch(m.set().size());
    a.begin(batch, 60'000);
    a.on_document("/aws/lambda/a");
    a.on_event("Task timed out after 3.00 seconds");
    a.begin(batch, 180'000); // no restart: the same batch goes on, two minutes later
    a.on_document("/aws/lambda/b");
    a.on_event("Task timed out after 4.00 seconds");
    a.on_event("Lambda ran OutOfMemory");
    counts totals(m.set().size());
    totals.merge(batch);
    const auto& t = *totals.templates.at("Task timed out after <NUM> seconds").details;
    CHECK(totals.templates.at("Task timed out after <NUM> seconds").count == 2);
    CHECK(t.first_seen_ms == 60'000);
    CHECK(t.last_seen_ms == 180'000);
    CHECK(t.sample == "Task timed out after 3.00 seconds");
    CHECK(t.in_minute(1) == 1);
    CHECK(t.in_minute(3) == 1);
    CHECK(t.groups ==
          std::vector<std::pair<std::string, std::uint64_t>>{{"/aws/lambda/a", 1}, {"/aws/lambda/b", 1}});
    const auto& oom = *totals.templates.at("Lambda ran OutOfMemory").details;
    CHECK(oom.first_seen_ms == 180'000);
    CHECK(oom.in_minute(3) == 1);
    CHECK(oom.in_minute(1) == 0);
}
