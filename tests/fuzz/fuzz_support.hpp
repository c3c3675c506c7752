// Shared by the fuzz targets: a sink that counts what decoders emit and checks their contract
// (every event belongs to a group that was announced first), and a padded copy of the input.
#pragma once

#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/event_sink.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace faultline::fuzz {

/// Aborts (a finding for libFuzzer, a failure for the regression run) when `ok` is false.
inline void require(bool ok) {
    if (!ok) std::abort();
}

class counting_sink final : public core::decode::event_sink {
public:
    void on_document(std::string_view group) override { touch(group), grouped_ = true; }
    void on_text_source(std::string_view group) override { touch(group), grouped_ = true; }
    void on_event(std::string_view message) override {
        require(grouped_); // decoders announce the group before its events
        touch(message);
        ++events;
    }
    void on_control_message() override { ++controls; }

    std::size_t events = 0;
    std::size_t controls = 0;
    std::size_t bytes = 0;

private:
    // Reads every byte of the view, so ASan sees a view that points outside its buffer.
    void touch(std::string_view s) {
        for (char c : s)
            bytes += static_cast<unsigned char>(c) & 1U;
    }
    bool grouped_ = false;
};

/// A decoder as the service configures it: 4 MiB of decompressed data per request, its buffers
/// counted in `inflight` while a request is decoded (which must be back to 0 after every call).
struct budgeted_decoder {
    core::byte_budget inflight{std::uint64_t{64} << 20};
    core::decode::decoder decoder{core::decode::decode_limits{std::size_t{4} << 20, &inflight}};
};

/// The input as a std::string with the JSON decoders' padding readable past its end.
inline std::string padded(const std::uint8_t* data, std::size_t size) {
    std::string s;
    s.reserve(size + core::decode::json_padding);
    s.assign(reinterpret_cast<const char*>(data), size);
    return s;
}

} // namespace faultline::fuzz
