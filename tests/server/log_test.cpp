#include "faultline/server/log.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using faultline::server::log::line_queue;
using faultline::server::log::rate_limiter;
using namespace std::chrono_literals;

TEST_CASE("log: the queue holds at most its bytes; what does not fit is dropped and counted") {
    line_queue q(20);
    CHECK(q.push("0123456789\n"));       // 11 bytes
    CHECK_FALSE(q.push("abcdefghij\n")); // 22 > 20: dropped
    CHECK(q.push("xyz\n"));              // 15
    CHECK(1u == q.dropped());
    auto lines = q.take();
    REQUIRE(2u == lines.size());
    CHECK("0123456789\n" == lines[0]);
    CHECK("xyz\n" == lines[1]);
    CHECK(q.empty());
    CHECK(q.push("abcdefghij\n")); // room again once taken
    CHECK(1u == q.dropped());
}

TEST_CASE(
    "log: the rate limiter passes per_second lines per key and second, then says how many it held back") {
    rate_limiter r(2);
    const auto t0 = std::chrono::steady_clock::time_point(100s);
    CHECK(r.admit("400 /v1/firehose", t0) == std::optional<std::uint64_t>(0));
    CHECK(r.admit("400 /v1/firehose", t0 + 100ms) == std::optional<std::uint64_t>(0));
    CHECK_FALSE(r.admit("400 /v1/firehose", t0 + 200ms)); // third in the same second
    CHECK_FALSE(r.admit("400 /v1/firehose", t0 + 900ms));
    CHECK(r.admit("413 /v1/firehose", t0 + 900ms) == std::optional<std::uint64_t>(0)); // its own key
    CHECK(r.admit("400 /v1/firehose", t0 + 1s) ==
          std::optional<std::uint64_t>(2)); // next second: 2 held back
    CHECK(r.admit("400 /v1/firehose", t0 + 1500ms) == std::optional<std::uint64_t>(0));
}
