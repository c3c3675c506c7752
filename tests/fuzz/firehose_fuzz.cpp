// Firehose HTTP-endpoint bodies: the first byte picks the options (body gzip'd or not, records
// CloudWatch-only or CloudWatch-or-text), the rest is the body.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    static fuzz::budgeted_decoder d;
    core::decode::firehose_options options;
    options.body_gzipped = data[0] & 1;
    options.records = data[0] & 2 ? core::decode::record_format::cloudwatch
                                  : core::decode::record_format::cloudwatch_or_text;
    options.text_group = "fuzz-stream";
    const std::string body = fuzz::padded(data + 1, size - 1);
    fuzz::counting_sink sink;
    auto r = d.decoder.firehose(body, sink, options);
    // Each record is at least {"data":""} in the (decompressed) body.
    if (r && !options.body_gzipped) fuzz::require(r->records * 11 <= body.size());
    fuzz::require(d.inflight.used() == 0); // the request's buffers given back, whatever happened
    return 0;
}
