// Capped, whole-buffer gzip decompression (RFC 1952) with libdeflate.
#pragma once

#include "faultline/core/error.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct libdeflate_decompressor;

namespace faultline::core::decode {

/// True when `data` starts with the gzip magic 1f 8b.
inline bool looks_gzipped(std::string_view data) noexcept {
    return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
           static_cast<unsigned char>(data[1]) == 0x8b;
}

/// One per worker (not thread-safe). Decompresses every member of a gzip stream (RFC 1952
/// allows several, concatenated) into one output, never allocating more than `max_output`
/// bytes: a member that would exceed it is an error naming the cap, whatever its trailer claims.
/// Truncated data, a bad header, a CRC or length mismatch and trailing garbage are errors with
/// the byte offset of the member.
class inflater {
public:
    explicit inflater(std::size_t max_output);
    ~inflater();
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;

    /// Called before `out` is given a larger buffer, with the bytes it will hold while the data is
    /// copied (the old buffer's capacity plus the new one's); false refuses the allocation (the
    /// decompression fails with errc::over_budget). After the copy, `out.capacity()` is exactly
    /// the new capacity.
    using grow_hook = std::function<bool(std::size_t bytes_during_copy)>;

    /// Replaces `out` with the decompressed data. `out` keeps `extra_capacity` spare bytes
    /// beyond its size (e.g. SIMDJSON_PADDING, so the result can be parsed in place).
    result<void> decompress(std::string_view in, std::string& out, std::size_t extra_capacity = 0,
                            const grow_hook& grow = {});

    std::size_t max_output() const noexcept { return max_output_; }
    void set_max_output(std::size_t n) noexcept { max_output_ = n; }

private:
    libdeflate_decompressor* d_;
    std::size_t max_output_;
};

/// gzip-compresses `in` into a single member (tests and load generators).
std::string gzip_compress(std::string_view in, int level = 6);

} // namespace faultline::core::decode
