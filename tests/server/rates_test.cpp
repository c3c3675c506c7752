// Rates per pattern and per group (server/src/rates.cpp), with an injected clock: the sample times
// are arguments.
#include "faultline/server/rates.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using faultline::server::rate_tracker;

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
