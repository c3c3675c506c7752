#include "faultline/server/cli.hpp"

#include "faultline/config/defaults.hpp"
#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/scan/scan.hpp"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace faultline::server {
namespace {

namespace core = faultline::core;

constexpr int exit_ok = 0, exit_runtime = 1, exit_usage = 2;

struct scan_args {
    std::string format = "auto";
    std::string patterns;
    std::string templates = "exact";
    std::size_t threads = 0;
    std::vector<std::string> inputs;
};

/// Loads the pattern set: the TSV file given, else the embedded default.
core::result<std::shared_ptr<const core::match::pattern_set>> load_patterns(const std::string& path) {
    std::string text;
    std::string source = "default patterns";
    if (!path.empty()) {
        std::ifstream in(path, std::ios::binary);
        if (!in) return core::make_error(core::errc::io, path + ": cannot open pattern file");
        std::ostringstream ss;
        ss << in.rdbuf();
        text = ss.str();
        source = path;
    } else {
        text = std::string(config::default_patterns_tsv());
    }
    auto parsed = core::match::parse_pattern_tsv(text, source);
    if (!parsed) return parsed.error();
    return core::match::pattern_set::compile(std::move(*parsed));
}

int run_scan(const scan_args& a, std::ostream& out, std::ostream& err) {
    auto patterns = load_patterns(a.patterns);
    if (!patterns) {
        err << "faultline: " << patterns.error().message << '\n';
        return exit_usage;
    }
    core::scan::scan_options opts;
    opts.inputs = a.inputs;
    opts.format = *core::scan::parse_format(a.format);
    opts.threads = a.threads;
    auto totals = core::scan::run(*patterns, opts);
    if (!totals) {
        err << "faultline: " << totals.error().message << '\n';
        return exit_runtime;
    }
    out << core::aggregate::render_report(*totals, **patterns);
    out.flush();
    if (!out) {
        err << "faultline: cannot write the report\n";
        return exit_runtime;
    }
    return exit_ok;
}

} // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    CLI::App app{"faultline: match CloudWatch Logs, Firehose and webhook log events against named error "
                 "patterns, mine error templates, report the aggregates.",
                 "faultline"};
    app.set_version_flag("--version", std::string("faultline ") + FAULTLINE_VERSION);
    app.require_subcommand(1);

    scan_args sa;
    auto* scan = app.add_subcommand("scan", "Process files (or - for stdin; gzip'd input is detected) and print "
                                            "the report JSON on stdout.");
    scan->add_option("--format", sa.format, "Input format: auto (from the first line), jsonl (CloudWatch Logs "
                                            "documents), firehose (Firehose request bodies, one per line), lines "
                                            "(raw log lines)")
        ->check(CLI::IsMember({"auto", "jsonl", "firehose", "lines"}))
        ->default_str("auto");
    scan->add_option("--patterns", sa.patterns, "Pattern file, name<TAB>class<TAB>regex per line (default: the "
                                                "embedded default set)");
    scan->add_option("--templates", sa.templates, "Template mode: exact (masked message, no clustering)")
        ->check(CLI::IsMember({"exact"}))
        ->default_str("exact");
    scan->add_option("--threads", sa.threads, "Worker threads (default: one per core)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1024}));
    scan->add_option("inputs", sa.inputs, "Input files; - reads standard input")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version end here too, with exit code 0.
        const int rc = app.exit(e, out, err);
        return rc == 0 ? exit_ok : exit_usage;
    }
    if (scan->parsed()) return run_scan(sa, out, err);
    return exit_usage;
}

} // namespace faultline::server
