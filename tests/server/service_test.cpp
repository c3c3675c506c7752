// The service's I/O-free parts: rates per pattern and per group (with an injected clock: the
// sample times are arguments), the metrics exported from the start, and what a reload reports
// as needing a restart.
#include "faultline/server/service.hpp"

#include "faultline/config/config.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using faultline::server::rate_tracker;

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

TEST_CASE("rate_tracker: rates per pattern, and per group when asked") {
    rate_tracker r;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    rate_tracker::group_totals g0, g1;
    g0["a"] = {10, 0};
    g0["b"] = {0, 0};
    g1["a"] = {40, 0};
    g1["b"] = {0, 60};
    r.sample(t0, {10, 0}, g0);
    r.sample(t0 + 30s, {40, 60}, g1);
    CHECK(r.rates(60s) == std::vector<double>{1.0, 2.0});
    CHECK(r.rates(60s, "a") == std::vector<double>{1.0, 0.0});
    CHECK(r.rates(60s, "b") == std::vector<double>{0.0, 2.0});
    CHECK(r.rates(60s, "unknown").empty());
    // A group first sampled now has no rate yet (not its whole history divided by the window).
    rate_tracker::group_totals g2 = g1;
    g2["c"] = {1000, 0};
    r.sample(t0 + 60s, {1040, 60}, g2);
    CHECK(r.rates(60s, "c").empty());
}

TEST_CASE("service: every ingest source is exported at 0 from the start") {
    const auto cfg = base_config();
    faultline::server::service svc(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), 1);
    const std::string text = svc.render_metrics();
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

TEST_CASE("dedupe_cache: what a snapshot lists: acknowledged and journaled ids, not those in flight") {
    using faultline::server::dedupe_cache;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    dedupe_cache c(100, 900s);
    CHECK(c.begin("acked", t0) == dedupe_cache::state::fresh);
    CHECK(c.begin("journaled", t0) == dedupe_cache::state::fresh);
    CHECK(c.begin("queued", t0) == dedupe_cache::state::fresh);
    CHECK(c.begin("failed", t0) == dedupe_cache::state::fresh);
    c.finish("acked", true, t0 + 1s);
    // Committed with its journal record queued, its 200 waiting for the sync: a snapshot taken
    // now holds its counts and deletes the segment with its record, so it must hold the id too.
    c.journaled("journaled", t0 + 2s);
    c.journaled("failed", t0 + 2s);
    c.finish("failed", false, t0 + 3s); // the journal write failed: answered 500, forgotten
    std::vector<std::string> listed;
    for (const auto& [id, at] : c.acknowledged())
        listed.push_back(id);
    std::sort(listed.begin(), listed.end());
    CHECK(listed == std::vector<std::string>{"acked", "journaled"});
    // A retry meanwhile still waits for the verdict; afterwards it is a duplicate.
    CHECK(c.begin("journaled", t0 + 2s) == dedupe_cache::state::in_flight);
    c.finish("journaled", true, t0 + 4s);
    CHECK(c.begin("journaled", t0 + 5s) == dedupe_cache::state::acknowledged);
    CHECK(c.begin("failed", t0 + 5s) == dedupe_cache::state::fresh);
    // Acknowledged ids expire after the TTL (once nothing older is in flight).
    c.finish("queued", false, t0 + 5s);
    CHECK(c.begin("acked", t0 + 1s + 901s) == dedupe_cache::state::fresh);
}
