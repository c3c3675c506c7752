// The delivery ids this process remembers (server/src/dedupe.cpp), with an injected clock.
#include "faultline/server/dedupe.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

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

TEST_CASE(
    "dedupe_cache: bounded by count and by age; a failed delivery is forgotten, one in flight is busy") {
    using faultline::server::dedupe_cache;
    using state = dedupe_cache::state;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    dedupe_cache c(3, 60s);
    // Hostile first: ids by the thousand never hold more than the capacity.
    for (int i = 0; i < 5000; ++i) {
        const std::string id = "flood-" + std::to_string(i);
        REQUIRE(c.begin(id, t0) == state::fresh);
        c.finish(id, true, t0);
    }
    CHECK(c.size() <= 3);
    CHECK(c.begin("flood-4999", t0 + 1s) == state::acknowledged); // the newest are kept
    CHECK(c.begin("flood-0", t0 + 1s) == state::fresh);           // the oldest went
    c.finish("flood-0", false, t0 + 1s);                          // failed: forgotten
    CHECK(c.begin("flood-0", t0 + 2s) == state::fresh);
    // While in flight a retry is told to come back; once counted it is a duplicate.
    CHECK(c.begin("flood-0", t0 + 2s) == state::in_flight);
    c.finish("flood-0", true, t0 + 3s);
    CHECK(c.begin("flood-0", t0 + 4s) == state::acknowledged);
    // Past the TTL (the clock is the caller's) it is new again.
    CHECK(c.begin("flood-0", t0 + 3s + 61s) == state::fresh);
    // What a restart restores older than the TTL is not remembered.
    dedupe_cache r(10, 60s);
    r.remember("old", t0, t0 + 120s);
    r.remember("recent", t0 + 100s, t0 + 120s);
    CHECK(r.begin("old", t0 + 120s) == state::fresh);
    CHECK(r.begin("recent", t0 + 120s) == state::acknowledged);
}

TEST_CASE("dedupe_cache: a mark splits the ids a snapshot holds from those that came after it") {
    using faultline::server::dedupe_cache;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    dedupe_cache c(100, 900s);
    auto listed = [&](std::uint64_t upto) {
        std::vector<std::string> out;
        for (const auto& [id, at] : c.acknowledged(upto))
            out.push_back(id);
        std::sort(out.begin(), out.end());
        return out;
    };
    for (const char* id :
         {"before-acked", "before-journaled", "before-failed", "in-flight", "after-acked", "after-journaled"})
        REQUIRE(c.begin(id, t0) == dedupe_cache::state::fresh);
    c.finish("before-acked", true, t0 + 1s);
    c.journaled("before-journaled", t0 + 1s);
    c.journaled("before-failed", t0 + 1s);
    // The snapshot's hold: only the mark is taken there.
    const std::uint64_t mark = c.mark();
    c.finish("after-acked", true, t0 + 2s);
    c.journaled("after-journaled", t0 + 2s);
    c.finish("before-journaled", true, t0 + 3s); // its 200 after the mark: still before it
    c.journaled("in-flight", t0 + 3s);
    // Deliveries after the mark are not in the snapshot's counts: their ids must not be in it.
    CHECK(listed(mark) == std::vector<std::string>{"before-acked", "before-failed", "before-journaled"});
    CHECK(listed(UINT64_MAX) == std::vector<std::string>{"after-acked", "after-journaled", "before-acked",
                                                         "before-failed", "before-journaled", "in-flight"});
    // A delivery whose journal write failed is forgotten, before the mark or after it.
    c.finish("before-failed", false, t0 + 4s);
    c.finish("after-journaled", false, t0 + 4s);
    CHECK(listed(mark) == std::vector<std::string>{"before-acked", "before-journaled"});
    CHECK(listed(UINT64_MAX) ==
          std::vector<std::string>{"after-acked", "before-acked", "before-journaled", "in-flight"});
    // A restored id counts from where it is restored, not before an earlier mark.
    const std::uint64_t later = c.mark();
    c.remember("restored", t0 + 4s, t0 + 5s);
    CHECK(listed(later) ==
          std::vector<std::string>{"after-acked", "before-acked", "before-journaled", "in-flight"});
    CHECK(c.begin("restored", t0 + 5s) == dedupe_cache::state::acknowledged);
}

TEST_CASE("dedupe_cache: a copy a few entries at a time, while deliveries come and go, lists each id "
          "before the mark once") {
    using faultline::server::dedupe_cache;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    dedupe_cache c(100000, 900s);
    // Before the mark: acknowledged, journaled (answered later), in flight (journaled after the
    // mark), and some whose journal write fails during the copy.
    for (int i = 0; i < 3000; ++i) {
        const std::string id = "id-" + std::to_string(i);
        REQUIRE(c.begin(id, t0) == dedupe_cache::state::fresh);
        if (i % 3 == 0) c.finish(id, true, t0);
        if (i % 3 == 1) c.journaled(id, t0);
    }
    const std::uint64_t mark = c.mark();
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> copied;
    std::thread copy([&] { copied = c.acknowledged(mark, 1); });
    for (int i = 0; i < 3000; ++i) {
        const std::string id = "id-" + std::to_string(i);
        if (i % 3 == 1) c.finish(id, i % 2 == 0, t0 + 1s); // answered, or its write failed
        if (i % 3 == 2) c.journaled(id, t0 + 1s);          // after the mark
        const std::string later = "later-" + std::to_string(i);
        c.begin(later, t0 + 1s);
        c.finish(later, true, t0 + 1s);
    }
    copy.join();
    std::vector<std::string> ids;
    for (const auto& [id, at] : copied)
        ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end()); // none twice
    for (const auto& id : ids) {
        REQUIRE(id.rfind("id-", 0) == 0); // nothing that came after the mark
        const int i = std::stoi(id.substr(3));
        CHECK(i % 3 != 2);
    }
    // Every acknowledged one is there; the journaled ones are there unless forgotten first.
    int acked = 0, journaled = 0;
    for (const auto& id : ids)
        (std::stoi(id.substr(3)) % 3 == 0 ? acked : journaled)++;
    CHECK(acked == 1000);
    CHECK(journaled >= 500);
    CHECK(journaled <= 1000);
    // Once the copy is done, the copy left nothing behind: the table lists what it holds, and
    // ages out from its oldest end (a cursor left at the front would stop that).
    CHECK(c.acknowledged().size() == 1000 + 500 + 1000 + 3000);
    CHECK(c.begin("id-0", t0 + 902s) == dedupe_cache::state::fresh);
    CHECK(c.begin("id-3", t0 + 902s) == dedupe_cache::state::fresh);
}
