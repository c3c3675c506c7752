#include "faultline/core/decode/gzip.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

namespace faultline::core::decode {
namespace {

constexpr std::uint8_t flag_hcrc = 0x02, flag_extra = 0x04, flag_name = 0x08, flag_comment = 0x10;

std::uint32_t le32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}

error gzip_error(std::size_t member_offset, const std::string& what) {
    return make_error(errc::gzip, "gzip member at offset " + std::to_string(member_offset) + ": " + what);
}

/// Parses a member header at `pos`; returns the offset of the deflate stream.
result<std::size_t> parse_header(const unsigned char* p, std::size_t n, std::size_t pos) {
    const std::size_t start = pos;
    if (n - pos < 10) return gzip_error(start, "truncated header");
    if (p[pos] != 0x1f || p[pos + 1] != 0x8b) return gzip_error(start, "bad magic (not gzip data)");
    if (p[pos + 2] != 8)
        return gzip_error(start, "unsupported compression method " + std::to_string(p[pos + 2]));
    const std::uint8_t flags = p[pos + 3];
    if (flags & 0xe0) return gzip_error(start, "reserved header flags set");
    pos += 10;
    if (flags & flag_extra) {
        if (n - pos < 2) return gzip_error(start, "truncated header (FEXTRA)");
        const std::size_t xlen = p[pos] | (p[pos + 1] << 8);
        pos += 2;
        if (n - pos < xlen) return gzip_error(start, "truncated header (FEXTRA)");
        pos += xlen;
    }
    for (const std::uint8_t f : {flag_name, flag_comment}) {
        if (!(flags & f)) continue;
        const auto* end = static_cast<const unsigned char*>(std::memchr(p + pos, 0, n - pos));
        if (!end)
            return gzip_error(start,
                              f == flag_name ? "truncated header (FNAME)" : "truncated header (FCOMMENT)");
        pos = static_cast<std::size_t>(end - p) + 1;
    }
    if (flags & flag_hcrc) {
        if (n - pos < 2) return gzip_error(start, "truncated header (FHCRC)");
        pos += 2;
    }
    return pos;
}

} // namespace

inflater::inflater(std::size_t max_output)
    : d_(libdeflate_alloc_decompressor())
    , max_output_(max_output) {
    if (!d_) throw std::bad_alloc();
}

inflater::~inflater() {
    libdeflate_free_decompressor(d_);
}

result<void> inflater::decompress(std::string_view in, std::string& out, std::size_t extra_capacity,
                                  const grow_hook& grow) {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    // `out` is the caller's buffer, reused call after call: its bytes past `total` (what this
    // call has produced) are only room. It is grown by resize() where it is too short (zeroing
    // just the growth) and cut to `total` at the end: not emptied first and zeroed again over
    // the whole output for every record (150 instructions an event, for nothing).
    std::size_t total = 0;
    auto fail = [&](error e) {
        out.clear();
        return e;
    };
    // Gives `out` room for `size` bytes plus the extra capacity: a new buffer of exactly that
    // capacity (reserve() on a used string may round up to twice the old capacity), announced to
    // the hook first; what was produced is carried over.
    auto ensure = [&](std::size_t size) -> bool {
        const std::size_t cap = size + extra_capacity;
        if (cap <= out.capacity()) return true;
        if (grow && !grow(out.capacity() + cap)) return false;
        std::string fresh;
        fresh.reserve(cap);
        fresh.append(out.data(), total);
        out.swap(fresh);
        return true;
    };
    std::size_t pos = 0;
    if (n == 0) return fail(make_error(errc::gzip, "empty gzip data"));
    while (pos < n) {
        const std::size_t member = pos;
        auto body = parse_header(p, n, pos);
        if (!body) return fail(body.error());
        pos = *body;
        // Size the output from the trailer's ISIZE when it is plausible (only a hint: it is the
        // last member's size mod 2^32), grow on demand, never beyond the cap.
        const std::size_t produced = total;
        const std::size_t room_left = max_output_ - produced;
        // deflate cannot expand more than ~1032:1, so a larger claim is a lie and ignored.
        const std::size_t compressed = n - pos;
        std::size_t guess = n >= 4 ? le32(p + n - 4) : 0;
        if (guess > compressed * 1032 + 1024) guess = 0;
        guess = std::max<std::size_t>({guess, compressed * 4, 4096});
        std::size_t room = std::min(guess, room_left);
        for (;;) {
            if (!ensure(produced + room))
                return fail(make_error(errc::over_budget,
                                       "too many bytes in flight to decompress this request: retry later"));
            if (out.size() < produced + room) out.resize(produced + room);
            std::size_t in_used = 0, out_got = 0;
            const auto rc = libdeflate_deflate_decompress_ex(d_, p + pos, n - pos, out.data() + produced,
                                                             room, &in_used, &out_got);
            if (rc == LIBDEFLATE_SUCCESS) {
                total = produced + out_got;
                pos += in_used;
                break;
            }
            if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) {
                if (room >= room_left)
                    return fail(make_error(errc::too_large, "gzip member at offset " +
                                                                std::to_string(member) +
                                                                ": decompressed data exceeds the limit of " +
                                                                std::to_string(max_output_) + " bytes"));
                room = std::min(room_left, room * 2);
                continue;
            }
            return fail(gzip_error(member, "corrupt or truncated deflate data"));
        }
        if (n - pos < 8) return fail(gzip_error(member, "truncated (missing CRC32/ISIZE trailer)"));
        const std::uint32_t crc = le32(p + pos), isize = le32(p + pos + 4);
        pos += 8;
        const std::size_t len = total - produced;
        if (libdeflate_crc32(0, out.data() + produced, len) != crc)
            return fail(gzip_error(member, "CRC32 mismatch (corrupt data)"));
        if (static_cast<std::uint32_t>(len) != isize)
            return fail(gzip_error(member, "length mismatch (ISIZE " + std::to_string(isize) + ", got " +
                                               std::to_string(len) + ")"));
        if (pos < n && !looks_gzipped(in.substr(pos)))
            return fail(make_error(errc::gzip,
                                   "trailing garbage after gzip member at offset " + std::to_string(pos)));
    }
    if (!ensure(total)) // only for an empty result: the loop made room for the rest
        return fail(make_error(errc::over_budget,
                               "too many bytes in flight to decompress this request: retry later"));
    out.resize(total);
    return {};
}

std::string gzip_compress(std::string_view in, int level) {
    libdeflate_compressor* c = libdeflate_alloc_compressor(level);
    if (!c) throw std::bad_alloc();
    std::string out(libdeflate_gzip_compress_bound(c, in.size()), '\0');
    const std::size_t got = libdeflate_gzip_compress(c, in.data(), in.size(), out.data(), out.size());
    libdeflate_free_compressor(c);
    out.resize(got);
    return out;
}

} // namespace faultline::core::decode
