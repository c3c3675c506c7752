// Strict base64: never crashes, and whatever it accepts is canonical, so encoding the decoded
// bytes gives back the input exactly.
#include "fuzz_support.hpp"

#include "faultline/core/decode/base64.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string out;
    if (faultline::core::decode::base64_decode(in, out))
        faultline::fuzz::require(faultline::core::decode::base64_encode(out) == in);
    return 0;
}
