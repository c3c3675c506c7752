// engine_limit: the machine's limit for the seed job, as a yardstick for faultline's engine.
// A minimal single-threaded loop that only does the unavoidable work on a jsonl input: parse each
// CloudWatch document with simdjson (ondemand), unescape every logEvents[].message and run the
// Vectorscan database of the pattern file over it. No masking, no counting, no report.
// Prints events, CPU seconds and events per CPU-second.
//   engine_limit PATTERNS.tsv INPUT.jsonl
#include <hs.h>
#include <simdjson.h>

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

hs_database_t* compile(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> regexes;
    std::vector<unsigned> flags, ids;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto t2 = line.find('\t', line.find('\t') + 1);
        std::string rx = line.substr(t2 + 1);
        unsigned f = HS_FLAG_SINGLEMATCH;
        if (rx.rfind("(?i)", 0) == 0) {
            rx = rx.substr(4);
            f |= HS_FLAG_CASELESS;
        }
        regexes.push_back(rx);
        flags.push_back(f);
        ids.push_back(static_cast<unsigned>(ids.size()));
    }
    std::vector<const char*> exprs;
    for (auto& r : regexes)
        exprs.push_back(r.c_str());
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                         HS_MODE_BLOCK, nullptr, &db, &err) != HS_SUCCESS) {
        std::cerr << "engine_limit: " << err->message << "\n";
        std::exit(2);
    }
    return db;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: engine_limit PATTERNS.tsv INPUT.jsonl\n";
        return 2;
    }
    hs_database_t* db = compile(argv[1]);
    hs_scratch_t* scratch = nullptr;
    hs_alloc_scratch(db, &scratch);
    auto on_match = [](unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) -> int {
        ++*static_cast<std::size_t*>(ctx);
        return 0;
    };

    std::FILE* f = std::fopen(argv[2], "rb");
    if (!f) {
        std::perror(argv[2]);
        return 1;
    }
    simdjson::ondemand::parser parser;
    std::string carry, block(4 << 20, '\0');
    std::size_t events = 0, hits = 0;
    const double t0 = cpu_seconds();
    std::string line;
    line.reserve(8 << 20);
    for (;;) {
        const std::size_t got = std::fread(block.data(), 1, block.size(), f);
        std::string_view data(block.data(), got);
        while (!data.empty()) {
            const auto nl = data.find('\n');
            if (nl == std::string_view::npos) {
                carry.append(data);
                break;
            }
            line.assign(carry);
            line.append(data.substr(0, nl));
            carry.clear();
            data.remove_prefix(nl + 1);
            if (line.find('{') == std::string::npos) continue;
            line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
            simdjson::ondemand::document doc;
            if (parser.iterate(simdjson::padded_string_view(line.data(), line.size(), line.capacity()))
                    .get(doc))
                return 1;
            std::string_view type;
            if (doc["messageType"].get_string().get(type) || type != "DATA_MESSAGE") continue;
            for (auto ev : doc["logEvents"].get_array()) {
                std::string_view msg;
                if (ev["message"].get_string().get(msg)) return 1;
                hs_scan(db, msg.data(), static_cast<unsigned>(msg.size()), 0, scratch, on_match, &hits);
                ++events;
            }
        }
        if (got < block.size()) break;
    }
    const double cpu = cpu_seconds() - t0;
    std::printf("events %zu  matches %zu  cpu_s %.3f  events_per_cpu_s %.0f\n", events, hits, cpu,
                events / cpu);
    return 0;
}
