// The fuzz targets without libFuzzer: runs every file of the given corpora through one target,
// so each seed corpus (and every input a fuzzing run found worth keeping) is a regression test
// in `make test`. Usage: fuzz_regress TARGET FILE|DIR...
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#define FAULTLINE_FUZZ_TARGETS(X)                                                                            \
    X(base64)                                                                                                \
    X(inflate)                                                                                               \
    X(firehose)                                                                                              \
    X(cloudwatch)                                                                                            \
    X(webhook)                                                                                               \
    X(webhook_auth) X(config) X(http_request) X(state) X(session) X(journal) X(otlp) X(cluster_view)

#define FAULTLINE_DECLARE(name)                                                                              \
    extern "C" int faultline_fuzz_##name(const std::uint8_t* data, std::size_t size);
FAULTLINE_FUZZ_TARGETS(FAULTLINE_DECLARE)
#undef FAULTLINE_DECLARE

namespace {

using target_fn = int (*)(const std::uint8_t*, std::size_t);

struct target {
    std::string_view name;
    target_fn fn;
};

#define FAULTLINE_ENTRY(name) target{#name, &faultline_fuzz_##name},
constexpr target targets[] = {FAULTLINE_FUZZ_TARGETS(FAULTLINE_ENTRY)};
#undef FAULTLINE_ENTRY

bool run_file(target_fn fn, const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        return false;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly the input's size, as libFuzzer hands it over (ASan sees any overread).
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    fn(data.data(), data.size());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s TARGET FILE|DIR...\ntargets:", argv[0]);
        for (const auto& t : targets)
            std::fprintf(stderr, " %.*s", static_cast<int>(t.name.size()), t.name.data());
        std::fprintf(stderr, "\n");
        return 2;
    }
    target_fn fn = nullptr;
    for (const auto& t : targets)
        if (t.name == argv[1]) fn = t.fn;
    if (!fn) {
        std::fprintf(stderr, "unknown fuzz target: %s\n", argv[1]);
        return 2;
    }
    std::size_t files = 0;
    for (int i = 2; i < argc; ++i) {
        const std::filesystem::path arg(argv[i]);
        if (std::filesystem::is_directory(arg)) {
            std::vector<std::filesystem::path> paths;
            for (const auto& e : std::filesystem::recursive_directory_iterator(arg))
                if (e.is_regular_file()) paths.push_back(e.path());
            std::sort(paths.begin(), paths.end());
            for (const auto& p : paths) {
                if (!run_file(fn, p)) return 1;
                ++files;
            }
        } else {
            if (!run_file(fn, arg)) return 1;
            ++files;
        }
    }
    if (files == 0) {
        std::fprintf(stderr, "%s: no inputs found\n", argv[1]);
        return 1;
    }
    std::printf("%s: %zu inputs, no failure\n", argv[1], files);
    return 0;
}
