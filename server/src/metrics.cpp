#include "metrics.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>

namespace faultline::server {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric metric(std::vector<ClientMetric::Label> labels, double value, MetricType type) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    return m;
}

/// The sum over the I/O threads of one of their counters.
template <class F>
std::uint64_t sum(const std::vector<std::unique_ptr<http_stats>>& stats, F of) {
    std::uint64_t n = 0;
    for (const auto& s : stats)
        n += of(*s);
    return n;
}

} // namespace

std::vector<MetricFamily> request_collector::Collect() const {
    std::vector<MetricFamily> fams;
    MetricFamily f{
        "faultline_http_requests_total", "HTTP requests by route and status code.", MetricType::Counter, {}};
    MetricFamily h{"faultline_http_request_duration_seconds",
                   "Time from request head to response written.",
                   MetricType::Histogram,
                   {}};
    for (std::size_t r = 0; r < route_count; ++r) {
        const std::string label(route_label(static_cast<route>(r)));
        for (std::size_t c = 0; c < http_stats::codes.size(); ++c) {
            const std::uint64_t n = sum(stats_, [&](const http_stats& s) { return s.requests(r, c); });
            if (n == 0) continue;
            const int code = http_stats::codes[c];
            f.metric.push_back(metric({{"code", code ? std::to_string(code) : "other"}, {"route", label}},
                                      static_cast<double>(n), MetricType::Counter));
        }
        const std::uint64_t count = sum(stats_, [&](const http_stats& s) { return s.count(r); });
        if (count == 0) continue;
        ClientMetric m;
        m.label = {{"route", label}};
        double seconds = 0;
        for (const auto& s : stats_)
            seconds += s->sum_seconds(r);
        m.histogram.sample_count = count;
        m.histogram.sample_sum = seconds;
        for (std::size_t b = 0; b < http_stats::buckets.size(); ++b)
            m.histogram.bucket.push_back(
                {sum(stats_, [&](const http_stats& s) { return s.bucket(r, b); }), http_stats::buckets[b]});
        m.histogram.bucket.push_back({count, std::numeric_limits<double>::infinity()});
        h.metric.push_back(std::move(m));
    }
    fams.push_back(std::move(f));
    fams.push_back(std::move(h));

    // Counters by one label, every value from 0, summed over the I/O threads.
    auto by = [&](std::string name, std::string help, std::string label, std::size_t n, auto label_of,
                  auto of) {
        MetricFamily fam{std::move(name), std::move(help), MetricType::Counter, {}};
        for (std::size_t k = 0; k < n; ++k)
            fam.metric.push_back(
                metric({{label, std::string(label_of(k))}},
                       static_cast<double>(sum(stats_, [&](const http_stats& s) { return of(s, k); })),
                       MetricType::Counter));
        fams.push_back(std::move(fam));
    };
    by(
        "faultline_decode_errors_total", "Requests refused because their content did not decode, by kind.",
        "kind", http_stats::decode_kinds,
        [](std::size_t k) { return core::kind_name(static_cast<core::errc>(k)); },
        [](const http_stats& s, std::size_t k) { return s.decode_errors(k); });
    by(
        "faultline_rejected_requests_total", "Requests or connections refused, by reason.", "reason",
        reject_reason_count, [](std::size_t k) { return reject_label(static_cast<reject_reason>(k)); },
        [](const http_stats& s, std::size_t k) { return s.rejected(k); });
    by(
        "faultline_internal_errors_total",
        "Failures of the service itself (answered 500 or the connection closed), by where they were caught.",
        "where", internal_where_count,
        [](std::size_t k) { return internal_label(static_cast<internal_where>(k)); },
        [](const http_stats& s, std::size_t k) { return s.internal_errors(k); });
    return fams;
}

std::vector<MetricFamily> count_collector::Collect() const {
    const auto view = in_.counters();
    const auto& totals = view.totals;
    const auto& pats = view.patterns->patterns();
    std::vector<MetricFamily> fams;
    {
        MetricFamily f{"faultline_events_ingested_total",
                       "Log events counted, by ingest source.",
                       MetricType::Counter,
                       {}};
        // Every source known now is exported from the start, at 0 until its first event.
        std::map<std::string, std::uint64_t, std::less<>> sources(totals.by_source.begin(),
                                                                  totals.by_source.end());
        if (in_.sources)
            for (auto& s : in_.sources())
                sources.try_emplace(std::move(s), 0);
        for (const auto& [src, n] : sources)
            f.metric.push_back(metric({{"source", src}}, static_cast<double>(n), MetricType::Counter));
        fams.push_back(std::move(f));
    }
    {
        // CloudWatch Logs CONTROL_MESSAGE documents, and the senders' handshakes answered.
        std::uint64_t ping = 0, slack = 0;
        if (in_.stats) {
            ping = sum(*in_.stats,
                       [](const http_stats& s) { return s.controls(http_stats::handshake::github_ping); });
            slack = sum(*in_.stats, [](const http_stats& s) {
                return s.controls(http_stats::handshake::slack_url_verification);
            });
        }
        fams.push_back({"faultline_control_messages_total",
                        "Control messages received, not counted as events: CloudWatch Logs CONTROL_MESSAGE "
                        "documents, GitHub ping events, Slack url_verification handshakes.",
                        MetricType::Counter,
                        {metric({{"kind", "cloudwatch"}}, static_cast<double>(totals.control_messages),
                                MetricType::Counter),
                         metric({{"kind", "github_ping"}}, static_cast<double>(ping), MetricType::Counter),
                         metric({{"kind", "slack_url_verification"}}, static_cast<double>(slack),
                                MetricType::Counter)}});
    }
    MetricFamily f{
        "faultline_pattern_matches_total",
        "Events matching each pattern, by log group (at most metrics.max_groups groups; the rest are "
        "group=\"other\").",
        MetricType::Counter,
        {}};
    // Group label values are admitted first come, first served and kept: counters stay monotonic.
    std::map<std::string, std::vector<std::uint64_t>> by_label;
    {
        std::lock_guard lock(groups_mutex_);
        // (A set of strings: views into a growing vector would dangle when it reallocates.)
        std::vector<std::string> names;
        for (const auto& [g, v] : totals.by_group)
            names.push_back(g);
        std::sort(names.begin(), names.end());
        for (const auto& g : names) {
            if (g != core::aggregate::other_group && !groups_.count(g) && groups_.size() + 1 < in_.max_groups)
                groups_.insert(g);
            const std::string label = groups_.count(g) ? g : std::string(core::aggregate::other_group);
            auto& acc = by_label[label];
            const auto& v = totals.by_group.find(g)->second;
            if (acc.size() < v.size()) acc.resize(v.size(), 0);
            for (std::size_t i = 0; i < v.size(); ++i)
                acc[i] += v[i];
        }
    }
    for (const auto& [g, v] : by_label)
        for (std::size_t i = 0; i < v.size() && i < pats.size(); ++i)
            if (v[i])
                f.metric.push_back(metric({{"group", g}, {"pattern", pats[i].name}},
                                          static_cast<double>(v[i]), MetricType::Counter));
    fams.push_back(std::move(f));
    return fams;
}

std::vector<MetricFamily> template_collector::Collect() const {
    const auto top = in_.top(in_.top_k);
    std::vector<MetricFamily> fams;
    fams.push_back({"faultline_templates",
                    "Error templates currently known.",
                    MetricType::Gauge,
                    {metric({}, static_cast<double>(top.alive), MetricType::Gauge)}});
    fams.push_back({"faultline_templates_evicted_total",
                    "Templates evicted by the template cap (least recently seen).",
                    MetricType::Counter,
                    {metric({}, static_cast<double>(in_.evicted ? in_.evicted() : 0), MetricType::Counter)}});
    fams.push_back(
        {"faultline_templates_new_total",
         "Templates first seen after the warm-up (errors never seen before).",
         MetricType::Counter,
         {metric({}, static_cast<double>(in_.new_total ? in_.new_total() : 0), MetricType::Counter)}});
    // Per-template counts for the top K templates only: bounded cardinality, stable ids.
    MetricFamily f{"faultline_template_events_total",
                   "Events of each of the top templates (templates.metrics_top_k), by stable template id.",
                   MetricType::Counter,
                   {}};
    for (const auto& t : top.picked)
        f.metric.push_back(metric({{"template_id", core::aggregate::template_id(t.text)}},
                                  static_cast<double>(t.stats.count), MetricType::Counter));
    fams.push_back(std::move(f));
    return fams;
}

std::vector<MetricFamily> value_collector::Collect() const {
    std::vector<MetricFamily> fams;
    for (const auto& fam : families_) {
        MetricFamily f{fam.name, fam.help, fam.type, {}};
        for (const auto& s : fam.samples)
            if (const auto v = s.read()) f.metric.push_back(metric(s.labels, *v, fam.type));
        if (!f.metric.empty()) fams.push_back(std::move(f));
    }
    return fams;
}

std::string serialize_metrics(const std::vector<std::shared_ptr<prometheus::Collectable>>& collectors) {
    std::vector<MetricFamily> fams;
    for (const auto& c : collectors) {
        auto part = c->Collect();
        std::move(part.begin(), part.end(), std::back_inserter(fams));
    }
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, fams);
    return out.str();
}

} // namespace faultline::server
