#include "faultline/core/match/pattern_set.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using faultline::core::errc;
using faultline::core::match::class_name;
using faultline::core::match::matcher;
using faultline::core::match::parse_pattern_tsv;
using faultline::core::match::pattern;
using faultline::core::match::pattern_class;
using faultline::core::match::pattern_set;
using faultline::test::compile_patterns;
using faultline::test::contains;
using faultline::test::error_text;
using faultline::test::read_data;

namespace {

using strings = std::vector<std::string>;

/// Names of the patterns `m` finds in `message`, in id order.
strings hit_names(matcher& m, std::string_view message) {
    strings out;
    for (const auto id : m.match(message))
        out.push_back(m.set().patterns()[id].name);
    return out;
}

pattern make_pattern(std::string name, std::string regex, std::string origin = {}) {
    pattern p;
    p.name = std::move(name);
    p.regex = std::move(regex);
    p.origin = std::move(origin);
    return p;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// parse_pattern_tsv

TEST_CASE("parse_pattern_tsv: the seed benchmark's patterns.txt has 16 patterns") {
    auto r = parse_pattern_tsv(read_data("patterns.txt"), "patterns.txt");
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    const auto& p = *r;
    REQUIRE(std::size_t{16} == p.size());
    const strings names = {
        "access_denied", "connection_refused", "crash", "db_error", "deprecated", "error_level", "exception",
        "http_5xx",      "java_stack",         "oom",   "retry",    "slow",       "throttling",  "timeout",
        "traceback",     "warn_level"};
    for (std::size_t i = 0; i < names.size(); ++i)
        CHECK(names[i] == p[i].name);

    CHECK("patterns.txt:7" == p[0].origin);
    CHECK(pattern_class::error == p[0].cls);
    CHECK_FALSE(p[0].caseless);
    CHECK(R"(AccessDenied|UnauthorizedOperation|is not authorized to perform|\b403 Forbidden\b)" ==
          p[0].regex);

    // (?i) prefix: caseless, and removed from the regex.
    CHECK(p[1].caseless);
    CHECK(R"(connection refused|\bECONNREFUSED\b)" == p[1].regex);
    CHECK(pattern_class::warn == p[4].cls); // deprecated
    CHECK(p[4].caseless);
    CHECK(pattern_class::warn == p[15].cls); // warn_level
    CHECK("patterns.txt:22" == p[15].origin);

    std::size_t errors = 0, warns = 0, caseless = 0;
    for (const auto& x : p) {
        errors += x.cls == pattern_class::error;
        warns += x.cls == pattern_class::warn;
        caseless += x.caseless;
        CHECK_FALSE(x.regex.starts_with("(?i)"));
    }
    CHECK(std::size_t{12} == errors);
    CHECK(std::size_t{4} == warns);
    CHECK(std::size_t{7} == caseless);
}

TEST_CASE("parse_pattern_tsv: comments, blank lines, CRLF, the info class, a missing final newline") {
    auto r = parse_pattern_tsv("# header\r\n\r\na\terror\tfoo\r\n\nb\tinfo\t(?i)bar\n#c\tx\ty\nc\twarn\tbaz",
                               "x.tsv");
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    REQUIRE(std::size_t{3} == r->size());
    CHECK("foo" == (*r)[0].regex); // no '\r' left behind
    CHECK("x.tsv:3" == (*r)[0].origin);
    CHECK(pattern_class::info == (*r)[1].cls);
    CHECK((*r)[1].caseless);
    CHECK("bar" == (*r)[1].regex);
    CHECK("x.tsv:5" == (*r)[1].origin);
    CHECK("baz" == (*r)[2].regex);
    CHECK("x.tsv:7" == (*r)[2].origin);

    auto empty = parse_pattern_tsv("# nothing\n\n", "e.tsv");
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
}

TEST_CASE("parse_pattern_tsv: a malformed line is an error naming file:line") {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"# c\n\nonly\ttwo\n", "rules.tsv:3"},
        {"a\terror\tfoo\nb\terror\tbar\tbaz\n", "rules.tsv:2"}, // four fields
        {"a\terror\tfoo\nno tabs at all\n", "rules.tsv:2"},
        {"\terror\tfoo\n", "rules.tsv:1"}, // empty name
        {"a\terror\tfoo\r\nb error foo\r\n", "rules.tsv:2"},
    };
    for (const auto& [text, where] : cases) {
        const auto& text_shown = text; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(text_shown);
        auto r = parse_pattern_tsv(text, "rules.tsv");
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, where), r.error().message);
    }
}

TEST_CASE("parse_pattern_tsv: an unknown class is an error naming file:line and the class") {
    auto r = parse_pattern_tsv("ok\twarn\tfoo\nbad\tfatal\tbar\n", "conf/p.tsv");
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::pattern == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, "conf/p.tsv:2"), r.error().message);
    CHECK_MESSAGE(contains(r.error().message, "fatal"), r.error().message);
    // Classes are case-sensitive.
    CHECK_FALSE(parse_pattern_tsv("x\tERROR\tfoo\n", "p").has_value());
}

TEST_CASE("class_name") {
    CHECK("error" == class_name(pattern_class::error));
    CHECK("warn" == class_name(pattern_class::warn));
    CHECK("info" == class_name(pattern_class::info));
}

// ---------------------------------------------------------------------------------------------
// pattern_set::compile

TEST_CASE("pattern_set::compile: the benchmark patterns compile") {
    auto set = faultline::test::bench_patterns();
    CHECK(std::size_t{16} == set->size());
    CHECK(set->database() != nullptr);
    CHECK(set->is_error(0));       // access_denied
    CHECK_FALSE(set->is_error(4)); // deprecated
}

TEST_CASE("pattern_set::compile: a regex Vectorscan rejects is an error naming the pattern and its line") {
    for (std::string_view bad : {R"((a)\1)", "foo(?=bar)", "(?<=x)y", "a{2,1}", "unbalanced(", "[z-a]"}) {
        CAPTURE(bad);
        const std::string tsv =
            "good\terror\tfoo\nbroken\twarn\t" + std::string(bad) + "\nlater\terror\tbar\n";
        auto parsed = parse_pattern_tsv(tsv, "my.tsv");
        REQUIRE_MESSAGE(parsed.has_value(), error_text(parsed));
        auto r = pattern_set::compile(std::move(*parsed));
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "'broken'"), r.error().message);
        CHECK_MESSAGE(contains(r.error().message, "my.tsv:2"), r.error().message);
        CHECK_MESSAGE(!contains(r.error().message, "'good'"), r.error().message);
    }
}

TEST_CASE("pattern_set::compile: duplicate names, empty names and empty regexes are rejected") {
    {
        auto r = pattern_set::compile({make_pattern("dup", "a", "f:1"), make_pattern("other", "b", "f:2"),
                                       make_pattern("dup", "c", "f:3")});
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "'dup'"), r.error().message);
        CHECK_MESSAGE(contains(r.error().message, "duplicate"), r.error().message);
        CHECK_MESSAGE(contains(r.error().message, "f:3"), r.error().message);
    }
    {
        auto r = pattern_set::compile({make_pattern("", "a")});
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
    }
    {
        auto r = pattern_set::compile({make_pattern("e", "", "g:9")});
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "g:9"), r.error().message);
    }
    {
        auto r = pattern_set::compile({make_pattern("nul", std::string("a\0b", 3))});
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::pattern == r.error().code);
    }
}

// ---------------------------------------------------------------------------------------------
// matcher

TEST_CASE("matcher: the benchmark patterns on typical messages (expected from Python re.ASCII)") {
    matcher m(faultline::test::bench_patterns());
    const std::pair<std::string_view, strings> cases[] = {
        {"2024-01-01 ERROR something failed", {"error_level"}},
        {"\xc3\x9c"
         "ERROR in module",
         {"error_level"}},
        {"ERROR_CODE=5", {}},
        {"java.lang.NullPointerException: boom\n\tat com.example.Foo.bar(Foo.java:42)",
         {"exception", "java_stack"}},
        {"Task timed out after 3.00 seconds", {"timeout"}},
        {"REPORT RequestId: x Duration: 1234.5 ms", {"slow"}},
        {"LOG: duration: 1500.2 ms statement: SELECT 1", {"slow"}},
        {"dial tcp 10.0.0.1:5432: connect: Connection Refused", {"connection_refused"}},
        {"An error occurred (ThrottlingException) when calling: Rate exceeded", {"exception", "throttling"}},
        {R"({"level":"warn","msg":"retrying in 2s, attempt 2 of 5"})", {"retry", "warn_level"}},
        {R"(127.0.0.1 - - [x] "GET / HTTP/1.1" 503 12)", {"http_5xx"}},
        {"Traceback (most recent call last):\r  File x", {"traceback"}},
        {"DeprecationWarning: deprecated API", {"deprecated"}},
        {"panic: runtime error: index out of range", {"crash"}},
        {"all good here", {}},
        {"Timeout", {"timeout"}},
        {"timeouts", {}},
        {"container OOMKilled; out of memory", {"oom"}},
        {"User: arn:aws:iam::1:user/x is not authorized to perform: s3:GetObject", {"access_denied"}},
        {"ERROR: deadlock detected", {"db_error", "error_level"}},
        {"", {}},
    };
    for (const auto& [msg, expected] : cases) {
        const auto& msg_shown = msg; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(msg_shown);
        CHECK(expected == hit_names(m, msg));
    }
}

TEST_CASE("matcher: ASCII \\b semantics") {
    matcher m(compile_patterns("err\terror\t\\bERROR\\b\n"));
    CHECK(strings{"err"} == hit_names(m, "\xc3\x9c"
                                         "ERROR")); // Ü is not a word character
    CHECK(strings{"err"} == hit_names(m, "ERROR\xc3\xbc"));
    CHECK(strings{"err"} == hit_names(m, "\xe6\x9d\xb1"
                                         "ERROR\xe4\xba\xac"));
    CHECK(strings{"err"} == hit_names(m, "ERROR"));
    CHECK(strings{"err"} == hit_names(m, "(ERROR)"));
    CHECK(strings{"err"} == hit_names(m, "x-ERROR."));
    CHECK(strings{} == hit_names(m, "ERROR_CODE"));
    CHECK(strings{} == hit_names(m, "_ERROR"));
    CHECK(strings{} == hit_names(m, "ERRORS"));
    CHECK(strings{} == hit_names(m, "9ERROR"));
    CHECK(strings{} == hit_names(m, "error"));
}

TEST_CASE("matcher: \\d and (?i) are ASCII only") {
    matcher m(compile_patterns("num\terror\tcode \\d\\d\\d\nword\twarn\t(?i)\\bkelvin\\b\n"));
    CHECK(strings{"num"} == hit_names(m, "code 503"));
    CHECK(strings{} == hit_names(m, "code \xd9\xa5\xd9\xa0\xd9\xa3"));             // Arabic-Indic digits
    CHECK(strings{} == hit_names(m, "code \xef\xbc\x95\xef\xbc\x90\xef\xbc\x93")); // full-width digits
    CHECK(strings{"word"} == hit_names(m, "KELVIN"));
    CHECK(strings{"word"} == hit_names(m, "KeLvIn"));
}

TEST_CASE("matcher: a pattern is reported once per message however often it occurs") {
    auto set = compile_patterns("a\terror\tERROR\nb\twarn\tWARN\nc\terror\tnever\n");
    matcher m(set);
    auto hits = m.match("ERROR ERROR WARN ERROR WARN ERROR");
    REQUIRE(std::size_t{2} == hits.size());
    CHECK(0u == hits[0]);
    CHECK(1u == hits[1]);
    std::string big;
    for (int i = 0; i < 10000; ++i)
        big += "ERROR ";
    CHECK(std::size_t{1} == m.match(big).size());
}

TEST_CASE("matcher: ids come out ascending, whatever order the matches occur in") {
    matcher m(compile_patterns("first\terror\tzzz\nsecond\terror\tyyy\nthird\terror\txxx\n"));
    CHECK(strings{"first", "second", "third"} == hit_names(m, "xxx yyy zzz"));
    CHECK(strings{"first", "third"} == hit_names(m, "xxx zzz"));
}

TEST_CASE("matcher: messages with NUL bytes are scanned whole") {
    matcher m(compile_patterns("err\terror\t\\bERROR\\b\nto\terror\t(?i)timeout\n"));
    CHECK(strings{"err"} == hit_names(m, std::string_view("abc\0ERROR", 9)));
    CHECK(strings{"err", "to"} == hit_names(m, std::string_view("\0\0TimeOut\0ERROR\0", 16)));
    CHECK(strings{} == hit_names(m, std::string_view("\0\0\0", 3)));
    // A NUL is a non-word character for \b.
    CHECK(strings{"err"} == hit_names(m, std::string_view("x\0ERROR\0y", 9)));
}

TEST_CASE("matcher: caseless matching") {
    matcher m(
        compile_patterns("cr\terror\t(?i)connection refused|\\bECONNREFUSED\\b\nexact\terror\tConnection\n"));
    CHECK(strings{"cr", "exact"} == hit_names(m, "Connection refused"));
    CHECK(strings{"cr"} == hit_names(m, "CONNECTION REFUSED"));
    CHECK(strings{"cr"} == hit_names(m, "connect ECONNrefused"));
    CHECK(strings{} == hit_names(m, "connection  refused"));
    CHECK(strings{"exact"} == hit_names(m, "Connection reset"));
    CHECK(strings{} == hit_names(m, "connection reset"));
}

TEST_CASE("matcher: an empty pattern set matches nothing") {
    auto set = pattern_set::compile({});
    REQUIRE_MESSAGE(set.has_value(), error_text(set));
    CHECK(std::size_t{0} == (*set)->size());
    matcher m(*set);
    CHECK(m.match("ERROR timeout panic: anything").empty());
    CHECK(m.match("").empty());
}

TEST_CASE("matcher: several matchers share one set") {
    auto set = faultline::test::bench_patterns();
    matcher a(set), b(set);
    CHECK(&a.set() == &b.set());
    CHECK(set == a.shared_set());
    CHECK(strings{"error_level"} == hit_names(a, "ERROR x"));
    CHECK(strings{"timeout"} == hit_names(b, "timed out"));
    CHECK(strings{"error_level"} == hit_names(a, "FATAL y"));
}
