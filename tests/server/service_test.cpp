// The service: the metrics exported from the start, and what a reload reports as needing a
// restart (its parts have their own tests: dedupe_test, rates_test, metrics_test).
#include "faultline/server/service.hpp"

#include "faultline/config/config.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

faultline::config::config base_config() {
    auto c = faultline::config::default_config();
    c.state_dir = "";
    c.workers = 1;
    c.io_threads = 1;
    faultline::config::source_config gh;
    gh.name = "gh";
    c.sources["gh"] = gh;
    return c;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST_CASE("service: every ingest source is exported at 0 from the start") {
    const auto cfg = base_config();
    faultline::server::service svc(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), 1);
    const std::string text = svc.render_metrics().value();
    for (const char* src : {"firehose", "cloudwatch", "webhook:default", "webhook:gh"}) {
        CAPTURE(src);
        CHECK(text.find(std::string("faultline_events_ingested_total{source=\"") + src + "\"} 0") !=
              std::string::npos);
    }
    CHECK(text.find("faultline_internal_errors_total{where=\"io_loop\"} 0") != std::string::npos);
}

TEST_CASE("service: a reload names what it left for a restart") {
    const auto cfg = base_config();
    faultline::server::service svc(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), 1);
    auto next = cfg;
    next.templates.mining.drain.similarity = 0.6;
    next.templates.metrics_top_k = 7;
    next.firehose.dedupe_ttl = 60s;
    next.limits.body_bytes = 1 << 20;
    const auto restart = svc.reload(next, *faultline::core::match::pattern_set::compile(next.patterns));
    CHECK(contains(restart, "templates"));
    CHECK(contains(restart, "firehose.dedupe"));
    CHECK(contains(restart, "limits"));
    CHECK_FALSE(contains(restart, "listen"));
    // The same configuration again: nothing.
    CHECK(svc.reload(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns)).empty());
}
