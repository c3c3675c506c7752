// State files (state_dir/state.json) are untrusted input: any bytes give a state or an error
// naming the field, never a crash. An accepted state is written again and read back (the
// service's own output must always load), then restored into a template miner as at start-up.
#include "fuzz_support.hpp"

#include "faultline/core/aggregate/state.hpp"
#include "faultline/core/mine/template_miner.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    static const auto patterns = [] {
        std::vector<core::match::pattern> p(3);
        p[0].name = "timeout", p[0].regex = "timed out";
        p[1].name = "refused", p[1].regex = "connection refused";
        p[2].name = "oom", p[2].regex = "out of memory", p[2].cls = core::match::pattern_class::warn;
        return core::match::pattern_set::compile(std::move(p)).value();
    }();
    static core::mine::template_miner miner(
        [] {
            core::mine::miner_options o;
            o.drain.max_clusters = 64;
            o.shards = 4;
            return o;
        }(),
        0);
    const std::string_view json(reinterpret_cast<const char*>(data), size);
    auto parsed = core::aggregate::parse_state(json, *patterns);
    if (!parsed) {
        fuzz::require(parsed.error().message.starts_with("state file: "));
        return 0;
    }
    const std::string again = core::aggregate::serialize_state(*parsed, *patterns, 0);
    auto reparsed = core::aggregate::parse_state(again, *patterns);
    fuzz::require(reparsed.has_value());
    fuzz::require(reparsed->events == parsed->events &&
                  reparsed->templates.size() == parsed->templates.size());
    for (auto& [text, stats] : parsed->templates) {
        std::vector<std::string> previous =
            stats.details ? stats.details->previous_texts : std::vector<std::string>{};
        miner.restore(text, std::move(previous), std::move(stats));
    }
    core::aggregate::string_map<core::aggregate::template_stats> out;
    miner.take(out); // and empty again for the next input
    fuzz::require(out.size() <= 64 + 4);
    return 0;
}
