#include "faultline/core/mine/drain.hpp"
#include "faultline/core/mine/masker.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using faultline::core::mine::cluster;
using faultline::core::mine::drain;
using faultline::core::mine::drain_options;

namespace {

// Drain3's matching (depth 4, similarity 0.4, a template's variable tokens count 0, templates never
// settle): the tests of the tree's mechanics are written against it; the defaults' own rules have
// their test cases ("drain: variable tokens ...", "drain: settled templates ...").
#define DRAIN3(...)                                                                                          \
    drain_options {                                                                                          \
        .depth = 4, .similarity = 0.4, .variable_weight = 0, .settled_after = 0 __VA_OPT__(, ) __VA_ARGS__   \
    }

/// Template text -> cluster count, of every cluster.
std::multiset<std::string> texts(const drain& d) {
    std::multiset<std::string> out;
    d.for_each([&](const cluster& c) { out.insert(c.text); });
    return out;
}

struct labelled {
    std::string label;
    std::string message;
};

std::vector<labelled> read_corpus() {
    const std::string tsv = faultline::test::read_data("drain_corpus.tsv");
    std::vector<labelled> out;
    std::size_t pos = 0;
    while (pos < tsv.size()) {
        std::size_t end = tsv.find('\n', pos);
        if (end == std::string::npos) end = tsv.size();
        const std::string_view line(tsv.data() + pos, end - pos);
        const std::size_t tab = line.find('\t');
        REQUIRE(tab != std::string_view::npos);
        out.push_back({std::string(line.substr(0, tab)), std::string(line.substr(tab + 1))});
        pos = end + 1;
    }
    return out;
}

/// A small fast generator (xorshift64*), deterministic.
struct rng {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545f4914f6cdd1dULL;
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

} // namespace

TEST_CASE("drain: identical lines are one cluster") {
    drain d(DRAIN3());
    const auto a = d.add("connection refused by upstream");
    CHECK(a.created);
    CHECK_FALSE(a.generalized);
    CHECK(a.c->text == "connection refused by upstream");
    const std::uint64_t id = a.c->id;
    for (int i = 0; i < 5; ++i) {
        const auto b = d.add("connection refused by upstream");
        CHECK_FALSE(b.created);
        CHECK_FALSE(b.generalized);
        CHECK(b.c->id == id);
    }
    CHECK(d.size() == 1);
    CHECK(d.evicted() == 0);
}

TEST_CASE("drain: differing positions become <*>") {
    drain d(DRAIN3());
    const auto a = d.add("user alice logged in");
    CHECK(a.created);
    const auto b = d.add("user bob logged in");
    CHECK_FALSE(b.created);
    CHECK(b.generalized);
    CHECK(b.c->text == "user <*> logged in");
    CHECK(b.c->tokens == std::vector<std::string>{"user", "<*>", "logged", "in"});
    CHECK(b.c->previous_texts == std::vector<std::string>{"user alice logged in"});
    const auto c = d.add("user carol logged in");
    CHECK_FALSE(c.created);
    CHECK_FALSE(c.generalized);
    CHECK(c.c->previous_texts.size() == 1);
    CHECK(d.size() == 1);
}

TEST_CASE("drain: token counts, thresholds and routing") {
    SUBCASE("different token counts are different clusters") {
        drain d(DRAIN3());
        d.add("timeout after <NUM> ms");
        d.add("timeout after <NUM> ms on retry");
        CHECK(d.size() == 2);
    }
    SUBCASE("below the similarity threshold is a new cluster") {
        drain d(DRAIN3());
        d.add("disk a b c d full"); // 6 tokens: 2 equal of 6 < 0.4
        d.add("disk w x y z full");
        CHECK(d.size() == 2);
        d.add("disk a b c q r"); // 4 of 6 equal with the first: merged
        CHECK(texts(d) == std::multiset<std::string>{"disk a b c <*> <*>", "disk w x y z full"});
    }
    SUBCASE("the most similar cluster wins") {
        drain d(DRAIN3());
        d.add("job a b c d e");
        d.add("job v w x y z");
        const auto r = d.add("job v w x y q");
        CHECK(r.c->text == "job v w x y <*>");
        CHECK(d.size() == 2);
    }
    SUBCASE("first tokens route to different leaves") {
        drain d(DRAIN3());
        d.add("alice logged in");
        d.add("bob logged in");
        CHECK(d.size() == 2); // never compared: different leaves (Drain3 depth 4)
    }
    SUBCASE("tokens with digits go through the <*> node") {
        drain d(DRAIN3());
        d.add("user42 logged in");
        const auto r = d.add("user43 logged in");
        CHECK_FALSE(r.created);
        CHECK(r.c->text == "<*> logged in");
        CHECK(d.size() == 1);
    }
    SUBCASE("the last token never routes") {
        drain d(DRAIN3());
        d.add("alpha");
        const auto r = d.add("beta");
        CHECK(d.size() == 2); // one token: 0 of 1 equal
        CHECK(r.created);
        d.add("alpha beta");
        const auto s = d.add("alpha gamma"); // routed by "alpha" only, 1 of 2 equal
        CHECK(s.c->text == "alpha <*>");
    }
    SUBCASE("an empty line is one cluster with an empty text") {
        drain d(DRAIN3());
        const auto a = d.add("");
        CHECK(a.created);
        CHECK(a.c->text.empty());
        CHECK(a.c->tokens.empty());
        const auto b = d.add("   ");
        CHECK_FALSE(b.created);
        CHECK(b.c->id == a.c->id);
        CHECK(d.size() == 1);
    }
    SUBCASE("repeated spaces are one separator") {
        drain d(DRAIN3());
        d.add("a  b c");
        CHECK(d.add(" a b  c ").c->text == "a b c");
        CHECK(d.size() == 1);
    }
}

TEST_CASE("drain: max_children overflow goes to the <*> child") {
    const char* lines[] = {"alpha one two", "beta one two", "gamma one two", "delta one two",
                           "epsilon one two"};
    SUBCASE("default: every first token has its own node") {
        drain d(DRAIN3());
        for (const char* l : lines)
            d.add(l);
        CHECK(d.size() == 5);
    }
    SUBCASE("max_children 3") {
        drain d(DRAIN3(.max_children = 3));
        // alpha, beta: nodes; gamma: the last slot becomes "<*>" (Drain3), gamma's cluster is
        // there; delta and epsilon are searched in "<*>" and merge with gamma's cluster.
        for (const char* l : lines)
            d.add(l);
        CHECK(texts(d) == std::multiset<std::string>{"alpha one two", "beta one two", "<*> one two"});
        CHECK(d.add("alpha one two").c->text == "alpha one two");
        CHECK(d.add("beta one two").c->text == "beta one two");
        CHECK(d.node_count() == 4); // the 3-token node, "alpha", "beta", "<*>"
    }
    SUBCASE("max_children 1: everything under <*>") {
        drain d(DRAIN3(.max_children = 1));
        d.add("alpha one two");
        const auto r = d.add("beta one two");
        CHECK(r.c->text == "<*> one two");
        CHECK(d.size() == 1);
    }
}

TEST_CASE("drain: least recently used clusters are evicted") {
    drain d(DRAIN3(.max_clusters = 3));
    d.add("a");
    d.add("b c");
    d.add("d e f");
    CHECK(d.size() == 3);
    const auto touched = d.add("a");
    CHECK_FALSE(touched.created);
    const std::uint64_t a_used = touched.c->last_used;
    d.add("g h i j"); // evicts "b c", the least recently used
    CHECK(d.size() == 3);
    CHECK(d.evicted() == 1);
    CHECK(texts(d) == std::multiset<std::string>{"a", "d e f", "g h i j"});
    d.add("b c"); // evicts "d e f"
    CHECK(d.evicted() == 2);
    CHECK(texts(d) == std::multiset<std::string>{"a", "b c", "g h i j"});
    d.add("k l m n o"); // evicts "a"
    CHECK(texts(d) == std::multiset<std::string>{"b c", "g h i j", "k l m n o"});
    CHECK(d.evicted() == 3);
    std::uint64_t min_used = UINT64_MAX;
    d.for_each([&](const cluster& c) { min_used = std::min(min_used, c.last_used); });
    CHECK(min_used > a_used);
    // Evicted paths are gone from the tree: each cluster keeps only its token-count node and at
    // most one leading-token node.
    CHECK(d.node_count() <= 2 * d.size());
    // A re-added evicted line is a new cluster.
    const auto again = d.add("a");
    CHECK(again.created);
    CHECK(d.size() == 3);
}

TEST_CASE("drain: previous texts keep the last 8") {
    drain d(DRAIN3());
    std::vector<std::string> base;
    for (int i = 0; i < 20; ++i)
        base.push_back("t" + std::string(1, static_cast<char>('a' + i)));
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& t : v)
            s += (s.empty() ? "" : " ") + t;
        return s;
    };
    d.add(join(base));
    std::vector<std::string> expected_texts{join(base)};
    std::vector<std::string> tpl = base;
    for (std::size_t i = 1; i <= 10; ++i) {
        std::vector<std::string> line = base;
        line[i] = "x";
        const auto r = d.add(join(line));
        REQUIRE_FALSE(r.created);
        CHECK(r.generalized);
        tpl[i] = "<*>";
        CHECK(r.c->text == join(tpl));
        expected_texts.push_back(join(tpl));
    }
    CHECK(d.size() == 1);
    d.for_each([&](const cluster& c) {
        // 11 texts so far: the current one and the 10 before it, of which the last 8 are kept.
        CHECK(c.previous_texts ==
              std::vector<std::string>(expected_texts.begin() + 2, expected_texts.end() - 1));
    });
}

TEST_CASE("drain: max_tokens drops the extra tokens") {
    drain d(DRAIN3(.max_tokens = 4));
    const auto a = d.add("a b c d e f");
    CHECK(a.c->text == "a b c d");
    const auto b = d.add("a b c d x y z");
    CHECK_FALSE(b.created);
    CHECK_FALSE(b.generalized);
    CHECK(d.size() == 1);
}

TEST_CASE("drain: restore") {
    drain d(DRAIN3());
    cluster* r = d.restore({"user", "<*>", "logged", "in"}, {"user alice logged in"});
    CHECK(r->text == "user <*> logged in");
    CHECK(r->previous_texts == std::vector<std::string>{"user alice logged in"});
    CHECK(d.size() == 1);
    const std::uint64_t id = r->id;
    const auto a = d.add("user carol logged in");
    CHECK_FALSE(a.created);
    CHECK_FALSE(a.generalized);
    CHECK(a.c->id == id);

    SUBCASE("subject to the cap") {
        drain small(DRAIN3(.max_clusters = 2));
        small.restore({"a", "b"}, {});
        small.restore({"c", "d", "e"}, {});
        small.add("a b");         // touches the first
        small.restore({"f"}, {}); // evicts "c d e"
        CHECK(small.size() == 2);
        CHECK(small.evicted() == 1);
        CHECK(texts(small) == std::multiset<std::string>{"a b", "f"});
    }
    SUBCASE("previous texts keep the last 8") {
        std::vector<std::string> prev;
        for (int i = 0; i < 12; ++i)
            prev.push_back("p" + std::to_string(i));
        cluster* c = d.restore({"x", "<*>"}, prev);
        CHECK(c->previous_texts == std::vector<std::string>(prev.begin() + 4, prev.end()));
    }
    SUBCASE("the empty template") {
        cluster* e = d.restore({}, {});
        CHECK(e->text.empty());
        CHECK(d.add("").c->id == e->id);
    }
}

TEST_CASE("drain: parameters") {
    SUBCASE("bad options throw") {
        CHECK_THROWS(drain(drain_options{.depth = 2}));
        CHECK_THROWS(drain(DRAIN3(.max_children = 0)));
        CHECK_THROWS(drain(DRAIN3(.max_clusters = 0)));
        CHECK_THROWS(drain(DRAIN3(.max_tokens = 0)));
    }
    SUBCASE("depth 3: no leading-token nodes") {
        drain d(drain_options{.depth = 3});
        d.add("alice logged in");
        const auto r = d.add("bob logged in");
        CHECK(r.c->text == "<*> logged in");
        CHECK(d.size() == 1);
        CHECK(d.node_count() == 1);
    }
    SUBCASE("depth 4 routes by the first token") {
        drain d(drain_options{.depth = 4});
        d.add("a b c d e");
        CHECK(d.add("a x c d e").c->text == "a <*> c d e");
        CHECK(d.size() == 1);
    }
    SUBCASE("depth 5 routes by the first two tokens") {
        drain d(drain_options{.depth = 5});
        d.add("a b c d e");
        d.add("a x c d e");
        CHECK(d.size() == 2);
        CHECK(d.add("a b c d q").c->text == "a b c d <*>");
        CHECK(d.size() == 2);
        CHECK(d.node_count() == 4); // length, "a", "b", "x"
    }
    SUBCASE("similarity 1.0 never merges different lines") {
        drain d(drain_options{.similarity = 1.0});
        d.add("a b c");
        d.add("a b d");
        d.add("a b c");
        CHECK(texts(d) == std::multiset<std::string>{"a b c", "a b d"});
    }
    SUBCASE("similarity 0 merges every line of a leaf") {
        drain d(drain_options{.depth = 4, .similarity = 0.0});
        d.add("a b c");
        d.add("a x y");
        CHECK(texts(d) == std::multiset<std::string>{"a <*> <*>"});
    }
}

// The labelled corpus of make_drain_corpus.py: grouping accuracy as in the Drain papers (an
// event is parsed correctly when the events of its cluster are exactly the events of its label)
// and the final templates against drain_corpus.golden (FAULTLINE_UPDATE_GOLDEN=1 rewrites it).
TEST_CASE("drain: labelled corpus") {
    const std::vector<labelled> corpus = read_corpus();
    REQUIRE(corpus.size() > 2000);
    drain d;
    std::vector<std::uint64_t> cluster_of;
    cluster_of.reserve(corpus.size());
    std::string masked;
    for (const labelled& e : corpus) {
        faultline::core::mine::mask_message(e.message, masked);
        REQUIRE(masked.size() < faultline::core::mine::max_template_bytes); // never cut
        cluster_of.push_back(d.add(masked).c->id);
    }
    CHECK(d.evicted() == 0);

    std::map<std::uint64_t, std::map<std::string, std::size_t>> labels_of_cluster;
    std::map<std::string, std::size_t> events_of_label;
    for (std::size_t i = 0; i < corpus.size(); ++i) {
        ++labels_of_cluster[cluster_of[i]][corpus[i].label];
        ++events_of_label[corpus[i].label];
    }
    std::size_t correct = 0;
    for (const auto& [id, labels] : labels_of_cluster)
        if (labels.size() == 1 && labels.begin()->second == events_of_label[labels.begin()->first])
            correct += labels.begin()->second;
    const double accuracy = static_cast<double>(correct) / static_cast<double>(corpus.size());
    MESSAGE("drain grouping accuracy: " << accuracy << " (" << d.size() << " clusters, "
                                        << events_of_label.size() << " labels)");
    // 0.963 since the defaults follow Loghub-2k's ground truth (issue 12): a plain word where a
    // settled template has another is a different event there ("GET" / "POST", "client
    // WindowsUpdateAgent." / "client SPP."), so this corpus's java_resource_access ("on DELETE
    // request" / "on PUT request") and java_illegal_state ("in state CANCELLED" / "SHIPPED")
    // become several templates each; every other label is exactly one template.
    CHECK(accuracy >= 0.963);

    // label (the most frequent of the cluster, ties to the smaller name) TAB template, sorted.
    std::map<std::uint64_t, std::string> text_of;
    d.for_each([&](const cluster& c) { text_of[c.id] = c.text; });
    std::vector<std::string> lines;
    for (const auto& [id, labels] : labels_of_cluster) {
        const auto top = std::max_element(labels.begin(), labels.end(),
                                          [](const auto& a, const auto& b) { return a.second < b.second; });
        lines.push_back(top->first + "\t" + text_of[id]);
    }
    std::sort(lines.begin(), lines.end());
    std::string actual;
    for (const std::string& l : lines)
        actual += l + "\n";
    if (const char* update = std::getenv("FAULTLINE_UPDATE_GOLDEN");
        update && std::string_view(update) == "1")
        faultline::test::write_file(faultline::test::data_path("drain_corpus.golden"), actual);
    CHECK(actual == faultline::test::read_data("drain_corpus.golden"));
}

// 1 000 000 distinct random lines: the cap holds at every point, every cluster beyond it was
// evicted, and the tree only holds the live clusters' paths.
TEST_CASE("drain: bounded memory under random lines") {
    constexpr std::size_t cap = 1000;
    constexpr std::size_t lines = 1'000'000;
    drain d(DRAIN3(.max_clusters = cap));
    rng r{0x9e3779b97f4a7c15ULL};
    std::string line;
    std::uint64_t created = 0;
    bool within = true;
    std::size_t max_nodes = 0;
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789_-./:";
    for (std::size_t i = 0; i < lines; ++i) {
        line.clear();
        const std::size_t n = 1 + r.below(40);
        for (std::size_t t = 0; t < n; ++t) {
            if (t) line += ' ';
            const std::uint64_t bits = r.next();
            const std::size_t len = 2 + (bits & 7);
            for (std::size_t k = 0; k < len; ++k)
                line += alphabet[(bits >> (3 + 6 * k)) % (sizeof alphabet - 1)];
        }
        if (d.add(line).created) ++created;
        within = within && d.size() <= cap;
        max_nodes = std::max(max_nodes, d.node_count());
    }
    CHECK(within);
    CHECK(d.size() == cap);
    CHECK(created > lines - lines / 100); // random lines hardly ever merge
    CHECK(d.evicted() == created - d.size());
    // Each live cluster's path: its token-count node and at most one leading-token node.
    CHECK(max_nodes <= 2 * cap);
    CHECK(d.node_count() <= 2 * d.size());
}

TEST_CASE("drain: variable tokens") {
    using faultline::core::mine::is_variable;
    for (const char* t :
         {"42", "<NUM>", "clients<NUM>.google.com:<NUM>", "<*>", "/var/log/x", "a.b.c", "com.apple.x:", "Mon",
          "Jul", "'alice'", "\"orders\",", "user=root", "rhost=1.2.3.4"}) {
        CAPTURE(t);
        CHECK(is_variable(t));
    }
    for (const char* t : {"client", "SPP.", "\"GET", "key=", "=", "a.b", "Monday", "", "HTTPS"}) {
        CAPTURE(t);
        CHECK_FALSE(is_variable(t));
    }
    SUBCASE("a variable token routes as <*>") {
        drain d(drain_options{.depth = 4, .settled_after = 0});
        d.add("proxy.example.com:<NUM> open through proxy");
        const auto r = d.add("clients<NUM>.google.com:<NUM> open through proxy");
        CHECK_FALSE(r.created);
        CHECK(r.c->text == "<*> open through proxy");
    }
    SUBCASE("a template's variable positions count variable_weight") {
        // 6 tokens, 2 equal, the template has 2 variable positions: (2 + 2 w) / 6.
        for (const double w : {0.5, 1.0}) {
            CAPTURE(w);
            drain d(drain_options{.depth = 4, .similarity = 0.55, .variable_weight = w, .settled_after = 0});
            d.add("disk check <NUM> <NUM> full now");
            const auto r = d.add("disk check <NUM> <NUM> empty later");
            CHECK(r.created == (w == 0.5)); // 0.5 < 0.55 <= 0.67
        }
    }
}

TEST_CASE("drain: settled templates take no new plain word") {
    SUBCASE("settled after 2 events") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 2});
        d.add("session opened for alice by root");
        const auto young = d.add("session opened for bob by root"); // 1 event: not settled yet
        CHECK_FALSE(young.created);
        CHECK(young.c->text == "session opened for <*> by root");
        const auto other = d.add("session opened for carol by admin"); // a new plain word for "root"
        CHECK(other.created);
        CHECK(d.size() == 2);
        // A variable token in that position is no new word: it joins.
        CHECK_FALSE(d.add("session opened for carol by 'admin'").created);
    }
    SUBCASE("the events a line stands for count") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 3});
        d.add("client WindowsUpdateAgent started", 3);
        CHECK(d.add("client SPP started").created);
        CHECK(d.size() == 2);
    }
    SUBCASE("settled_after 0: never (Drain3)") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 0});
        d.add("client WindowsUpdateAgent started", 100);
        const auto r = d.add("client SPP started");
        CHECK_FALSE(r.created);
        CHECK(r.c->text == "client <*> started");
    }
    SUBCASE("nor another constant where they have a plain word, after a bracket too") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 2});
        d.add("(root) CMD (run-parts /etc/cron.hourly)", 2);
        // "(/projects/..." is a path where the template has the word "run-parts": another event.
        CHECK(d.add("(root) CMD (/projects/tbird/get_temps /etc/cron.hourly)", 2).created);
        CHECK(d.add("(root) CMD (logrotate /etc/cron.hourly)").created);
        CHECK(d.size() == 3);
        // A variable there is no new constant: "SOCKS5" joins neither; a number joins.
        drain e(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 2});
        e.add("a.example.com:80 open through proxy p.example.com:80 HTTPS", 2);
        CHECK(e.add("a.example.com:80 open through proxy s.example.com:80 SOCKS5").created);
        CHECK_FALSE(e.add("b.example.com:81 open through proxy p.example.com:80 HTTPS").created);
    }
    SUBCASE("the word after \"user\" is a value") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 2});
        d.add("session closed for user cyrus", 5);
        const auto r = d.add("session closed for user news");
        CHECK_FALSE(r.created);
        CHECK(r.c->text == "session closed for user <*>");
        d.add("Invalid user admin from <IP>", 5);
        CHECK_FALSE(d.add("Invalid user oracle from <IP>").created);
        // Elsewhere a new plain word still makes a new event.
        CHECK(d.add("session closed for group cyrus").created);
    }
    SUBCASE("restored templates keep their events") {
        drain d(drain_options{.depth = 4, .similarity = 0.5, .settled_after = 2});
        d.restore({"client", "WindowsUpdateAgent", "started"}, {}, 5);
        CHECK(d.add("client SPP started").created);
    }
    CHECK_THROWS(drain(drain_options{.variable_weight = 1.5}));
}
