// Firehose HTTP-endpoint bodies: the first byte picks the options (body gzip'd or not, records
// CloudWatch-only or CloudWatch-or-text), the rest is the body.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    static core::decode::decoder decoder(core::decode::decode_limits{std::size_t{4} << 20});
    core::decode::firehose_options options;
    options.body_gzipped = data[0] & 1;
    options.records = data[0] & 2 ? core::decode::record_format::cloudwatch
                                  : core::decode::record_format::cloudwatch_or_text;
    options.text_group = "fuzz-stream";
    const std::string body = fuzz::padded(data + 1, size - 1);
    fuzz::counting_sink sink;
    auto r = decoder.firehose(body, sink, options);
    if (r) fuzz::require(r->records <= body.size());
    return 0;
}
