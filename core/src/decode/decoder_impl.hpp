// decoder's internals, shared by the decoders' translation units (decoder.cpp, otlp.cpp): the
// per-worker parsers and buffers, and the accounting of what a request holds of the budget.
#pragma once

#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <simdjson.h>

#include <algorithm>

namespace faultline::core::decode {

namespace detail {

namespace od = simdjson::ondemand;

inline constexpr std::size_t min_batch = std::size_t{1} << 20;
/// Webhook bodies up to this size are first parsed as one document (the common one-event body),
/// which skips a document stream's set-up; an NDJSON body this small is parsed twice at worst.
inline constexpr std::size_t single_document_bytes = std::size_t{16} << 10;

inline bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline std::string_view skip_space(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && is_json_space(s[i]))
        ++i;
    return s.substr(i);
}

inline std::string json_error(simdjson::error_code e) {
    return simdjson::error_message(e);
}

/// The value of field `name`. find_field_unordered compares keys as written, so a key written
/// with escapes ("message\u0054ype") is only found by the slow path, which unescapes every key.
inline simdjson::simdjson_result<od::value> field(od::object& obj, std::string_view name) {
    auto r = obj.find_field_unordered(name);
    if (r.error() != simdjson::NO_SUCH_FIELD) return r;
    if (auto e = obj.reset().error()) return e;
    for (auto f : obj) {
        od::field fld;
        if (auto e = std::move(f).get(fld)) return e;
        std::string_view key;
        if (auto e = fld.unescaped_key().get(key)) return e;
        if (key == name) {
            od::value v = fld.value();
            return v;
        }
    }
    return simdjson::NO_SUCH_FIELD;
}

/// Error prefix builder: "records[2]: document 1 (offset 345): logEvents[3].message: ..."
inline std::string at(std::string_view ctx, std::string_view what) {
    if (ctx.empty()) return std::string(what);
    std::string s(ctx);
    s += ": ";
    s += what;
    return s;
}

} // namespace detail

using namespace detail;

struct decoder::impl {
    explicit impl(decode_limits l)
        : limits(l)
        , inflate(l.max_decompressed_bytes) {}

    decode_limits limits;
    od::parser outer; // the Firehose envelope / Lambda wrapper
    od::parser inner; // CloudWatch documents inside them
    inflater inflate;
    std::string body_buf;      // a gunzipped request body
    std::string b64_buf;       // a base64-decoded record
    std::string record_buf;    // a gunzipped record
    simdjson::dom::parser dom; // webhooks: random access to dotted paths

    /// Trims the buffers when a request's decoding ends, however it ends.
    struct trim_after_request {
        impl& d;
        ~trim_after_request() { d.trim(); }
    };
    /// Buffers above this capacity, and parsers above min_batch, are not kept past the request
    /// that needed them (simdjson parsers keep their largest capacity): what a worker keeps
    /// between requests is bounded (three buffers of 4 MiB, three parsers of min_batch).
    static constexpr std::size_t keep_bytes = std::size_t{4} << 20;
    void trim() {
        for (std::string* b : {&body_buf, &b64_buf, &record_buf})
            if (b->capacity() > keep_bytes) std::string().swap(*b);
        if (outer.capacity() > min_batch) outer = od::parser{};
        if (inner.capacity() > min_batch) inner = od::parser{};
        if (dom.capacity() > min_batch) dom = simdjson::dom::parser{};
        working_outer = working_inner = 0;
        hold.reset();
    }
    /// What a buffer costs this request: its capacity once it grew past what is kept between
    /// requests, else its size (the kept capacity is the worker's own, not the request's).
    static std::uint64_t charge_of(const std::string& b) noexcept { return charge_of(b, b.size()); }
    /// What `b` is charged when it holds `size` bytes (0: as emptied).
    static std::uint64_t charge_of(const std::string& b, std::size_t size) noexcept {
        return b.capacity() > keep_bytes ? b.capacity() : size;
    }
    std::uint64_t charges_except(const std::string* skip) const noexcept {
        std::uint64_t n = working_outer + working_inner;
        for (const std::string* b : {&body_buf, &b64_buf, &record_buf})
            if (b != skip) n += charge_of(*b);
        return n;
    }
    result<void> refuse(std::uint64_t need) const {
        return make_error(errc::over_budget, "too many bytes in flight: decoding this request needs " +
                                                 std::to_string(need) + " bytes: retry later");
    }
    /// Holds in the in-flight budget what the decode buffers and parsers cost this request now.
    /// Fails when the budget cannot give it.
    result<void> account() {
        const std::uint64_t need = charges_except(nullptr);
        if (!hold.hold_exactly(need)) return refuse(need);
        return {};
    }
    /// Gives `b` (emptied) a capacity of `cap`, reserved in the budget before it is allocated.
    result<void> reserve_buffer(std::string& b, std::size_t cap) {
        b.clear();
        if (cap <= b.capacity()) return {};
        const std::uint64_t need = charges_except(&b) + cap;
        if (!hold.hold_exactly(need)) return refuse(need);
        std::string fresh;
        fresh.reserve(cap);
        b.swap(fresh);
        return account();
    }
    /// simdjson's own allocation for a document of `size` bytes (structural indexes, string
    /// buffer, and the DOM's tape): what parsing it may touch in the worst case.
    static std::uint64_t ondemand_bytes(std::uint64_t size) noexcept { return 4 * size + 5 * size / 3 + 64; }
    static std::uint64_t dom_bytes(std::uint64_t size) noexcept {
        return 8 * ((size + 3 + 63) / 64 * 64) + ondemand_bytes(size);
    }
    /// Reserves the working memory of parsing a document (`bytes`, from the functions above) in
    /// `slot`. More than the whole budget can never be given: errc::too_large (not retryable).
    result<void> charge_parse(std::uint64_t& slot, std::uint64_t bytes) {
        if (bytes <= slot) return {};
        if (limits.budget && bytes > limits.budget->limit())
            return make_error(errc::too_large,
                              "decoding this body needs " + std::to_string(bytes) +
                                  " bytes of parser memory, more than limits.inflight_bytes (" +
                                  std::to_string(limits.budget->limit()) + ")");
        slot = bytes;
        return account();
    }
    budget_hold hold{limits.budget};
    std::uint64_t working_outer = 0; ///< parser memory of the document parsed by `outer` / `dom`
    std::uint64_t working_inner = 0; ///< parser memory of the largest document parsed by `inner`

    /// Gunzips `in` into `out` within the request's remaining decompression allowance (which it
    /// lowers); every buffer the inflater allocates is reserved in the budget first.
    result<void> inflate_within(std::string_view in, std::string& out, std::size_t& allowance) {
        // What `out` held is given back first: it is charged as emptied (charge_of an empty
        // buffer), though its bytes stay, as room the inflater writes over without zeroing it.
        const std::uint64_t others = charges_except(&out);
        const std::uint64_t emptied = charge_of(out, 0);
        if (!hold.hold_exactly(others + emptied)) {
            out.clear(); // refused: nothing of the last record stays in it
            return refuse(others + emptied);
        }
        inflate.set_max_output(allowance);
        auto r = inflate.decompress(in, out, json_padding, [&](std::size_t during_copy) {
            return !limits.budget || hold.hold_exactly(others + during_copy);
        });
        if (auto a = account(); !a) return a;
        if (r) allowance -= out.size();
        return r;
    }

    result<bool> cloudwatch(od::parser& p, std::string_view data, event_sink& sink, record_format format,
                            std::string_view ctx);
    result<firehose_summary> firehose(std::string_view body, event_sink& sink, const firehose_options& o);
    result<std::string_view> unwrap_record(std::string_view data, std::size_t& budget, std::string_view ctx);
    /// Gunzips a whole request body into body_buf within the request's budget (which it lowers).
    result<std::string_view> gunzip_body(std::string_view body, std::size_t& budget, std::string_view how);
};

} // namespace faultline::core::decode
