#include "faultline/core/scan/scan.hpp"

#include "faultline/core/decode/gzip.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using faultline::core::errc;
using faultline::core::aggregate::counts;
using faultline::core::decode::base64_encode;
using faultline::core::decode::gzip_compress;
using faultline::core::scan::input_format;
using faultline::core::scan::parse_format;
using faultline::core::scan::run;
using faultline::core::scan::scan_options;
using faultline::test::contains;
using faultline::test::control_doc;
using faultline::test::cwl_doc;
using faultline::test::error_text;
using faultline::test::firehose_body;
using faultline::test::pattern_id;
using faultline::test::record_of;

namespace {

namespace fs = std::filesystem;

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = "/tmp/faultline_scan_test_XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    /// Writes `content` to a file of this directory and returns its path.
    std::string write(const std::string& name, std::string_view content) const {
        const std::string p = (path_ / name).string();
        faultline::test::write_file(p, content);
        return p;
    }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

std::string join(const std::vector<std::string>& lines, std::string_view sep) {
    std::string s;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i) s += sep;
        s += lines[i];
    }
    return s;
}

const std::vector<std::string>& sample_docs() {
    static const std::vector<std::string> docs = {
        cwl_doc("/aws/lambda/a", {"ERROR code 1", "ok", "request timed out after 30 s"}),
        control_doc,
        cwl_doc("/aws/lambda/b", {"ERROR code 22", "WARN low disk"}),
    };
    return docs;
}

/// The sample as jsonl: CRLF line ends, blank and whitespace-only lines, no final newline.
std::string sample_jsonl() {
    const auto& d = sample_docs();
    return join({d[0], "", d[1], "  \t ", d[2]}, "\r\n");
}

/// The same documents as Firehose requests (two lines).
std::string sample_firehose() {
    const auto& d = sample_docs();
    return firehose_body({record_of(d[0]), record_of(d[1])}, "r1") + "\n\n" +
           firehose_body({record_of(d[2])}, "r2") + "\n";
}

scan_options opts(std::vector<std::string> inputs, input_format format = input_format::automatic) {
    scan_options o;
    o.inputs = std::move(inputs);
    o.format = format;
    o.threads = 2;
    return o;
}

counts scan_ok(const std::shared_ptr<const faultline::core::match::pattern_set>& set, const scan_options& o) {
    auto r = run(set, o);
    REQUIRE_MESSAGE(r.has_value(), error_text(r));
    return std::move(*r);
}

void check_same(const counts& expected, const counts& got) {
    CHECK(expected.documents == got.documents);
    CHECK(expected.events == got.events);
    CHECK(expected.control_messages == got.control_messages);
    CHECK(expected.patterns == got.patterns);
    CHECK(expected.by_group == got.by_group);
    CHECK(faultline::test::template_counts(expected) == faultline::test::template_counts(got));
}

/// The totals of `sample_docs()` scanned `times` times.
void check_sample_totals(const faultline::core::match::pattern_set& set, const counts& c,
                         std::uint64_t times = 1) {
    const auto error_level = pattern_id(set, "error_level");
    const auto timeout = pattern_id(set, "timeout");
    const auto warn_level = pattern_id(set, "warn_level");
    CHECK(2 * times == c.documents);
    CHECK(5 * times == c.events);
    CHECK(1 * times == c.control_messages);
    CHECK(2 * times == c.patterns[error_level]);
    CHECK(1 * times == c.patterns[timeout]);
    CHECK(1 * times == c.patterns[warn_level]);
    std::uint64_t all = 0;
    for (auto n : c.patterns)
        all += n;
    CHECK(4 * times == all);
    REQUIRE(std::size_t{2} == c.by_group.size());
    CHECK(1 * times == c.by_group.at("/aws/lambda/a")[error_level]);
    CHECK(1 * times == c.by_group.at("/aws/lambda/a")[timeout]);
    CHECK(1 * times == c.by_group.at("/aws/lambda/b")[error_level]);
    CHECK(1 * times == c.by_group.at("/aws/lambda/b")[warn_level]);
    REQUIRE(std::size_t{2} == c.templates.size());
    CHECK(2 * times == c.templates.at("ERROR code <NUM>").count);
    CHECK(1 * times == c.templates.at("request timed out after <NUM> s").count);
}

} // namespace

TEST_CASE("scan::parse_format") {
    CHECK(input_format::automatic == parse_format("auto"));
    CHECK(input_format::jsonl == parse_format("jsonl"));
    CHECK(input_format::firehose == parse_format("firehose"));
    CHECK(input_format::lines == parse_format("lines"));
    CHECK_FALSE(parse_format("JSONL").has_value());
    CHECK_FALSE(parse_format("").has_value());
    CHECK_FALSE(parse_format("xml").has_value());
}

TEST_CASE("scan: jsonl with CRLF line ends and blank lines") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const std::string path = dir.write("cwl.jsonl", sample_jsonl());
    check_sample_totals(*set, scan_ok(set, opts({path}, input_format::jsonl)));
    check_sample_totals(*set, scan_ok(set, opts({path}))); // auto-detected
    // With a final newline and LF only, the same.
    const std::string lf = dir.write("lf.jsonl", join(sample_docs(), "\n") + "\n");
    check_sample_totals(*set, scan_ok(set, opts({lf})));
}

TEST_CASE("scan: the same content gzip'd gives the same totals") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const std::string plain = dir.write("cwl.jsonl", sample_jsonl());
    const std::string gz = dir.write("cwl.jsonl.gz", gzip_compress(sample_jsonl()));
    const counts expected = scan_ok(set, opts({plain}));
    check_sample_totals(*set, expected);
    check_same(expected, scan_ok(set, opts({gz})));
    check_same(expected, scan_ok(set, opts({gz}, input_format::jsonl)));

    SUBCASE("several gzip members") {
        const std::string content = sample_jsonl() + "\n";
        const std::string multi =
            dir.write("multi.gz", gzip_compress(content.substr(0, 100)) + gzip_compress(content.substr(100)));
        check_same(expected, scan_ok(set, opts({multi})));
    }
    SUBCASE("gzip'd firehose requests") {
        const std::string fh = dir.write("fh.gz", gzip_compress(sample_firehose()));
        check_same(expected, scan_ok(set, opts({fh})));
    }
    SUBCASE("a corrupt gzip file is a gzip error naming the file") {
        std::string bad = gzip_compress(sample_jsonl());
        bad.resize(bad.size() / 2);
        const std::string p = dir.write("truncated.gz", bad);
        auto r = run(set, opts({p}));
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::gzip == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, p), r.error().message);
    }
}

TEST_CASE("scan: format auto-detection (jsonl, firehose, lines)") {
    auto set = faultline::test::bench_patterns();
    const auto error_level = pattern_id(*set, "error_level");
    const auto timeout = pattern_id(*set, "timeout");
    temp_dir dir;

    const std::string fh = dir.write("requests.firehose", "\n  \n" + sample_firehose());
    const counts from_firehose = scan_ok(set, opts({fh}));
    check_sample_totals(*set, from_firehose);
    check_same(from_firehose, scan_ok(set, opts({fh}, input_format::firehose)));

    const std::string jsonl = dir.write("docs.jsonl", "\n" + sample_jsonl());
    check_same(from_firehose, scan_ok(set, opts({jsonl})));

    const std::string text =
        dir.write("app.log", "ERROR one 1\nplain line\n\n  \r\nrequest timed out\r\nlast ERROR 2");
    const counts from_lines = scan_ok(set, opts({text}));
    CHECK(0u == from_lines.documents);
    CHECK(4u == from_lines.events);
    CHECK(2u == from_lines.patterns[error_level]);
    CHECK(1u == from_lines.patterns[timeout]);
    REQUIRE(std::size_t{1} == from_lines.by_group.size());
    REQUIRE(from_lines.by_group.count(text)); // the group of a text file is its path
    CHECK(2u == from_lines.by_group.at(text)[error_level]);
    CHECK(1u == from_lines.templates.at("ERROR one <NUM>").count);
    CHECK(1u == from_lines.templates.at("last ERROR <NUM>").count);

    SUBCASE("an explicit format wins over detection") {
        // The jsonl file read as lines: every non-blank line is one text event.
        const counts as_lines = scan_ok(set, opts({jsonl}, input_format::lines));
        CHECK(0u == as_lines.documents);
        CHECK(3u == as_lines.events);
        CHECK(2u == as_lines.patterns[error_level]); // the lines holding "ERROR code 1" and "ERROR code 22"
        // A text file read as jsonl is an error at its first line.
        auto r = run(set, opts({text}, input_format::jsonl));
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::json == r.error().code);
        CHECK_MESSAGE(r.error().message.starts_with(text + ":1:"), r.error().message);
    }
    SUBCASE("each input is detected on its own") {
        const counts mixed = scan_ok(set, opts({text, fh, jsonl}));
        CHECK(2u * 2 == mixed.documents);
        CHECK(4u + 2 * 5 == mixed.events);
        CHECK(2u + 2 * 2 == mixed.patterns[error_level]);
    }
}

TEST_CASE("scan: several inputs are summed") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const std::string a = dir.write("a.jsonl", sample_jsonl());
    const std::string b = dir.write("b.jsonl.gz", gzip_compress(sample_jsonl()));
    const std::string c = dir.write("c.firehose", sample_firehose());
    check_sample_totals(*set, scan_ok(set, opts({a, b, c})), 3);
    check_sample_totals(*set, scan_ok(set, opts({a, a, a, a})), 4);

    SUBCASE("empty files and an empty input list give zero totals") {
        const std::string empty = dir.write("empty.jsonl", "");
        const std::string blank = dir.write("blank.jsonl", "\n\r\n  \n");
        check_sample_totals(*set, scan_ok(set, opts({empty, a, blank})), 1);
        const counts none = scan_ok(set, opts({}));
        CHECK(none.empty());
        CHECK(std::size_t{16} == none.patterns.size());
        CHECK(scan_ok(set, opts({empty})).empty());
    }
}

TEST_CASE("scan: a malformed line is an error starting with FILE:LINE:") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const auto& d = sample_docs();
    const std::string bad_line = R"({"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"message":)";
    const std::string one = dir.write("one.jsonl", join({d[0], d[2], bad_line, d[0]}, "\n") + "\n");
    auto r = run(set, opts({one}));
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::json == r.error().code);
    CHECK_MESSAGE(r.error().message.starts_with(one + ":3: "), r.error().message);

    SUBCASE("blank lines count as lines") {
        const std::string p = dir.write("blank.jsonl", join({d[0], "", "\r", d[2], "   ", bad_line}, "\r\n"));
        auto r2 = run(set, opts({p}));
        REQUIRE_FALSE(r2.has_value());
        CHECK_MESSAGE(r2.error().message.starts_with(p + ":6: "), r2.error().message);
    }
    SUBCASE("an error in the second file names the second file and its line") {
        const std::string good = dir.write("good.jsonl", join({d[0], d[1], d[2], d[0], d[2]}, "\n") + "\n");
        const std::string second = dir.write("second.jsonl", join({d[2], "", "[1,2]", bad_line}, "\n"));
        auto r2 = run(set, opts({good, second}));
        REQUIRE_FALSE(r2.has_value());
        CHECK(errc::json == r2.error().code);
        CHECK_MESSAGE(r2.error().message.starts_with(second + ":3: "), r2.error().message);
    }
    SUBCASE("the first error in input order wins") {
        auto r2 = run(set, opts({one, one}));
        REQUIRE_FALSE(r2.has_value());
        CHECK_MESSAGE(r2.error().message.starts_with(one + ":3: "), r2.error().message);
    }
    SUBCASE("a Firehose record with bad base64") {
        const std::string fh = dir.write(
            "bad.firehose", sample_firehose() + firehose_body({record_of(d[0]), "bad*base64=="}) + "\n");
        auto r2 = run(set, opts({fh}));
        REQUIRE_FALSE(r2.has_value());
        CHECK(errc::base64 == r2.error().code);
        CHECK_MESSAGE(r2.error().message.starts_with(fh + ":4: "), r2.error().message);
        CHECK_MESSAGE(contains(r2.error().message, "records[1]"), r2.error().message);
    }
}

TEST_CASE("scan: a missing file is an io error naming the path") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const std::string missing = dir.path("does-not-exist.jsonl");
    auto r = run(set, opts({missing}));
    REQUIRE_FALSE(r.has_value());
    CHECK(errc::io == r.error().code);
    CHECK_MESSAGE(contains(r.error().message, missing), r.error().message);

    const std::string good = dir.write("good.jsonl", sample_jsonl());
    auto r2 = run(set, opts({good, missing}));
    REQUIRE_FALSE(r2.has_value());
    CHECK(errc::io == r2.error().code);
    CHECK_MESSAGE(contains(r2.error().message, missing), r2.error().message);

    auto r3 = run(set, opts({dir.path("")})); // a directory
    CHECK_FALSE(r3.has_value());
}

TEST_CASE("scan: a line longer than max_line_bytes is too_large") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    const auto& d = sample_docs();
    std::vector<std::string> big_messages(100, std::string(90, 'x'));
    const std::string big = cwl_doc("big", big_messages); // about 15 KB on one line
    REQUIRE(big.size() > 10000);
    for (const input_format f : {input_format::automatic, input_format::jsonl, input_format::lines}) {
        CAPTURE(static_cast<int>(f));
        const std::string p = dir.write("long.jsonl", join({d[0], d[2], big, d[0]}, "\n") + "\n");
        scan_options o = opts({p}, f);
        o.chunk_bytes = 1024;
        o.max_line_bytes = 4096;
        auto r = run(set, o);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::too_large == r.error().code);
        CHECK_MESSAGE(contains(r.error().message, "4096"), r.error().message);
        CHECK_MESSAGE(r.error().message.starts_with(p + ":3: "), r.error().message);

        // Under the limit the same file scans.
        o.max_line_bytes = 64 << 10;
        auto ok = run(set, o);
        CHECK_MESSAGE(ok.has_value(), error_text(ok));
    }
    SUBCASE("as the first line of a file") {
        const std::string p = dir.write("first.jsonl", big + "\n" + d[0] + "\n");
        scan_options o = opts({p});
        o.chunk_bytes = 1024;
        o.max_line_bytes = 4096;
        auto r = run(set, o);
        REQUIRE_FALSE(r.has_value());
        CHECK(errc::too_large == r.error().code);
        CHECK_MESSAGE(r.error().message.starts_with(p + ":1: "), r.error().message);
    }
}

TEST_CASE("scan: jsonl documents may be pretty-printed over many lines (as /v1/cloudwatch takes them)") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    // Each document indented over several lines, as `jq .` or json.dumps(indent=2) writes it.
    auto pretty = [](const std::string& doc) {
        std::string out;
        int depth = 0;
        bool in_string = false;
        for (std::size_t i = 0; i < doc.size(); ++i) {
            const char c = doc[i];
            if (in_string) {
                out += c;
                if (c == '\\')
                    out += doc[++i];
                else if (c == '"')
                    in_string = false;
                continue;
            }
            if (c == '"') in_string = true;
            if (c == '}' || c == ']') out += "\n" + std::string(2 * --depth, ' ');
            out += c;
            if (c == '{' || c == '[') out += "\n" + std::string(2 * ++depth, ' ');
            if (c == ',') out += "\n" + std::string(2 * depth, ' ');
        }
        return out;
    };
    std::string content;
    for (const auto& d : sample_docs())
        content += pretty(d) + "\n";
    REQUIRE(std::count(content.begin(), content.end(), '\n') > 30);
    const std::string path = dir.write("pretty.json", content);
    // Every chunk size from 64 to 400 bytes: some buffers end exactly on a newline inside a document.
    std::vector<std::size_t> chunks{std::size_t{1} << 20};
    for (std::size_t c = 64; c <= 400; ++c)
        chunks.push_back(c);
    for (const std::size_t chunk : chunks) {
        CAPTURE(chunk);
        scan_options o = opts({path}, input_format::jsonl);
        o.chunk_bytes = chunk;
        check_sample_totals(*set, scan_ok(set, o));
        scan_options a = opts({path});
        a.chunk_bytes = chunk;
        check_sample_totals(*set, scan_ok(set, a)); // auto-detected as jsonl
    }
    // An error inside a pretty-printed document names the line the document starts on.
    const std::string broken = dir.write("broken.json", content + "{\n  \"messageType\": 7\n}\n");
    auto r = run(set, opts({broken}, input_format::jsonl));
    REQUIRE_FALSE(r.has_value());
    const auto first_line = std::count(content.begin(), content.end(), '\n') + 1;
    CHECK_MESSAGE(r.error().message.starts_with(broken + ":" + std::to_string(first_line) + ": "),
                  r.error().message);
}

TEST_CASE("scan: chunk boundaries do not change the totals") {
    auto set = faultline::test::bench_patterns();
    temp_dir dir;
    std::vector<std::string> lines;
    std::string text;
    for (int i = 0; i < 3000; ++i) {
        const std::string g = "/group/" + std::to_string(i % 7);
        switch (i % 5) {
        case 0:
            lines.push_back(cwl_doc(g, {"ERROR id " + std::to_string(i), "fine " + std::to_string(i)}));
            break;
        case 1:
            lines.push_back(control_doc);
            break;
        case 2:
            lines.push_back("");
            break;
        case 3:
            lines.push_back(
                cwl_doc(g, {"connection refused to 10.0.0." + std::to_string(i % 250) + ":5432"}));
            break;
        default: {
            // Now and then a line longer than a chunk.
            std::vector<std::string> msgs(i % 50 == 4 ? 30 : 1,
                                          "WARN x " + std::to_string(i) + " Exception here");
            lines.push_back(cwl_doc(g, msgs));
        }
        }
        text += "line " + std::to_string(i) + (i % 3 ? " ERROR" : " ok") + (i % 2 ? "\r\n" : "\n");
    }
    const std::string content = join(lines, "\n") + "\n";
    REQUIRE(content.size() > 100 * 1024);
    const std::string jsonl = dir.write("many.jsonl", content);
    const std::string crlf = dir.write("many.crlf.jsonl.gz", gzip_compress(join(lines, "\r\n")));
    const std::string log = dir.write("many.log", text);

    const counts reference = scan_ok(set, opts({jsonl, log}));
    CHECK(1800u == reference.documents);
    CHECK(600u == reference.control_messages);
    CHECK(600u * 2 + 600 + 540 + 60 * 30 + 3000 == reference.events);

    for (const std::size_t chunk :
         {std::size_t{1024}, std::size_t{1500}, std::size_t{4096}, std::size_t{65536}}) {
        for (const std::size_t threads : {std::size_t{1}, std::size_t{3}}) {
            CAPTURE(chunk);
            CAPTURE(threads);
            scan_options o = opts({jsonl, log});
            o.chunk_bytes = chunk;
            o.threads = threads;
            check_same(reference, scan_ok(set, o));
        }
    }
    scan_options o = opts({crlf, log});
    o.chunk_bytes = 1024;
    check_same(reference, scan_ok(set, o));

    SUBCASE("line numbers of errors are counted across chunks") {
        std::vector<std::string> broken = lines;
        broken[2499] = "{\"messageType\":";
        const std::string p = dir.write("broken.jsonl", join(broken, "\n") + "\n");
        for (const std::size_t chunk : {std::size_t{1024}, std::size_t{1} << 20}) {
            scan_options ob = opts({log, p});
            ob.chunk_bytes = chunk;
            auto r = run(set, ob);
            REQUIRE_FALSE(r.has_value());
            CHECK_MESSAGE(r.error().message.starts_with(p + ":2500: "), r.error().message);
        }
    }
}

TEST_CASE("scan: detection looks past leading blank lines longer than a chunk") {
    // detect_format() only sees the first buffer: when it holds nothing but blank lines the input is
    // taken for jsonl, whatever its first real line is.
    auto set = faultline::test::bench_patterns();
    const auto error_level = pattern_id(*set, "error_level");
    temp_dir dir;
    const std::string blank(3000, '\n');
    const std::string text = dir.write("late.log", blank + "plain ERROR 1\nmore text\n");
    const std::string fh = dir.write("late.firehose", blank + sample_firehose());
    scan_options o = opts({text});
    o.chunk_bytes = 1024;
    auto r = run(set, o);
    CHECK_MESSAGE(r.has_value(), error_text(r));
    if (r) {
        CHECK(2u == r->events);
        CHECK(1u == r->patterns[error_level]);
    }
    o.inputs = {fh};
    auto r2 = run(set, o);
    REQUIRE_MESSAGE(r2.has_value(), error_text(r2));
    CHECK(2u == r2->documents);
    CHECK(5u == r2->events);
}

namespace {
std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}
std::string assigned(std::string_view text) {
    return faultline::core::aggregate::template_id(text) + "\t" + std::string(text);
}
} // namespace

TEST_CASE("scan --assignments: one line per event in input order, each its template at the end") {
    auto set = faultline::test::compile_patterns("err\terror\tERROR\nwarn\twarn\tWARN\n");
    temp_dir dir;
    // "ERROR disk sda full" comes first, alone; a later line of the same shape generalizes it,
    // in a later batch (chunks of 32 bytes: about a line each): the first event's line shows
    // the final template.
    const std::string log = dir.write("app.log", "ERROR disk sda full\n"
                                                 "all fine\n"
                                                 "WARN slow disk\n"
                                                 "ERROR user alice logged out\n"
                                                 "ERROR disk sdb full\n"
                                                 "ERROR disk sdc full\n"
                                                 "ERROR user bob logged out\n");
    scan_options o = opts({log}, input_format::lines);
    o.chunk_bytes = 32;
    o.threads = 4; // assignments mine in order on one worker whatever is asked
    faultline::core::mine::miner_options m;
    m.warmup_ms = 0;
    o.mining = m;
    o.assignments = dir.path("assignments.tsv");
    const counts totals = scan_ok(set, o);
    CHECK(7u == totals.events);
    const auto lines = read_lines(o.assignments);
    REQUIRE(7u == lines.size());
    CHECK(lines[0] == assigned("ERROR disk <*> full"));
    CHECK(lines[1] == "-\t"); // no error pattern: not mined
    CHECK(lines[2] == "-\t"); // a warning: counted, not mined
    CHECK(lines[3] == assigned("ERROR user <*> logged out"));
    CHECK(lines[4] == lines[0]);
    CHECK(lines[5] == lines[0]);
    CHECK(lines[6] == lines[3]);

    SUBCASE("a template the cap evicted is shown as it was then") {
        o.mining->shards = 1;
        o.mining->drain.max_clusters = 1;
        scan_ok(set, o);
        const auto capped = read_lines(o.assignments);
        REQUIRE(7u == capped.size());
        CHECK(capped[0] == assigned("ERROR disk sda full")); // evicted by the "user" line
        CHECK(capped[3] == assigned("ERROR user alice logged out"));
        CHECK(capped[4] == assigned("ERROR disk <*> full"));
        CHECK(capped[6] == assigned("ERROR user bob logged out"));
    }
    SUBCASE("an output that cannot be written is an io error naming it") {
        o.assignments = dir.path("no/such/dir/out.tsv");
        auto r = run(set, o);
        REQUIRE_FALSE(r.has_value());
        CHECK(contains(r.error().message, "no/such/dir/out.tsv"));
    }
}
