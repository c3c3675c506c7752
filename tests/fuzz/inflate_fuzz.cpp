// Capped gzip: never writes past the cap whatever the headers and trailers claim; what it
// accepts round-trips through our compressor.
#include "fuzz_support.hpp"

#include "faultline/core/decode/gzip.hpp"

namespace {
constexpr std::size_t cap = std::size_t{64} << 10; // small: a bomb hits it in microseconds
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using faultline::fuzz::require;
    static faultline::core::decode::inflater inflater(cap);
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string out;
    if (!inflater.decompress(in, out, faultline::core::decode::json_padding)) return 0;
    require(out.size() <= cap);
    require(out.capacity() >= out.size() + faultline::core::decode::json_padding);
    std::string again;
    require(static_cast<bool>(inflater.decompress(faultline::core::decode::gzip_compress(out, 1), again)));
    require(again == out);
    return 0;
}
