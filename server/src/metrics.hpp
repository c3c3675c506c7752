// /metrics as prometheus-cpp collectors (prometheus::Collectable, the shape of prometheus-cpp's
// registry): each reads its part at scrape time, from counters the rest of the service keeps and
// from the templates picked in place, and nothing is copied or kept between scrapes but the group
// labels admitted (first come, first served: a counter never changes its labels). I/O-free;
// tested without a server (tests/server/metrics_test.cpp).
#pragma once

#include "faultline/core/pipeline/pipeline.hpp"
#include "faultline/server/service.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace faultline::server {

/// The HTTP side, summed over the I/O threads' http_stats: requests by route and code, their
/// durations, decode errors, refusals and internal failures.
class request_collector final : public prometheus::Collectable {
public:
    explicit request_collector(const std::vector<std::unique_ptr<http_stats>>& stats)
        : stats_(stats) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const std::vector<std::unique_ptr<http_stats>>& stats_;
};

/// What was counted: events by source (every source known now, from 0), control messages, and
/// pattern matches by group. At most `max_groups` - 1 group labels are admitted, in the order
/// they are first seen at a scrape, and kept; the other groups are summed as group="other".
class count_collector final : public prometheus::Collectable {
public:
    struct inputs {
        std::function<core::pipeline::pipeline::totals_view()> counters; ///< without the templates
        std::function<std::vector<std::string>()> sources; ///< source labels exported from the start
        const std::vector<std::unique_ptr<http_stats>>* stats = nullptr; ///< the senders' handshakes
        std::size_t max_groups = 100;
    };
    explicit count_collector(inputs in)
        : in_(std::move(in)) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    inputs in_;
    mutable std::mutex groups_mutex_;
    mutable std::set<std::string, std::less<>> groups_; ///< group labels admitted so far
};

/// The templates: how many there are, how many were evicted or new, and the events of the top
/// K by stable id (picked in place: a scrape copies K templates, not the table).
class template_collector final : public prometheus::Collectable {
public:
    struct inputs {
        std::function<core::pipeline::pipeline::templates_view(std::size_t k)> top;
        std::function<std::uint64_t()> evicted;
        std::function<std::uint64_t()> new_total;
        std::size_t top_k = 50;
    };
    explicit template_collector(inputs in)
        : in_(std::move(in)) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    inputs in_;
};

/// Families of single values each read from a function at scrape time: the runtime's gauges
/// and counters (queue, bytes in flight, connections, readiness, reloads, journal, store, log).
class value_collector final : public prometheus::Collectable {
public:
    struct sample {
        std::vector<prometheus::ClientMetric::Label> labels;
        std::function<std::optional<double>()> read; ///< nullopt: not exported at this scrape
    };
    struct family {
        std::string name;
        std::string help;
        prometheus::MetricType type = prometheus::MetricType::Gauge;
        std::vector<sample> samples;
    };
    explicit value_collector(std::vector<family> families)
        : families_(std::move(families)) {}
    /// A family is left out when none of its samples is exported.
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::vector<family> families_;
};

/// The Prometheus text format of what the collectors give, in their order.
std::string serialize_metrics(const std::vector<std::shared_ptr<prometheus::Collectable>>& collectors);

} // namespace faultline::server
