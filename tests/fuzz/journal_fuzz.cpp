// Journal segments (state_dir/journal-<n>.log) are untrusted input: any bytes, replayed at
// start-up into a real pipeline, give the records before the damage and report the damage,
// never a crash. Every record that replays is a delivery this build wrote: written again, it
// reads back the same.
//
// The first byte picks the form of the rest: raw segment bytes (what a damaged disk gives), or
// records (each a u16 length and its bytes) framed with valid headers and checksums, so that the
// record parser and the replay into the pipeline see the fuzzer's bytes; in that form a second
// byte may flip one byte of the framed segment. Files (keeping the damage aside, cutting the
// segment) are journal_test's and the durability test's; this target stays in memory.
#include "fuzz_support.hpp"

#include "faultline/core/aggregate/journal.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    using core::aggregate::journal;
    static core::pipeline::pipeline pipe(
        [] {
            std::vector<core::match::pattern> p(2);
            p[0].name = "error_level", p[0].regex = "ERROR";
            p[1].name = "refused", p[1].regex = "connection refused";
            return core::match::pattern_set::compile(std::move(p)).value();
        }(),
        [] {
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
    if (size < 2) return 0;
    const bool framed = data[0] & 1;
    std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
    std::string segment;
    std::uint64_t framed_records = 0;
    bool flipped = false;
    if (!framed) {
        segment.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
    } else {
        while (rest.size() >= 2) {
            const std::size_t n =
                std::min<std::size_t>(rest.size() - 2, static_cast<unsigned char>(rest[0]) |
                                                           (static_cast<unsigned char>(rest[1]) << 8));
            journal::frame_record(segment, rest.substr(2, n));
            ++framed_records;
            rest.remove_prefix(2 + n);
        }
        if ((data[1] & 0x80) && !segment.empty()) {
            segment[(data[1] * 131u) % segment.size()] ^= static_cast<char>(1 + (data[1] & 0x3f));
            flipped = true;
        }
    }
    std::uint64_t unreadable = 0;
    const auto scan = journal::scan_segment(segment, [&](std::string_view record) {
        auto d = core::pipeline::parse_journal_record(record);
        if (d) {
            auto again = core::pipeline::parse_journal_record(core::pipeline::journal_record(*d));
            fuzz::require(again && again->body == d->body && again->source == d->source &&
                          again->now_ms == d->now_ms && again->kind == d->kind);
        }
        const bool ok = pipe.replay_record(record);
        unreadable += !ok;
        return ok;
    });
    fuzz::require(scan.good_bytes <= segment.size());
    fuzz::require(scan.problem.empty() == (scan.good_bytes == segment.size()));
    if (framed && !flipped)
        // Intact framing: replay stops only at a record the pipeline cannot read.
        fuzz::require(unreadable == 0 ? scan.records == framed_records && scan.problem.empty()
                                      : scan.problem == "record not readable");
    return 0;
}
