// Generic JSON webhook bodies (object, array, NDJSON, text lines, gzip'd), with the options a
// source can configure picked by the first byte: message fields (dotted paths), group field.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    static fuzz::budgeted_decoder d;
    core::decode::webhook_options options;
    options.text = data[0] & 1;
    options.gzipped = data[0] & 2;
    if (data[0] & 4) options.message_fields = {"detail.message", "log.msg", "message"};
    if (data[0] & 8) options.group_field = "meta.group";
    options.group = "fuzz";
    const std::string body = fuzz::padded(data + 1, size - 1);
    fuzz::counting_sink sink;
    auto r = d.decoder.webhook(body, options, sink);
    if (r) fuzz::require(*r == sink.events);
    fuzz::require(d.inflight.used() == 0);
    return 0;
}
