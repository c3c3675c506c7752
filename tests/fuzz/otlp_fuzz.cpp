// OTLP/HTTP logs request bodies: protobuf (walked on the wire) or OTLP JSON, plain or gzip'd,
// picked by the first byte. Whatever arrives: no crash, no read past the body, the in-flight
// budget back to 0, and a success emits exactly the records it reports.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    static fuzz::budgeted_decoder d;
    core::decode::otlp_options options;
    options.json = data[0] & 1;
    options.gzipped = data[0] & 2;
    if (data[0] & 4) options.message_fields = {"event", "message"};
    const std::string body = fuzz::padded(data + 1, size - 1);
    fuzz::counting_sink sink;
    auto r = d.decoder.otlp(body, options, sink);
    if (r) fuzz::require(r->records == sink.events);
    fuzz::require(d.inflight.used() == 0);
    return 0;
}
