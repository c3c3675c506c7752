// The YAML configuration: any text gives a configuration or problems naming where, never a
// crash; an accepted configuration can be dumped (faultline check-config).
#include "fuzz_support.hpp"

#include "faultline/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    // Patterns are not compiled: that would fuzz Vectorscan's compiler, not our reader.
    auto r = config::parse(yaml, "fuzz.yaml", false);
    if (r) {
        fuzz::require(r.problems.empty());
        fuzz::require(!config::dump(*r.value).empty());
    } else {
        fuzz::require(!r.problems.empty());
        for (const auto& p : r.problems)
            fuzz::require(!p.to_string().empty());
    }
    return 0;
}
