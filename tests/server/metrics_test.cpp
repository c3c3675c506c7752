// The /metrics collectors (server/src/metrics.hpp), each fed its inputs directly: no server, no
// pipeline, no socket. What a scrape shows is decided here.
#include "../../server/src/metrics.hpp"

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace faultline::server;
namespace core = faultline::core;
using prometheus::MetricFamily;

namespace {

const MetricFamily* family(const std::vector<MetricFamily>& fams, const std::string& name) {
    for (const auto& f : fams)
        if (f.name == name) return &f;
    return nullptr;
}

/// The value of the sample of `name` with exactly these labels (nullopt: no such sample).
std::optional<double> value(const std::vector<MetricFamily>& fams, const std::string& name,
                            const std::map<std::string, std::string>& labels = {}) {
    const MetricFamily* f = family(fams, name);
    if (!f) return std::nullopt;
    for (const auto& m : f->metric) {
        std::map<std::string, std::string> have;
        for (const auto& l : m.label)
            have[l.name] = l.value;
        if (have != labels) continue;
        return f->type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
    return std::nullopt;
}

std::shared_ptr<const core::match::pattern_set> two_patterns() {
    core::match::pattern a;
    a.name = "timeout";
    a.regex = "timed out";
    core::match::pattern b;
    b.name = "oom";
    b.regex = "OutOfMemory";
    return *core::match::pattern_set::compile({a, b});
}

} // namespace

TEST_CASE("metrics: requests are summed over the I/O threads, by route and code, with their durations") {
    std::vector<std::unique_ptr<http_stats>> stats;
    stats.push_back(std::make_unique<http_stats>());
    stats.push_back(std::make_unique<http_stats>());
    stats[0]->record(route::firehose, 200, 0.002);
    stats[1]->record(route::firehose, 200, 0.3);
    stats[1]->record(route::firehose, 418, 0.001); // a code not in the list: "other"
    stats[0]->reject(reject_reason::queue_full);
    stats[1]->reject(reject_reason::queue_full);
    stats[1]->decode_error(static_cast<std::size_t>(core::errc::gzip));
    stats[0]->decode_error(999); // out of range: ignored, not a crash
    stats[0]->internal_error(internal_where::auth);
    const request_collector c(stats);
    const auto fams = c.Collect();
    CHECK(value(fams, "faultline_http_requests_total", {{"route", "/v1/firehose"}, {"code", "200"}}) == 2.0);
    CHECK(value(fams, "faultline_http_requests_total", {{"route", "/v1/firehose"}, {"code", "other"}}) ==
          1.0);
    // Routes and codes never seen are not exported (bounded, and no zero series per route).
    CHECK_FALSE(value(fams, "faultline_http_requests_total", {{"route", "/v1/cloudwatch"}, {"code", "200"}}));
    const MetricFamily* h = family(fams, "faultline_http_request_duration_seconds");
    REQUIRE(h);
    REQUIRE(h->metric.size() == 1);
    const auto& hist = h->metric[0].histogram;
    CHECK(hist.sample_count == 3);
    CHECK(hist.sample_sum == doctest::Approx(0.303));
    CHECK(hist.bucket.back().cumulative_count == 3); // +Inf
    CHECK(value(fams, "faultline_rejected_requests_total", {{"reason", "queue_full"}}) == 2.0);
    CHECK(value(fams, "faultline_rejected_requests_total", {{"reason", "timeout"}}) ==
          0.0); // every reason, from 0
    CHECK(value(fams, "faultline_decode_errors_total",
                {{"kind", std::string(core::kind_name(core::errc::gzip))}}) == 1.0);
    CHECK(value(fams, "faultline_internal_errors_total", {{"where", "auth"}}) == 1.0);
}

TEST_CASE("metrics: group labels are admitted first come, first served, and kept; the rest is \"other\"") {
    core::pipeline::pipeline::totals_view view{core::aggregate::counts(2), two_patterns()};
    view.totals.by_source["firehose"] = 7;
    view.totals.control_messages = 3;
    view.totals.by_group["b-group"] = {1, 0};
    view.totals.by_group["c-group"] = {2, 5};
    std::vector<std::unique_ptr<http_stats>> stats;
    stats.push_back(std::make_unique<http_stats>());
    stats[0]->control(http_stats::handshake::github_ping);
    const count_collector c({[&] { return view; },
                             [] {
                                 return std::vector<std::string>{"firehose", "cloudwatch", "webhook:ci"};
                             },
                             &stats,
                             /*max_groups=*/3});
    auto fams = c.Collect();
    // Every source known now, from 0.
    CHECK(value(fams, "faultline_events_ingested_total", {{"source", "firehose"}}) == 7.0);
    CHECK(value(fams, "faultline_events_ingested_total", {{"source", "webhook:ci"}}) == 0.0);
    CHECK(value(fams, "faultline_control_messages_total", {{"kind", "cloudwatch"}}) == 3.0);
    CHECK(value(fams, "faultline_control_messages_total", {{"kind", "github_ping"}}) == 1.0);
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "b-group"}, {"pattern", "timeout"}}) ==
          1.0);
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "c-group"}, {"pattern", "oom"}}) == 5.0);
    CHECK_FALSE(
        value(fams, "faultline_pattern_matches_total", {{"group", "b-group"}, {"pattern", "oom"}})); // 0
    // A group seen later that sorts first does not take a label from one already exported: it is
    // "other" (a counter never moves between series), and so are the groups after it.
    view.totals.by_group["a-group"] = {4, 0};
    view.totals.by_group["d-group"] = {1, 1};
    fams = c.Collect();
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "b-group"}, {"pattern", "timeout"}}) ==
          1.0);
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "c-group"}, {"pattern", "timeout"}}) ==
          2.0);
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "other"}, {"pattern", "timeout"}}) ==
          5.0);
    CHECK(value(fams, "faultline_pattern_matches_total", {{"group", "other"}, {"pattern", "oom"}}) == 1.0);
    CHECK_FALSE(
        value(fams, "faultline_pattern_matches_total", {{"group", "a-group"}, {"pattern", "timeout"}}));
}

TEST_CASE("metrics: the top K templates by stable id, and how many there are") {
    std::size_t asked = 0;
    const template_collector c({[&](std::size_t k) {
                                    asked = k;
                                    core::pipeline::pipeline::templates_view v;
                                    v.alive = 12;
                                    core::aggregate::picked_template t;
                                    t.text = "Task timed out after <NUM> seconds";
                                    t.stats.count = 114;
                                    v.picked.push_back(std::move(t));
                                    return v;
                                },
                                [] { return std::uint64_t{4}; }, [] { return std::uint64_t{2}; }, 5});
    const auto fams = c.Collect();
    CHECK(asked == 5);
    CHECK(value(fams, "faultline_templates") == 12.0);
    CHECK(value(fams, "faultline_templates_evicted_total") == 4.0);
    CHECK(value(fams, "faultline_templates_new_total") == 2.0);
    CHECK(value(fams, "faultline_template_events_total",
                {{"template_id", core::aggregate::template_id("Task timed out after <NUM> seconds")}}) ==
          114.0);
    CHECK(family(fams, "faultline_template_events_total")->metric.size() == 1);
}

TEST_CASE(
    "metrics: single values are read at each scrape; a family none of whose samples is there is left out") {
    double depth = 1;
    bool store = false;
    const value_collector c({{"faultline_queue_depth",
                              "h",
                              prometheus::MetricType::Gauge,
                              {{{}, [&]() -> std::optional<double> { return depth; }}}},
                             {"faultline_dedupe_store_up",
                              "h",
                              prometheus::MetricType::Gauge,
                              {{{},
                                [&]() -> std::optional<double> {
                                    if (!store) return std::nullopt;
                                    return 1.0;
                                }}}},
                             {"faultline_config_reloads_total",
                              "h",
                              prometheus::MetricType::Counter,
                              {{{{"result", "failure"}}, [] { return std::optional<double>(0); }},
                               {{{"result", "success"}}, [] { return std::optional<double>(3); }}}}});
    auto fams = c.Collect();
    CHECK(value(fams, "faultline_queue_depth") == 1.0);
    CHECK_FALSE(family(fams, "faultline_dedupe_store_up"));
    CHECK(value(fams, "faultline_config_reloads_total", {{"result", "success"}}) == 3.0);
    depth = 9;
    store = true;
    fams = c.Collect();
    CHECK(value(fams, "faultline_queue_depth") == 9.0);
    CHECK(value(fams, "faultline_dedupe_store_up") == 1.0);
    const std::string text = serialize_metrics({std::make_shared<value_collector>(c)});
    CHECK(text.find("# TYPE faultline_queue_depth gauge\nfaultline_queue_depth 9") != std::string::npos);
    CHECK(text.find("faultline_config_reloads_total{result=\"success\"} 3") != std::string::npos);
}
