// Configuration: the embedded default, strict parsing, every problem reported with its place.
#include "faultline/config/config.hpp"
#include "faultline/config/defaults.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace faultline::config;

namespace {
bool has_problem(const parse_result& r, const std::string& needle) {
    return std::any_of(r.problems.begin(), r.problems.end(),
                       [&](const problem& p) { return p.to_string().find(needle) != std::string::npos; });
}
std::string all(const parse_result& r) {
    std::string s;
    for (const auto& p : r.problems)
        s += p.to_string() + "\n";
    return s;
}
} // namespace

TEST_CASE("config: the embedded default is valid, compiles, and holds the curated pattern set") {
    auto r = parse(default_config_yaml(), "default.yaml", /*compile_patterns=*/true);
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const config& c = *r.value;
    CHECK("127.0.0.1:8080" == c.listen);
    CHECK("./faultline-state" == c.state_dir);
    REQUIRE(c.sources.count("default") == 1);
    CHECK(auth_type::none == c.sources.at("default").auth.type);
    CHECK(c.patterns.size() >= 16);
    for (const auto* name : {"access_denied", "connection_refused", "crash", "db_error", "deprecated",
                             "error_level", "exception", "http_5xx", "java_stack", "oom", "retry", "slow",
                             "throttling", "timeout", "traceback", "warn_level"}) {
        auto it =
            std::find_if(c.patterns.begin(), c.patterns.end(), [&](const auto& p) { return p.name == name; });
        REQUIRE_MESSAGE(it != c.patterns.end(), name);
        CHECK_MESSAGE(!it->description.empty(), name);
    }
    for (const auto& p : c.patterns)
        CHECK_MESSAGE(!p.description.empty(), p.name);
    // Defaults of SPEC §3.
    CHECK((std::size_t{16} << 10) == c.limits.header_bytes);
    CHECK((std::size_t{128} << 20) == c.limits.body_bytes);
    CHECK((std::size_t{256} << 20) == c.limits.decompressed_bytes);
    CHECK(milliseconds(10'000) == c.limits.header_timeout);
    CHECK(milliseconds(60'000) == c.limits.body_timeout);
    CHECK(milliseconds(75'000) == c.limits.idle_timeout);
    CHECK(std::size_t{10'000} == c.limits.max_connections);
    CHECK((std::size_t{1} << 30) == c.limits.inflight_bytes);
    CHECK(milliseconds(25'000) == c.limits.shutdown_grace);
    CHECK(std::size_t{100} == c.max_groups);
}

TEST_CASE("config: the embedded default's seed patterns find exactly what the seed set finds") {
    // Some default regexes are spelled for speed (timeout); what they find must not change.
    auto r = parse(default_config_yaml(), "default.yaml", /*compile_patterns=*/true);
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const auto seed = faultline::test::bench_patterns();
    REQUIRE(r.compiled);
    faultline::core::match::matcher ours(r.compiled), theirs(seed);
    std::vector<std::string> messages = {"timeout",           "TIMEOUT after 3s",
                                         "Timed Out",         "timed out",
                                         "time out",          "timedout",
                                         "TimedOut",          "timeouts",
                                         "stdout timeout",    "time  out",
                                         "timed  out",        "timeed out",
                                         "(timeout)",         "timeout_ms",
                                         "timed-out",         "connect timed out: 10.0.0.1",
                                         "deadline exceeded", "context deadline exceeded!",
                                         "about output",      "read: i/o timeout",
                                         "x_timed_out",       "9timeout",
                                         "timeout9",          "time\tout",
                                         "timedoutx",         "xtimedout",
                                         "time outs",         "TIME OUT",
                                         "a timed out b",     ""};
    std::ifstream corpus(FAULTLINE_TEST_DATA "/drain_corpus.tsv"); // 3 000 messages of real shapes
    for (std::string line; std::getline(corpus, line);)
        messages.push_back(line.substr(line.find('\t') + 1));
    REQUIRE(messages.size() > 3000);
    const auto in_seed = [&](const std::string& name) {
        return std::any_of(seed->patterns().begin(), seed->patterns().end(),
                           [&](const auto& p) { return p.name == name; });
    };
    std::size_t timeouts = 0;
    for (const auto& m : messages) {
        std::vector<std::string> a, b;
        for (const auto id : ours.match(m))
            if (in_seed(ours.set().patterns()[id].name)) a.push_back(ours.set().patterns()[id].name);
        for (const auto id : theirs.match(m))
            b.push_back(theirs.set().patterns()[id].name);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        CHECK_MESSAGE(a == b, m);
        timeouts += std::count(b.begin(), b.end(), "timeout");
    }
    CHECK(timeouts > 20); // the inputs do exercise the pattern
}

TEST_CASE("config: the default round-trips through dump()") {
    const config c = default_config();
    const std::string text = dump(c);
    auto again = parse(text, "dumped.yaml");
    REQUIRE_MESSAGE(again.value.has_value(), (all(again) + text));
    CHECK(c.patterns.size() == again.value->patterns.size());
    CHECK(c.listen == again.value->listen);
    CHECK(c.limits.body_bytes == again.value->limits.body_bytes);
    CHECK(c.limits.idle_timeout == again.value->limits.idle_timeout);
    for (std::size_t i = 0; i < c.patterns.size(); ++i) {
        CHECK(c.patterns[i].regex == again.value->patterns[i].regex);
        CHECK(c.patterns[i].caseless == again.value->patterns[i].caseless);
    }
}

TEST_CASE("config: secrets are redacted in dump()") {
    auto r = parse("sources:\n  gh:\n    auth: {type: github, secrets: [s3cr3t-value]}\nfirehose:\n  "
                   "access_keys: [k3y-value]\n",
                   "t.yaml");
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const std::string text = dump(*r.value);
    CHECK(text.find("s3cr3t-value") == std::string::npos);
    CHECK(text.find("k3y-value") == std::string::npos);
    CHECK(text.find("redacted") != std::string::npos);
    // The printed configuration loads only once the secrets are put back: the placeholder is
    // refused where a secret goes, naming the field (it used to be installed as a key).
    auto again = parse(text, "printed.yaml");
    REQUIRE_FALSE(again.value.has_value());
    const std::string problems = all(again);
    CHECK(problems.find("firehose.access_keys[0]: <redacted> is what check-config prints") !=
          std::string::npos);
    CHECK(problems.find("sources.gh.auth.secrets[0]: <redacted>") != std::string::npos);
    CHECK_FALSE(parse("reload_token: <redacted>\n", "t.yaml").value.has_value());
}

TEST_CASE("config: timestamp_field (never used) is refused by name") {
    auto r = parse("sources:\n  a:\n    timestamp_field: ts\n", "t.yaml");
    REQUIRE_FALSE(r.value.has_value());
    CHECK(all(r).find("sources.a.timestamp_field: is not a setting") != std::string::npos);
}

TEST_CASE("config: every problem is reported at once, with file:line:col and key path") {
    const char* yaml = "listen: 1.2.3.4:80\n"
                       "limits:\n"
                       "  body_bytes: lots\n"
                       "  header_timeout: 10 seconds\n"
                       "  max_connections: -3\n"
                       "colour: blue\n"
                       "sources:\n"
                       "  gh:\n"
                       "    auth: {type: github}\n"
                       "  \"bad name!\":\n"
                       "    auth: none\n"
                       "patterns:\n"
                       "  - name: a\n"
                       "    class: fatal\n"
                       "    regex: x\n"
                       "  - class: error\n";
    auto r = parse(yaml, "bad.yaml");
    CHECK_FALSE(r.value.has_value());
    INFO(all(r));
    CHECK(has_problem(r, "bad.yaml:3:15: limits.body_bytes: expected a size"));
    CHECK(has_problem(r, "bad.yaml:4:19: limits.header_timeout: expected a duration"));
    CHECK(has_problem(r, "limits.max_connections: expected a non-negative integer"));
    CHECK(has_problem(r, "bad.yaml:6:1: colour: unknown key"));
    CHECK(has_problem(r, "sources.gh.auth.secrets: at least one secret"));
    CHECK(has_problem(r, "a source name may only hold"));
    CHECK(has_problem(r, "patterns[0].class: expected error, warn or info"));
    CHECK(has_problem(r, "patterns[1].name: missing"));
    CHECK(has_problem(r, "patterns[1].regex: missing"));
    CHECK(r.problems.size() >= 9);
}

TEST_CASE("config: invalid YAML is one problem with its position") {
    auto r = parse("listen: [unclosed\n", "x.yaml");
    REQUIRE_FALSE(r.value.has_value());
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].to_string().rfind("x.yaml:", 0) == 0);
    CHECK(r.problems[0].message.find("invalid YAML") != std::string::npos);
}

TEST_CASE("config: rejected regexes and duplicate names are reported at their place") {
    auto r = parse("patterns:\n  - name: one\n    regex: 'ok'\n  - name: two\n    regex: '(a)\\1'\n"
                   "  - name: one\n    regex: 'fine'\n  - name: three\n    regex: 'foo(?=bar)'\n",
                   "p.yaml");
    REQUIRE_FALSE(r.value.has_value());
    INFO(all(r));
    CHECK(has_problem(
        r, "p.yaml:5:12: patterns[1].regex: pattern 'two' rejected by Vectorscan: Back-references"));
    CHECK(has_problem(r, "patterns[2].name: duplicate pattern name 'one'"));
    CHECK(has_problem(r, "patterns[3].regex: pattern 'three' rejected by Vectorscan"));
}

TEST_CASE("config: sizes and durations") {
    CHECK(std::size_t{65536} == *parse_size("65536"));
    CHECK((std::size_t{64} << 10) == *parse_size("64KiB"));
    CHECK((std::size_t{128} << 20) == *parse_size("128MiB"));
    CHECK((std::size_t{1} << 30) == *parse_size("1GiB"));
    CHECK(std::size_t{64000} == *parse_size("64kB"));
    CHECK_FALSE(parse_size("12 MiB"));
    CHECK_FALSE(parse_size("MiB"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("99999999999999999999GiB"));
    CHECK(milliseconds(250) == *parse_duration("250ms"));
    CHECK(milliseconds(10'000) == *parse_duration("10s"));
    CHECK(milliseconds(10'000) == *parse_duration("10"));
    CHECK(milliseconds(900'000) == *parse_duration("15m"));
    CHECK(milliseconds(3'600'000) == *parse_duration("1h"));
    CHECK_FALSE(parse_duration("10 s"));
    CHECK_FALSE(parse_duration("ten"));
}

TEST_CASE("config: sources and auth") {
    auto r = parse("sources:\n"
                   "  app:\n"
                   "    message_field: data.text\n"
                   "    group_field: service.name\n"
                   "    auth: {type: standard-webhooks, secrets: [whsec_a, whsec_b], tolerance: 1m}\n"
                   "  ci:\n"
                   "    auth: {type: bearer, tokens: [t1]}\n",
                   "s.yaml");
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const auto& app = r.value->sources.at("app");
    CHECK(std::vector<std::string>{"data.text"} == app.message_fields);
    CHECK("service.name" == app.group_field);
    CHECK("app" == app.group);
    CHECK(auth_type::standard_webhooks == app.auth.type);
    CHECK(2u == app.auth.secrets.size());
    CHECK(seconds(60) == app.auth.tolerance);
    CHECK(auth_type::bearer == r.value->sources.at("ci").auth.type);
    auto bad = parse("sources:\n  x:\n    auth: {type: hmac, secrets: [a]}\n", "a.yaml");
    CHECK_FALSE(bad.value.has_value());
    CHECK(has_problem(bad, "sources.x.auth.type: unknown auth type 'hmac'"));
}

TEST_CASE("config: a file is laid over the embedded default") {
    auto r = parse("listen: 0.0.0.0:9000\nlimits:\n  body_bytes: 1MiB\n", "small.yaml");
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const config& c = *r.value;
    const config d = default_config();
    CHECK("0.0.0.0:9000" == c.listen);
    CHECK((std::size_t{1} << 20) == c.limits.body_bytes);
    CHECK(d.limits.header_bytes == c.limits.header_bytes); // untouched keys keep the default
    CHECK(d.patterns.size() == c.patterns.size());         // absent lists too
    CHECK(c.sources.count("default") == 1);
    auto replaced =
        parse("patterns:\n  - name: only\n    regex: 'x'\nsources:\n  app: {auth: none}\n", "r.yaml");
    REQUIRE_MESSAGE(replaced.value.has_value(), all(replaced));
    CHECK(1u == replaced.value->patterns.size()); // a given list replaces the default's
    CHECK(replaced.value->sources.count("default") == 0);
    CHECK(replaced.value->sources.count("app") == 1);
}

TEST_CASE("config: tls needs a readable cert and key, together") {
    auto missing = parse("tls:\n  cert: /nonexistent/cert.pem\n", "t.yaml");
    REQUIRE_FALSE(missing.value.has_value());
    INFO(all(missing));
    CHECK(has_problem(missing, "tls.cert: cannot read '/nonexistent/cert.pem'"));
    const std::string self = FAULTLINE_TEST_DATA "/patterns.txt"; // any readable file
    auto half = parse("tls:\n  cert: " + self + "\n", "t.yaml");
    REQUIRE_FALSE(half.value.has_value());
    CHECK(has_problem(half, "tls: cert and key go together"));
    auto both = parse("tls:\n  cert: " + self + "\n  key: " + self + "\n", "t.yaml");
    REQUIRE_MESSAGE(both.value.has_value(), all(both));
    CHECK(self == both.value->tls.cert);
    CHECK(self == both.value->tls.key);
    CHECK(default_config().tls.cert.empty());
}

TEST_CASE("config: validate() holds the bounds whatever set the value, and parse() applies it") {
    auto c = faultline::config::default_config();
    CHECK(faultline::config::validate(c).empty());
    c.workers = faultline::config::config::max_threads + 1; // as FAULTLINE_WORKERS would set it
    c.io_threads = 5000;
    const auto problems = faultline::config::validate(c);
    REQUIRE(2 == problems.size());
    CHECK("io_threads" == problems[0].path);
    CHECK("workers" == problems[1].path);
    CHECK(problems[1].message == "must be at most 1024");

    auto r = parse("workers: 1025\n", "big.yaml", false);
    CHECK_FALSE(r);
    REQUIRE(1 == r.problems.size());
    CHECK("big.yaml:1:10: workers: must be at most 1024" == r.problems[0].to_string()); // at its place
    CHECK(parse("workers: 1024\nio_threads: 1024\n", "ok.yaml", false));
}

TEST_CASE("config: dedupe.store URLs: hostile and malformed ones are refused by name") {
    std::string why;
    CHECK_FALSE(parse_store_url("rediss://cache:6380", why));
    CHECK(why.find("TLS") != std::string::npos);
    CHECK_FALSE(parse_store_url("http://cache:6379", why));
    CHECK_FALSE(parse_store_url("redis://", why));
    CHECK(why.find("host is missing") != std::string::npos);
    CHECK_FALSE(parse_store_url("redis://cache:0", why));
    CHECK_FALSE(parse_store_url("redis://cache:65536", why));
    CHECK_FALSE(parse_store_url("redis://cache:63x79", why));
    CHECK_FALSE(parse_store_url("redis://cache:6379/db1", why));
    CHECK(why.find("database") != std::string::npos);
    CHECK_FALSE(parse_store_url("redis://[::1", why));
    CHECK_FALSE(parse_store_url("redis://[::1]x", why));

    auto e = parse_store_url("redis://cache.internal", why);
    REQUIRE(e);
    CHECK(e->host == "cache.internal");
    CHECK(e->port == 6379);
    CHECK(e->db == 0);
    CHECK(e->password.empty());
    e = parse_store_url("redis://app:p%40ss:w@10.0.0.5:6380/3", why);
    REQUIRE(e);
    CHECK(e->user == "app");
    CHECK(e->password == "p%40ss:w");
    CHECK(e->host == "10.0.0.5");
    CHECK(e->port == 6380);
    CHECK(e->db == 3);
    e = parse_store_url("redis://[::1]:7000", why);
    REQUIRE(e);
    CHECK(e->host == "::1");
    CHECK(e->port == 7000);

    auto r = parse("dedupe:\n  store: rediss://cache:6379\n", "t.yaml");
    REQUIRE_FALSE(r.value.has_value());
    CHECK(all(r).find("dedupe.store: rediss://") != std::string::npos);
    r = parse("cluster:\n  peers: [a:8080, b]\n", "t.yaml");
    REQUIRE_FALSE(r.value.has_value());
    CHECK(all(r).find("cluster.peers: 'b': expected host:port") != std::string::npos);
}

TEST_CASE("config: the store's password is redacted in dump() and the placeholder refused") {
    auto r = parse("dedupe:\n  store: redis://app:hunter2@cache:6379/1\n", "t.yaml");
    REQUIRE_MESSAGE(r.value.has_value(), all(r));
    const std::string text = dump(*r.value);
    CHECK(text.find("hunter2") == std::string::npos);
    CHECK(text.find("redis://app:<redacted>@cache:6379/1") != std::string::npos);
    auto again = parse(text, "printed.yaml");
    REQUIRE_FALSE(again.value.has_value());
    CHECK(all(again).find("dedupe.store: <redacted>") != std::string::npos);
    // Without a password, the URL is printed as it is and loads again.
    auto plain = parse("dedupe:\n  store: redis://cache\ncluster:\n  peers: [a:1, '[::1]:2']\n", "t.yaml");
    REQUIRE_MESSAGE(plain.value.has_value(), all(plain));
    auto back = parse(dump(*plain.value), "printed.yaml");
    REQUIRE_MESSAGE(back.value.has_value(), all(back));
    CHECK(back.value->dedupe.store == "redis://cache");
    CHECK(back.value->cluster.peers == std::vector<std::string>{"a:1", "[::1]:2"});
}

TEST_CASE("config ==: a configuration equals its copy and a second parse of the same text; a change to "
          "any one key, in any section, makes it unequal") {
    const config base = default_config();
    CHECK(base == default_config());
    const auto reparsed = parse(dump(base), "dumped.yaml", false);
    REQUIRE(reparsed);
    using change = void (*)(config&);
    const std::vector<std::pair<const char*, change>> changes{
        {"listen", [](config& c) { c.listen = "0.0.0.0:9"; }},
        {"tls.key", [](config& c) { c.tls.key = "k.pem"; }},
        {"io_threads", [](config& c) { c.io_threads = 3; }},
        {"snapshot_interval", [](config& c) { c.snapshot_interval = milliseconds(1); }},
        {"limits.queue_wait", [](config& c) { c.limits.queue_wait = milliseconds(2); }},
        {"limits.retry_after", [](config& c) { c.limits.retry_after = seconds(9); }},
        {"firehose.access_keys", [](config& c) { c.firehose.access_keys.push_back("k"); }},
        {"dedupe.in_flight_ttl", [](config& c) { c.dedupe.in_flight_ttl = seconds(1); }},
        {"cluster.peers", [](config& c) { c.cluster.peers.push_back("a:1"); }},
        {"otlp.group_attributes", [](config& c) { c.otlp.group_attributes.clear(); }},
        {"otlp.auth.tolerance", [](config& c) { c.otlp.auth.tolerance = seconds(1); }},
        {"sources", [](config& c) { c.sources["x"].name = "x"; }},
        {"sources.*.delivery_id_header",
         [](config& c) {
             REQUIRE_FALSE(c.sources.empty());
             c.sources.begin()->second.delivery_id_header = "X-Id";
         }},
        {"patterns.*.regex",
         [](config& c) {
             REQUIRE_FALSE(c.patterns.empty());
             c.patterns.front().regex += "x";
         }},
        {"templates.mining.drain.settled_after",
         [](config& c) { c.templates.mining.drain.settled_after = 9; }},
        {"templates.mining.warmup_ms", [](config& c) { c.templates.mining.warmup_ms = 1; }},
        {"templates.metrics_top_k", [](config& c) { c.templates.metrics_top_k = 1; }},
    };
    for (const auto& [key, apply] : changes) {
        const auto& key_shown = key; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(key_shown);
        config changed = base;
        apply(changed);
        CHECK_FALSE(changed == base);
        CHECK(changed != base);
    }
}

TEST_CASE(
    "config schema: one home for every key: reading, check-config, the reload's restart list, the README") {
    const auto keys = schema();
    REQUIRE(keys.size() > 40);
    SUBCASE("each key once; a section's keys together (check-config prints them as one mapping)") {
        std::vector<std::string> sections;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            CAPTURE(keys[i].path);
            for (std::size_t j = 0; j < i; ++j)
                CHECK(keys[i].path != keys[j].path);
            CHECK_FALSE(keys[i].what.empty());
            const std::string section(keys[i].path.substr(0, keys[i].path.find('.')));
            if (sections.empty() || sections.back() != section) {
                CHECK(std::find(sections.begin(), sections.end(), section) == sections.end());
                sections.push_back(section);
            }
        }
    }
    SUBCASE("an unknown key is refused with the schema's keys of its section") {
        auto r = parse("dedupe:\n  stor: redis://x\n", "k.yaml", false);
        REQUIRE_FALSE(r);
        CHECK(has_problem(r, "k.yaml:2:3: dedupe.stor: unknown key (expected one of: in_flight_ttl, store, "
                             "store_timeout)"));
    }
    SUBCASE("bounds hold wherever the key is, reported at its place with the others") {
        auto r = parse(
            "limits:\n  queue_capacity: 0\n  header_bytes: 1MiB\nworkers: 2000\ntemplates:\n  depth: 1\n",
            "b.yaml", false);
        REQUIRE_FALSE(r);
        INFO(all(r));
        CHECK(has_problem(r, "b.yaml:2:19: limits.queue_capacity: must be at least 1"));
        CHECK(has_problem(r, "b.yaml:3:17: limits.header_bytes: must be at most 65536"));
        CHECK(has_problem(r, "b.yaml:4:10: workers: must be at most 1024"));
        CHECK(has_problem(r, "b.yaml:6:10: templates.depth: must be at least 3"));
        CHECK(r.problems.size() == 4);
    }
    SUBCASE("a reload lists what it leaves for a restart, each once; what it applies is not listed") {
        const config base = default_config();
        CHECK(needs_restart(base, base).empty());
        using change = void (*)(config&);
        const std::vector<std::pair<change, std::vector<std::string>>> cases{
            {[](config& c) { c.listen = "0.0.0.0:1"; }, {"listen"}},
            {[](config& c) { c.workers = 3, c.io_threads = 2; }, {"io_threads/workers"}},
            {[](config& c) { c.snapshot_interval = seconds(1); }, {"state"}},
            {[](config& c) { c.reload_token = "t"; }, {"reload_token"}}, // was applied by nobody, silently
            {[](config& c) { c.tls.key = "k"; }, {"tls"}},
            {[](config& c) { c.limits.retry_after = seconds(9), c.limits.body_bytes = 4096; }, {"limits"}},
            {[](config& c) { c.max_groups = 3; }, {"metrics.max_groups"}},
            {[](config& c) { c.firehose.dedupe_ttl = seconds(1); }, {"firehose.dedupe"}},
            {[](config& c) { c.dedupe.in_flight_ttl = seconds(1); }, {"dedupe"}},
            {[](config& c) { c.cluster.peers = {"a:1"}; }, {"cluster"}},
            {[](config& c) { c.templates.mining.drain.settled_after = 9; }, {"templates"}},
            {[](config& c) { c.listen = "x:1", c.templates.metrics_top_k = 1; }, {"listen", "templates"}},
            // Applied by a reload.
            {[](config& c) { c.firehose.access_keys = {"k"}; }, {}},
            {[](config& c) { c.otlp.enabled = false, c.otlp.group = "g"; }, {}},
            {[](config& c) { c.sources["x"].name = "x"; }, {}},
            {[](config& c) { c.patterns.pop_back(); }, {}},
        };
        for (std::size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            config next = base;
            cases[i].first(next);
            CHECK(needs_restart(base, next) == cases[i].second);
        }
    }
    SUBCASE("the README's table is the schema's (faultline check-config --keys)") {
        std::ifstream in(FAULTLINE_README);
        REQUIRE(in);
        const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string open = "<!-- config-keys: faultline check-config --keys -->\n";
        const std::size_t a = readme.find(open);
        const std::size_t b = readme.find("<!-- /config-keys -->");
        REQUIRE(a != std::string::npos);
        REQUIRE(b != std::string::npos);
        CHECK(readme.substr(a + open.size(), b - a - open.size()) == schema_markdown());
        for (const auto& k : keys)
            CHECK(schema_markdown().find("| `" + std::string(k.path) + "` |") != std::string::npos);
    }
}
