// CloudWatch Logs subscription documents, one or concatenated, and the /v1/cloudwatch delivery
// forms (plain, gzip'd, Lambda awslogs). The first byte picks the entry point.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    static fuzz::budgeted_decoder d;
    auto& decoder = d.decoder;
    const std::string body = fuzz::padded(data + 1, size - 1);
    fuzz::counting_sink sink;
    switch (data[0] % 3) {
    case 0:
        (void)decoder.cloudwatch(body, sink, core::decode::record_format::cloudwatch);
        break;
    case 1: {
        auto r = decoder.cloudwatch(body, sink, core::decode::record_format::cloudwatch_or_text);
        // "Not CloudWatch JSON" emits nothing: the caller then reads the data as text.
        if (r && !*r) fuzz::require(sink.events == 0 && sink.controls == 0);
        break;
    }
    default:
        (void)decoder.cloudwatch_delivery(body, sink);
        break;
    }
    fuzz::require(d.inflight.used() == 0);
    return 0;
}
