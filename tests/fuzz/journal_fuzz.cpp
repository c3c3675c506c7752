// Journal segments (state_dir/journal-<n>.log) are untrusted input: any bytes, replayed at
// start-up into a real pipeline, give the records before the damage and a kept-aside tail,
// never a crash. Every record that replays is a delivery this build wrote: written again, it
// reads back the same.
#include "fuzz_support.hpp"

#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    namespace fs = std::filesystem;
    static const auto patterns = [] {
        std::vector<core::match::pattern> p(2);
        p[0].name = "error_level", p[0].regex = "ERROR";
        p[1].name = "refused", p[1].regex = "connection refused";
        return core::match::pattern_set::compile(std::move(p)).value();
    }();
    static core::pipeline::pipeline pipe(patterns, [] {
        core::pipeline::pipeline_options o;
        o.workers = 1;
        o.limits.max_decompressed_bytes = 1 << 20;
        core::mine::miner_options m;
        m.drain.max_clusters = 64;
        o.mining = m;
        o.totals.max_templates = 64;
        o.totals.max_groups = 16;
        return o;
    }());
    static const std::string dir =
        (fs::temp_directory_path() / ("faultline-journal-fuzz-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
        std::ofstream(core::aggregate::journal::segment_path(dir, 1), std::ios::binary)
            .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    const auto report = core::aggregate::journal::replay(dir, 0, [](std::string_view record) {
        auto d = core::pipeline::parse_journal_record(record);
        if (d) {
            auto again = core::pipeline::parse_journal_record(core::pipeline::journal_record(*d));
            fuzz::require(again && again->body == d->body && again->source == d->source &&
                          again->now_ms == d->now_ms && again->kind == d->kind);
        }
        return pipe.replay_record(record);
    });
    fuzz::require(report.kept_aside.size() <= 1);
    fs::remove_all(dir);
    return 0;
}
