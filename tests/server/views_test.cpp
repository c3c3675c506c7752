// The JSON views of the read API (server/src/views.cpp), fed directly: counts, rates, picked
// templates and a fixed clock. No server, no miner.
#include "../../server/src/views.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <doctest/doctest.h>

#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

using namespace faultline::server;
namespace core = faultline::core;

namespace {

std::shared_ptr<const core::match::pattern_set> patterns() {
    core::match::pattern timeout;
    timeout.name = "timeout";
    timeout.regex = "timed out";
    timeout.description = "a \"timeout\"";
    core::match::pattern slow;
    slow.name = "slow";
    slow.cls = core::match::pattern_class::warn;
    slow.regex = "slow";
    return *core::match::pattern_set::compile({timeout, slow});
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& json) {
    auto doc = p.parse(json);
    REQUIRE_MESSAGE(!doc.error(), json);
    return doc.value();
}

// 30 s into a minute, in Unix ms.
constexpr std::int64_t now_ms = 1'795'955'430'000;

} // namespace

TEST_CASE(
    "views: /v1/patterns: counts in all groups or in one, groups by name, rates; hostile names escaped") {
    const auto set = patterns();
    core::aggregate::counts totals(2);
    totals.patterns = {7, 1};
    totals.by_group["b\"quoted\n"] = {3, 0};
    totals.by_group["a-group"] = {4, 1};
    const std::vector<double> r1{0.5, 0}, r15{0.25};
    simdjson::dom::parser p;
    const std::string all = patterns_json(totals, *set, r1, r15);
    const auto doc = parse(p, all);
    const auto list = doc["patterns"].get_array().value();
    REQUIRE(list.size() == 2);
    const auto t = list.at(0).value();
    CHECK(std::string_view(t["name"].get_string().value()) == "timeout");
    CHECK(std::string_view(t["description"].get_string().value()) == "a \"timeout\"");
    CHECK(std::string_view(t["class"].get_string().value()) == "error");
    CHECK(t["count"].get_uint64().value() == 7);
    CHECK(t["groups"]["a-group"].get_uint64().value() == 4);
    CHECK(t["groups"]["b\"quoted\n"].get_uint64().value() == 3);
    CHECK(t["rate_1m"].get_double().value() == doctest::Approx(0.5));
    CHECK(t["rate_15m"].get_double().value() == doctest::Approx(0.25));
    CHECK(list.at(1).value()["rate_15m"].get_double().value() == 0); // no rate yet: 0, not missing
    CHECK(all.find("\"a-group\"") < all.find("\"b\\\"quoted"));      // groups by name
    // One group: the counts are that group's.
    simdjson::dom::parser p2;
    const auto one = parse(p2, patterns_json(totals, *set, {}, {}, "a-group"));
    CHECK(one["patterns"].at(0).value()["count"].get_uint64().value() == 4);
    CHECK(one["patterns"].at(1).value()["count"].get_uint64().value() == 1);
    CHECK(one["patterns"].at(0).value()["groups"].get_object().value().size() == 1);
}

TEST_CASE(
    "views: /v1/templates: rates and the 15-minute trend as of the clock given, patterns and severity") {
    const auto set = patterns();
    core::aggregate::picked_template t;
    t.text = "Task timed out after <NUM> seconds";
    t.stats.count = 90;
    t.stats.details = std::make_unique<core::aggregate::template_details>();
    auto& d = *t.stats.details;
    d.first_seen_ms = now_ms - 20 * 60'000;
    d.last_seen_ms = now_ms - 1000;
    d.sample = "Task timed out after 3.00 seconds";
    d.patterns = {0, 1, 7}; // 7: a pattern gone since (a reload): not shown
    d.groups = {{"/aws/lambda/api", 60}, {"/aws/lambda/jobs", 30}};
    d.previous_texts = {"Task timed out after 3.00 seconds"};
    d.count_minute(now_ms - 2 * 60'000, 30); // two minutes ago
    d.count_minute(now_ms, 60);              // this minute
    std::vector<core::aggregate::picked_template> list;
    list.push_back(std::move(t));
    simdjson::dom::parser p;
    const std::string json = templates_json(list, *set, now_ms);
    const auto row = parse(p, json)["templates"].at(0).value();
    CHECK(std::string_view(row["id"].get_string().value()) ==
          core::aggregate::template_id("Task timed out after <NUM> seconds"));
    CHECK(row["count"].get_uint64().value() == 90);
    CHECK(std::string_view(row["severity"].get_string().value()) == "error");
    const auto pats = row["patterns"].get_array().value();
    CHECK(pats.size() == 2);
    const auto trend = row["trend"].get_array().value();
    REQUIRE(trend.size() == 15);
    CHECK(trend.at(14).value().get_uint64().value() == 60); // the current minute last
    CHECK(trend.at(12).value().get_uint64().value() == 30);
    CHECK(trend.at(13).value().get_uint64().value() == 0);
    // 60 events over the 30 s of this minute (and the one before): 1 minute back = 90 s.
    CHECK(row["rate_1m"].get_double().value() == doctest::Approx(60.0 / 90.0).epsilon(0.001));
    CHECK(row["previous_ids"].get_array().value().size() == 1);
    // The same templates 20 minutes later: nothing recent.
    simdjson::dom::parser p2;
    const auto later = parse(p2, templates_json(list, *set, now_ms + 20 * 60'000))["templates"].at(0).value();
    CHECK(later["rate_1m"].get_double().value() == 0);
    CHECK(later["trend"].at(14).value().get_uint64().value() == 0);
}

TEST_CASE("views: /v1/templates parameters become the pick: filter by group and class, sort by first or last "
          "seen") {
    const auto set = patterns();
    auto make = [](std::vector<std::uint32_t> ids, std::string group, std::int64_t first, std::int64_t last) {
        core::aggregate::template_stats s;
        s.count = 1;
        s.details = std::make_unique<core::aggregate::template_details>();
        s.details->patterns = std::move(ids);
        s.details->groups = {{std::move(group), 1}};
        s.details->first_seen_ms = first;
        s.details->last_seen_ms = last;
        return s;
    };
    const auto error_in_a = make({0}, "a", 10, 50);
    const auto warn_in_b = make({1}, "b", 20, 40);
    const core::aggregate::template_stats no_details; // exact mode without details: kept out of filters
    template_query q;
    q.cls = "warn";
    auto pick = templates_pick(q, *set);
    REQUIRE(pick.keep);
    CHECK_FALSE(pick.keep(error_in_a));
    CHECK(pick.keep(warn_in_b));
    CHECK_FALSE(pick.keep(no_details));
    q = {};
    q.group = "a";
    pick = templates_pick(q, *set);
    CHECK(pick.keep(error_in_a));
    CHECK_FALSE(pick.keep(warn_in_b));
    q = {};
    q.limit = 7;
    pick = templates_pick(q, *set);
    CHECK_FALSE(pick.keep);
    CHECK(pick.limit == 7);
    CHECK(pick.key_of(error_in_a) == 1); // by count
    q.sort = "first_seen";
    CHECK(templates_pick(q, *set).key_of(warn_in_b) == 20);
    q.sort = "last_seen";
    CHECK(templates_pick(q, *set).key_of(warn_in_b) == 40);
}
