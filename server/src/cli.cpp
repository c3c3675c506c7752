#include "faultline/server/cli.hpp"

#include "faultline/config/config.hpp"
#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/scan/scan.hpp"
#include "faultline/server/log.hpp"
#include "faultline/server/server.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace faultline::server {
namespace {

namespace core = faultline::core;

constexpr int exit_ok = 0, exit_runtime = 1, exit_usage = 2;

struct scan_args {
    std::string config;
    std::string format = "auto";
    std::string patterns;
    std::string templates = "exact";
    std::size_t threads = 0;
    std::vector<std::string> inputs;
    bool quiet = false;
    std::string assignments;
};

/// `faultline scan`'s progress: one line on stderr rewritten in place, only when stderr is a
/// terminal (and not --quiet), from the first second on, at most four times a second; erased at
/// the end.
class progress_line {
public:
    progress_line(std::ostream& err, bool enabled)
        : err_(err)
        , enabled_(enabled) {}
    ~progress_line() {
        if (shown_) err_ << "\r\033[K" << std::flush;
    }
    void operator()(const core::scan::progress& p) {
        if (!enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(250)) return;
        last_ = now;
        shown_ = true;
        const double secs = std::chrono::duration<double>(now - start_).count();
        char line[256];
        const int n =
            std::snprintf(line, sizeof line, "\r\033[Kscan: %.*s",
                          static_cast<int>(std::min<std::size_t>(p.input.size(), 60)), p.input.data());
        std::string out(line, static_cast<std::size_t>(std::max(n, 0)));
        if (p.inputs > 1)
            out += " (" + std::to_string(p.input_index + 1) + "/" + std::to_string(p.inputs) + ")";
        if (p.input_size)
            std::snprintf(line, sizeof line, "  %5.1f%%",
                          100.0 * static_cast<double>(p.input_bytes) / static_cast<double>(p.input_size)),
                out += line;
        std::snprintf(line, sizeof line, "  %.1f MiB read, %.1f MiB/s, %.0f events/s",
                      static_cast<double>(p.total_bytes) / (1 << 20),
                      static_cast<double>(p.total_bytes) / (1 << 20) / secs,
                      static_cast<double>(p.events) / secs);
        out += line;
        err_ << out << std::flush;
    }

private:
    std::ostream& err_;
    bool enabled_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_{};
};

/// Reads a file whole; nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return ss.str();
}

/// The configuration of --config F, or the embedded default. Problems are printed, one per line.
/// `compiled` receives the pattern set when the file's patterns were compiled to validate them.
std::optional<config::config> load_config(const std::string& path, std::ostream& err,
                                          std::shared_ptr<const core::match::pattern_set>* compiled = nullptr,
                                          bool compile_patterns = true) {
    if (path.empty()) return config::default_config();
    auto text = read_file(path);
    if (!text) {
        err << "faultline: " << path << ": cannot read the configuration file\n";
        return std::nullopt;
    }
    auto parsed = config::parse(*text, path, compile_patterns);
    for (const auto& p : parsed.problems)
        err << "faultline: " << p.to_string() << '\n';
    if (!parsed) return std::nullopt;
    if (compiled) *compiled = parsed.compiled;
    return std::move(*parsed.value);
}

/// Where `faultline scan` caches compiled pattern databases: $FAULTLINE_CACHE_DIR, else
/// $XDG_CACHE_HOME/faultline, else ~/.cache/faultline ("" disables the cache). A cached database
/// spares each run the Vectorscan compile (tens of ms and ~9 MB of compiler working set).
std::string scan_cache_dir() {
    if (const char* d = std::getenv("FAULTLINE_CACHE_DIR")) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/faultline";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/faultline";
    return {};
}

/// The pattern set: the TSV file given, else the configuration's patterns.
core::result<std::shared_ptr<const core::match::pattern_set>> load_patterns(const std::string& tsv,
                                                                            const config::config& cfg) {
    if (tsv.empty()) return core::match::pattern_set::compile_cached(cfg.patterns, scan_cache_dir());
    auto text = read_file(tsv);
    if (!text) return core::make_error(core::errc::io, tsv + ": cannot open pattern file");
    auto parsed = core::match::parse_pattern_tsv(*text, tsv);
    if (!parsed) return parsed.error();
    return core::match::pattern_set::compile_cached(std::move(*parsed), scan_cache_dir());
}

int run_scan(const scan_args& a, std::ostream& out, std::ostream& err) {
    auto cfg = load_config(a.config, err);
    if (!cfg) return exit_usage;
    auto patterns = load_patterns(a.patterns, *cfg);
    if (!patterns) {
        err << "faultline: " << patterns.error().message << '\n';
        return exit_usage;
    }
    core::scan::scan_options opts;
    opts.inputs = a.inputs;
    opts.format = *core::scan::parse_format(a.format);
    opts.threads = a.threads;
    opts.limits.max_decompressed_bytes = cfg->limits.decompressed_bytes;
    opts.analyze.max_message_bytes = cfg->limits.message_bytes;
    if (a.templates == "drain") opts.mining = cfg->mining();
    if (!a.assignments.empty() && !opts.mining) {
        err << "faultline: --assignments needs --templates drain\n";
        return exit_usage;
    }
    opts.assignments = a.assignments;
    auto totals = [&] {
        progress_line progress(err, !a.quiet && ::isatty(STDERR_FILENO));
        opts.on_progress = [&progress](const core::scan::progress& p) { progress(p); };
        return core::scan::run(*patterns, opts);
    }();
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

struct serve_args {
    std::string config;
    std::string listen, admin_listen, state_dir;
    std::string log_format = "json";
    std::size_t io_threads = 0, workers = 0;
    bool workers_set = false;
    bool state_dir_set = false; ///< given, even as "" (which disables state)
};

/// FAULTLINE_* environment variables override the file; command-line flags override both.
bool apply_overrides(config::config& cfg, const serve_args& a, std::ostream& err) {
    auto env = [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (!v || !*v) return std::nullopt;
        return std::string(v);
    };
    auto count = [&](const char* name, const std::string& v, std::size_t& out) {
        std::size_t n = 0;
        const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
        if (r.ec != std::errc() || r.ptr != v.data() + v.size()) {
            err << "faultline: " << name << ": expected a non-negative integer, got '" << v << "'\n";
            return false;
        }
        out = n;
        return true;
    };
    if (auto v = env("FAULTLINE_LISTEN")) cfg.listen = *v;
    if (auto v = env("FAULTLINE_ADMIN_LISTEN")) cfg.admin_listen = *v;
    if (auto v = env("FAULTLINE_STATE_DIR")) cfg.state_dir = *v;
    if (auto v = env("FAULTLINE_IO_THREADS"); v && !count("FAULTLINE_IO_THREADS", *v, cfg.io_threads))
        return false;
    if (auto v = env("FAULTLINE_WORKERS"); v && !count("FAULTLINE_WORKERS", *v, cfg.workers)) return false;
    if (auto v = env("FAULTLINE_FIREHOSE_ACCESS_KEYS")) {
        cfg.firehose.access_keys.clear();
        std::string_view rest = *v;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            if (auto k = rest.substr(0, comma); !k.empty()) {
                if (k == config::redacted_placeholder) {
                    err << "faultline: FAULTLINE_FIREHOSE_ACCESS_KEYS: " << k
                        << " is what check-config prints in place of a key, not a key\n";
                    return false;
                }
                cfg.firehose.access_keys.emplace_back(k);
            }
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
    }
    if (!a.listen.empty()) cfg.listen = a.listen;
    if (!a.admin_listen.empty()) cfg.admin_listen = a.admin_listen;
    if (a.state_dir_set) cfg.state_dir = a.state_dir;
    if (a.io_threads) cfg.io_threads = a.io_threads;
    if (a.workers_set) cfg.workers = a.workers;
    // The file's rules hold for the overrides too (FAULTLINE_WORKERS=100000 is refused as
    // workers: 100000 in the file is).
    if (const auto problems = config::validate(cfg); !problems.empty()) {
        for (const auto& p : problems)
            err << "faultline: " << p.path << " (after FAULTLINE_* variables and flags): " << p.message
                << "\n";
        return false;
    }
    // 0: one I/O thread per two cores (at least one). Measured on 2 cores, alternating, wrk on
    // the same cores: tiny webhooks 54-57 k req/s with 1 I/O thread vs 45-47 k with 2 (nginx
    // 70-75 k); Firehose bodies at saturation the same with either (2 101 vs 2 005 req/s,
    // medians). On 16 cores (issue 11) 8 I/O threads were the best figure for both, and one per
    // 4 cores the worst for webhooks. Workers (one per core) are niced, and the I/O threads run
    // SCHED_BATCH (their wakeups wait for a free core or a tick instead of preempting a worker).
    if (cfg.io_threads == 0) cfg.io_threads = std::max(1u, std::thread::hardware_concurrency() / 2);
    return true;
}

} // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    CLI::App app{"faultline: match CloudWatch Logs, Firehose and webhook log events against named error "
                 "patterns, mine error templates, report the aggregates.",
                 "faultline"};
    app.set_version_flag("--version", std::string("faultline ") + FAULTLINE_VERSION);
    app.require_subcommand(1);

    scan_args sa;
    auto* scan =
        app.add_subcommand("scan", "Process files (or - for stdin; gzip'd input is detected) and print "
                                   "the report JSON on stdout.");
    scan->add_option("--format", sa.format,
                     "Input format: auto (from the first line), jsonl (CloudWatch Logs "
                     "documents), firehose (Firehose request bodies, one per line), lines "
                     "(raw log lines)")
        ->check(CLI::IsMember({"auto", "jsonl", "firehose", "lines"}))
        ->default_str("auto");
    scan->add_option("--config", sa.config,
                     "Configuration file (YAML); its patterns and limits are used "
                     "(default: the embedded configuration)");
    scan->add_option("--patterns", sa.patterns,
                     "Pattern file, name<TAB>class<TAB>regex per line (overrides the "
                     "configuration's patterns)");
    scan->add_option("--templates", sa.templates,
                     "Template mode: exact (the masked message, as the seed benchmark "
                     "specifies) or drain (masked, then clustered Drain-style)")
        ->check(CLI::IsMember({"exact", "drain"}))
        ->default_str("exact");
    scan->add_option("--threads", sa.threads, "Worker threads (default: one per core)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1024}));
    scan->add_option("--assignments", sa.assignments,
                     "With --templates drain: write FILE, one line per input event in input "
                     "order, template_id<TAB>template (the event's template at the end of the "
                     "run; -<TAB> for an event not mined); mining then runs on one thread");
    scan->add_option("inputs", sa.inputs, "Input files; - reads standard input")->required();
    scan->add_flag("--quiet,-q", sa.quiet,
                   "No progress line on stderr (shown only on a terminal, after a second)");

    serve_args va;
    auto* serve_cmd =
        app.add_subcommand("serve", "Run the HTTP service (Firehose, CloudWatch and webhook ingestion; "
                                    "metrics and JSON API) until SIGTERM/SIGINT.");
    serve_cmd->add_option("--config", va.config,
                          "Configuration file (YAML; default: the embedded configuration)");
    serve_cmd->add_option("--listen", va.listen,
                          "HOST:PORT to listen on (overrides listen; env FAULTLINE_LISTEN)");
    serve_cmd->add_option("--admin-listen", va.admin_listen,
                          "HOST:PORT serving only /metrics, /healthz, /readyz (env FAULTLINE_ADMIN_LISTEN)");
    serve_cmd->add_option_function<std::string>(
        "--state-dir", [&](const std::string& d) { va.state_dir = d, va.state_dir_set = true; },
        "State directory; \"\" disables state (env FAULTLINE_STATE_DIR)");
    serve_cmd
        ->add_option("--log-format", va.log_format,
                     "Logs on stderr: json (one object per line) or text (for people)")
        ->check(CLI::IsMember({"json", "text"}))
        ->default_str("json");
    serve_cmd->add_option("--threads", va.io_threads, "HTTP I/O threads (env FAULTLINE_IO_THREADS)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
    serve_cmd
        ->add_option_function<std::size_t>(
            "--workers", [&](const std::size_t& n) { va.workers = n, va.workers_set = true; },
            "Worker threads, 0 = one per core (env FAULTLINE_WORKERS)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1024}));

    std::string check_file;
    auto* check = app.add_subcommand("check-config", "Validate a configuration file and print the effective "
                                                     "configuration (exit 0 valid, 1 invalid).");
    bool check_keys = false;
    check->add_option("file", check_file, "Configuration file (YAML)");
    check->add_flag("--keys", check_keys,
                    "Print every configuration key (type, default, whether a reload applies it) as the "
                    "README's Markdown table, and exit");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version end here too, with exit code 0.
        const int rc = app.exit(e, out, err);
        return rc == 0 ? exit_ok : exit_usage;
    }
    if (scan->parsed()) return run_scan(sa, out, err);
    if (serve_cmd->parsed()) {
        if (const char* f = std::getenv("FAULTLINE_LOG_FORMAT");
            f && va.log_format == "json" && std::string_view(f) == "text")
            va.log_format = "text";
        server::log::set_format(va.log_format == "text" ? server::log::format::text
                                                        : server::log::format::json);
        auto cfg = load_config(va.config, err, nullptr, /*compile_patterns=*/false);
        if (!cfg || !apply_overrides(*cfg, va, err)) return exit_usage;
        // Compiled once, through the cache in the state directory (fast restarts).
        auto compiled = core::match::pattern_set::compile_cached(cfg->patterns, cfg->state_dir);
        if (!compiled) {
            // Report every rejected pattern at its place in the file.
            if (!va.config.empty())
                load_config(va.config, err, nullptr, true);
            else
                err << "faultline: " << compiled.error().message << '\n';
            return exit_usage;
        }
        // SIGHUP / POST /-/reload: the same file, the same overrides, compiled the same way.
        auto reloader = [va]() -> server::reload_input {
            server::reload_input in;
            std::ostringstream problems;
            auto next = load_config(va.config, problems, nullptr, /*compile_patterns=*/true);
            if (next && !apply_overrides(*next, va, problems)) next.reset();
            if (next) {
                auto set = core::match::pattern_set::compile_cached(next->patterns, next->state_dir);
                if (!set)
                    problems << "faultline: " << set.error().message << '\n';
                else
                    in.patterns = *set, in.cfg = std::move(next);
            }
            // One problem per line, without the "faultline: " prefix of the command line.
            std::istringstream lines(problems.str());
            for (std::string line; std::getline(lines, line);) {
                if (line.rfind("faultline: ", 0) == 0) line.erase(0, 11);
                in.problems += (in.problems.empty() ? "" : "; ") + line;
            }
            return in;
        };
        return server::serve(*cfg, std::move(*compiled), std::move(reloader));
    }
    if (check->parsed()) {
        if (check_keys) {
            out << config::schema_markdown();
            return exit_ok;
        }
        if (check_file.empty()) {
            err << "faultline: check-config needs a configuration file (or --keys)\n";
            return exit_usage;
        }
        auto cfg = load_config(check_file, err);
        if (!cfg) return exit_runtime;
        out << config::dump(*cfg);
        return exit_ok;
    }
    return exit_usage;
}

} // namespace faultline::server
