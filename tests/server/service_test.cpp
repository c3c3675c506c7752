// The service: the metrics exported from the start, and what a reload reports as needing a
// restart (its parts have their own tests: dedupe_test, rates_test, metrics_test).
#include "faultline/server/service.hpp"

#include "faultline/config/config.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
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

TEST_CASE("service: admin-listener connections are counted apart: they never take an API seat nor "
          "tip the balance") {
    const auto cfg = base_config();
    faultline::server::service svc(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), 2);
    using faultline::server::connection_seat;
    {
        // Three scrapes open on thread 0, where the admin listener is.
        connection_seat a(svc, 0, true), b(svc, 0, true), c(svc, 0, true);
        connection_seat api(svc, 1);
        CHECK(svc.api_connections() == 1);   // what limits.max_connections bounds
        CHECK(svc.connections() == 4);       // faultline_connections: all of them
        CHECK(svc.stats(0).open() == 0);     // faultline_io_thread_connections: API only
        CHECK(svc.least_loaded(1) == 0);     // thread 0 has no API connection: the next goes there
        connection_seat moved(std::move(a)); // a moved seat is counted once, still as admin
        CHECK(svc.connections() == 4);
        const std::string text = svc.render_metrics().value();
        CHECK(text.find("faultline_connections 4\n") != std::string::npos);
        CHECK(text.find("faultline_io_thread_connections{thread=\"0\"} 0\n") != std::string::npos);
    }
    CHECK(svc.connections() == 0);
    CHECK(svc.api_connections() == 0);
}

TEST_CASE("service: connections go to the I/O thread with the fewest, and are given back") {
    const auto cfg = base_config();
    faultline::server::service svc(cfg, *faultline::core::match::pattern_set::compile(cfg.patterns), 3);
    using faultline::server::connection_seat;
    const auto open = [&] {
        return std::vector<std::size_t>{svc.stats(0).open(), svc.stats(1).open(), svc.stats(2).open()};
    };
    std::vector<std::unique_ptr<connection_seat>> seats;
    // Every connection accepted by thread 0 (a kernel hash that favours one listener): spread.
    for (int i = 0; i < 30; ++i)
        seats.push_back(std::make_unique<connection_seat>(svc, svc.least_loaded(0)));
    CHECK(open() == std::vector<std::size_t>{10, 10, 10});
    CHECK(svc.connections() == 30);
    // On a tie the accepting thread keeps its connection (no handover).
    CHECK(svc.least_loaded(2) == 2);
    CHECK(svc.least_loaded(1) == 1);
    // Thread 1's connections close: the next ones go there, whoever accepts them.
    for (auto& s : seats)
        if (s->io_thread() == 1) s.reset();
    CHECK(open() == std::vector<std::size_t>{10, 0, 10});
    CHECK(svc.connections() == 20);
    CHECK(svc.least_loaded(0) == 1);
    CHECK(svc.least_loaded(2) == 1);
    // A seat that moved (with its connection, to the thread serving it) is counted once.
    connection_seat moved(svc, 1);
    connection_seat holder(std::move(moved));
    CHECK(open() == std::vector<std::size_t>{10, 1, 10});
    CHECK(svc.connections() == 21);
    const std::string text = svc.render_metrics().value();
    CHECK(text.find("faultline_io_thread_connections{thread=\"1\"} 1\n") != std::string::npos);
    CHECK(text.find("faultline_io_thread_connections{thread=\"2\"} 10\n") != std::string::npos);
    CHECK(text.find("faultline_connections 21\n") != std::string::npos);
    seats.clear();
    CHECK(open() == std::vector<std::size_t>{0, 1, 0});
}
