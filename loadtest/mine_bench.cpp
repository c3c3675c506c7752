// mine_bench: template mining speed and memory, offline.
//   mine_bench PATTERNS.tsv INPUT.jsonl [--distinct N]
// 1. Reads the CloudWatch jsonl input, matches every event, and keeps the masked text of each
//    error-class event (as the service does before mining).
// 2. Times, on one core, over those lines: exact templates (hash map of the 200-byte masked text)
//    and Drain mining (core::mine::template_miner, the service's miner, fed in batches of 256 as
//    the workers do). Prints lines per CPU-second for both.
// 3. Feeds N (default 1 000 000) distinct random error lines to a miner capped at 10 000
//    templates and prints the template count and the process RSS before and after.
#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/match/pattern_set.hpp"
#include "faultline/core/mine/masker.hpp"
#include "faultline/core/mine/template_miner.hpp"

#include <simdjson.h>

#include "thread_cpu.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace faultline::core;

namespace {

long rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && std::fgets(line, sizeof line, f))
        if (!std::strncmp(line, "VmRSS:", 6)) v = std::atol(line + 6);
    if (f) std::fclose(f);
    return v;
}

double feed(const std::vector<std::string>& lines, mine::template_miner& miner) {
    aggregate::string_map<aggregate::template_stats> batch;
    const double t0 = thread_cpu_seconds();
    std::size_t in_batch = 0;
    for (const auto& l : lines) {
        auto it = batch.find(std::string_view(l));
        if (it == batch.end()) it = batch.try_emplace(l).first;
        ++it->second.count;
        if (++in_batch == 256) {
            miner.add(batch, 0);
            in_batch = 0;
        }
    }
    miner.add(batch, 0);
    return thread_cpu_seconds() - t0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: mine_bench PATTERNS.tsv INPUT.jsonl [--distinct N]\n";
        return 2;
    }
    std::size_t distinct = 1'000'000;
    for (int i = 3; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--distinct") distinct = std::stoul(argv[i + 1]);
    std::ifstream pf(argv[1]);
    std::stringstream ps;
    ps << pf.rdbuf();
    auto parsed = match::parse_pattern_tsv(ps.str(), argv[1]);
    if (!parsed) {
        std::cerr << parsed.error().message << "\n";
        return 2;
    }
    auto set = match::pattern_set::compile(std::move(*parsed));
    if (!set) {
        std::cerr << set.error().message << "\n";
        return 2;
    }
    match::matcher matcher(*set);

    // 1. The masked error lines of the input.
    std::vector<std::string> masked, exact_keys;
    {
        std::ifstream in(argv[2]);
        std::string line, text;
        simdjson::ondemand::parser parser;
        while (std::getline(in, line)) {
            if (line.find('{') == std::string::npos) continue;
            simdjson::padded_string doc_text(line);
            simdjson::ondemand::document doc;
            if (parser.iterate(doc_text).get(doc)) continue;
            std::string_view type;
            if (doc["messageType"].get_string().get(type) || type != "DATA_MESSAGE") continue;
            for (auto ev : doc["logEvents"].get_array()) {
                std::string_view msg;
                if (ev["message"].get_string().get(msg)) continue;
                bool error = false;
                for (auto id : matcher.match(msg))
                    error = error || (*set)->is_error(id);
                if (!error) continue;
                mine::mask_message(msg, text, 4096);
                masked.push_back(text);
                mine::mask_message(msg, text);
                exact_keys.push_back(text);
            }
        }
    }
    std::printf("error lines: %zu\n", masked.size());

    // 2. Exact vs Drain, one core, 3 runs each (best).
    double exact_best = 1e9, drain_best = 1e9;
    std::size_t exact_templates = 0, drain_templates = 0;
    for (int run = 0; run < 3; ++run) {
        aggregate::string_map<std::uint64_t> exact;
        const double t0 = thread_cpu_seconds();
        for (const auto& k : exact_keys) {
            auto it = exact.find(std::string_view(k));
            if (it == exact.end())
                exact.emplace(k, 1);
            else
                ++it->second;
        }
        exact_best = std::min(exact_best, thread_cpu_seconds() - t0);
        exact_templates = exact.size();
        mine::template_miner miner(mine::miner_options{}, 0);
        drain_best = std::min(drain_best, feed(masked, miner));
        drain_templates = miner.size();
    }
    std::printf("exact: %zu templates, %.0f lines/CPU-s\n", exact_templates,
                static_cast<double>(masked.size()) / exact_best);
    std::printf("drain: %zu templates, %.0f lines/CPU-s\n", drain_templates,
                static_cast<double>(masked.size()) / drain_best);

    // 3. Distinct random lines against the cap.
    {
        std::mt19937_64 rng(42);
        const char* words[] = {"alpha", "beta",    "gamma", "delta", "failed",
                               "error", "timeout", "disk",  "user",  "node"};
        std::vector<std::string> lines;
        lines.reserve(distinct);
        for (std::size_t i = 0; i < distinct; ++i) {
            std::string l = "ERROR";
            const std::size_t n = 2 + rng() % 14;
            for (std::size_t k = 0; k < n; ++k) {
                l += ' ';
                if (rng() % 3 == 0)
                    l += words[rng() % 10];
                else {
                    const std::uint64_t r = rng();
                    for (int c = 0; c < 8; ++c)
                        l += static_cast<char>('g' + (r >> (c * 4)) % 20);
                }
            }
            lines.push_back(std::move(l));
        }
        const long before = rss_kib();
        mine::miner_options o;
        o.drain.max_clusters = 10'000;
        mine::template_miner miner(o, 0);
        const double secs = feed(lines, miner);
        const long after = rss_kib();
        std::printf("distinct: %zu lines -> %zu templates (cap 10000, %llu evicted), %.0f lines/CPU-s, RSS "
                    "%ld KiB -> %ld KiB\n",
                    lines.size(), miner.size(), static_cast<unsigned long long>(miner.evicted()),
                    static_cast<double>(lines.size()) / secs, before, after);
    }
    return 0;
}
