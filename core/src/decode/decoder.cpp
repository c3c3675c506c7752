#include "faultline/core/decode/decoder.hpp"

#include "faultline/core/decode/base64.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <simdjson.h>

#include <algorithm>

namespace faultline::core::decode {

static_assert(json_padding >= simdjson::SIMDJSON_PADDING, "json_padding must cover simdjson's padding");

namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t min_batch = std::size_t{1} << 20;

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view skip_space(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && is_json_space(s[i]))
        ++i;
    return s.substr(i);
}

std::string json_error(simdjson::error_code e) {
    return simdjson::error_message(e);
}

/// The value of field `name`. find_field_unordered compares keys as written, so a key written
/// with escapes ("message\u0054ype") is only found by the slow path, which unescapes every key.
simdjson::simdjson_result<od::value> field(od::object& obj, std::string_view name) {
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
std::string at(std::string_view ctx, std::string_view what) {
    if (ctx.empty()) return std::string(what);
    std::string s(ctx);
    s += ": ";
    s += what;
    return s;
}

} // namespace

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
    static std::uint64_t charge_of(const std::string& b) noexcept {
        return b.capacity() > keep_bytes ? b.capacity() : b.size();
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
        out.clear();
        if (auto r = account(); !r) return r; // what `out` held is given back first
        inflate.set_max_output(allowance);
        const std::uint64_t others = charges_except(&out);
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

result<bool> decoder::impl::cloudwatch(od::parser& p, std::string_view data, event_sink& sink,
                                       record_format format, std::string_view ctx) {
    const bool fallback = format == record_format::cloudwatch_or_text;
    if (fallback && (skip_space(data).empty() || skip_space(data).front() != '{')) return false;
    if (auto r = charge_parse(&p == &outer ? working_outer : working_inner, ondemand_bytes(data.size())); !r)
        return r.error();
    od::document_stream stream;
    const std::size_t batch = std::max(data.size() + 1, min_batch);
    if (auto e = p.iterate_many(data.data(), data.size(), batch).get(stream)) {
        if (fallback) return false;
        return make_error(errc::json, at(ctx, "invalid JSON: " + json_error(e)));
    }
    std::size_t doc_no = 0;
    bool emitted = false;
    for (auto it = stream.begin(); it != stream.end(); ++it) {
        ++doc_no;
        const std::size_t offset = it.current_index();
        const std::string where =
            at(ctx, "document " + std::to_string(doc_no) + " (offset " + std::to_string(offset) + ")");
        auto fail = [&](std::string_view what) -> result<bool> {
            if (fallback && !emitted && doc_no == 1) return false;
            return make_error(errc::json, where + ": " + std::string(what));
        };
        od::document_reference doc;
        if (auto e = (*it).get(doc)) return fail("invalid JSON: " + json_error(e));
        od::object obj;
        if (auto e = doc.get_object().get(obj)) {
            if (e == simdjson::INCORRECT_TYPE) return fail("expected a JSON object");
            return fail("invalid JSON: " + json_error(e));
        }
        std::string_view type;
        auto type_field = field(obj, "messageType");
        if (type_field.error() == simdjson::NO_SUCH_FIELD) {
            if (fallback && doc_no == 1) return false;
            continue; // not a subscription document: ignored, counted nowhere
        }
        if (auto e = type_field.get_string().get(type))
            return fail("messageType: " +
                        std::string(e == simdjson::INCORRECT_TYPE ? "expected a string" : json_error(e)));
        if (type == "CONTROL_MESSAGE") {
            sink.on_control_message();
            emitted = true;
            continue;
        }
        if (type != "DATA_MESSAGE") {
            if (fallback && doc_no == 1) return false;
            continue;
        }
        std::string_view group;
        if (auto e = field(obj, "logGroup").get_string().get(group))
            return fail(e == simdjson::NO_SUCH_FIELD
                            ? "logGroup is missing"
                            : "logGroup: " + std::string(e == simdjson::INCORRECT_TYPE ? "expected a string"
                                                                                       : json_error(e)));
        od::array events;
        if (auto e = field(obj, "logEvents").get_array().get(events))
            return fail(e == simdjson::NO_SUCH_FIELD
                            ? "logEvents is missing"
                            : "logEvents: " + std::string(e == simdjson::INCORRECT_TYPE ? "expected an array"
                                                                                        : json_error(e)));
        sink.on_document(group);
        emitted = true;
        std::size_t index = 0;
        for (auto ev : events) {
            const std::string item = "logEvents[" + std::to_string(index) + "]";
            od::object event;
            if (auto e = ev.get_object().get(event))
                return fail(item + ": " +
                            (e == simdjson::INCORRECT_TYPE ? "expected an object" : json_error(e)));
            std::string_view message;
            if (auto e = field(event, "message").get_string().get(message))
                return fail(item + ".message: " +
                            (e == simdjson::NO_SUCH_FIELD    ? std::string("missing")
                             : e == simdjson::INCORRECT_TYPE ? std::string("expected a string")
                                                             : json_error(e)));
            sink.on_event(message);
            ++index;
        }
    }
    if (stream.truncated_bytes() != 0) {
        const std::size_t at_byte = stream.size_in_bytes() - stream.truncated_bytes();
        if (fallback && !emitted) return false;
        return make_error(errc::json,
                          at(ctx, "incomplete JSON document at offset " + std::to_string(at_byte)));
    }
    return true;
}

result<std::string_view> decoder::impl::unwrap_record(std::string_view data, std::size_t& budget,
                                                      std::string_view ctx) {
    if (auto r = reserve_buffer(b64_buf, data.size() / 4 * 3 + json_padding); !r) return r.error();
    if (auto r = base64_decode(data, b64_buf); !r)
        return make_error(errc::base64, at(ctx, "data: " + r.error().message));
    if (auto r = account(); !r) return r.error();
    if (!looks_gzipped(b64_buf)) return std::string_view(b64_buf); // capacity holds the padding
    if (auto r = inflate_within(b64_buf, record_buf, budget); !r) {
        error e = r.error();
        if (e.code == errc::over_budget) return e;
        if (e.code == errc::too_large)
            e.message = "decompressed data exceeds the limit of " +
                        std::to_string(limits.max_decompressed_bytes) + " bytes per request";
        e.message = at(ctx, "data: " + e.message);
        return e;
    }
    return std::string_view(record_buf);
}

result<std::string_view> decoder::impl::gunzip_body(std::string_view body, std::size_t& budget,
                                                    std::string_view how) {
    if (auto r = inflate_within(body, body_buf, budget); !r) {
        error e = r.error();
        if (e.code == errc::over_budget) return e;
        if (e.code == errc::too_large)
            e.message = "decompressed body exceeds the limit of " +
                        std::to_string(limits.max_decompressed_bytes) + " bytes per request";
        else
            e.message = "body (" + std::string(how) + "): " + e.message;
        return e;
    }
    return std::string_view(body_buf);
}

result<firehose_summary> decoder::impl::firehose(std::string_view body, event_sink& sink,
                                                 const firehose_options& o) {
    std::size_t budget = limits.max_decompressed_bytes;
    if (o.body_gzipped) {
        auto inflated = gunzip_body(body, budget, "Content-Encoding: gzip");
        if (!inflated) return inflated.error();
        body = *inflated;
    }
    firehose_summary summary;
    if (auto r = charge_parse(working_outer, ondemand_bytes(body.size())); !r) return r.error();
    od::document_stream stream;
    if (auto e =
            outer.iterate_many(body.data(), body.size(), std::max(body.size() + 1, min_batch)).get(stream))
        return make_error(errc::json, "invalid JSON: " + json_error(e));
    auto it = stream.begin();
    if (!(it != stream.end())) {
        if (stream.truncated_bytes() != 0)
            return make_error(errc::json, "invalid JSON: incomplete request object");
        return make_error(errc::json, "empty request body");
    }
    od::document_reference doc;
    if (auto e = (*it).get(doc)) return make_error(errc::json, "invalid JSON: " + json_error(e));
    od::object obj;
    if (auto e = doc.get_object().get(obj))
        return make_error(errc::json, e == simdjson::INCORRECT_TYPE ? "expected a JSON object"
                                                                    : "invalid JSON: " + json_error(e));
    {
        auto f = field(obj, "requestId");
        if (f.error() != simdjson::NO_SUCH_FIELD) {
            std::string_view id;
            if (auto e = f.get_string().get(id))
                return make_error(errc::json, "requestId: " + (e == simdjson::INCORRECT_TYPE
                                                                   ? std::string("expected a string")
                                                                   : json_error(e)));
            summary.has_request_id = true;
            summary.request_id = std::string(id);
        }
    }
    od::array records;
    if (auto e = field(obj, "records").get_array().get(records))
        return make_error(errc::json, e == simdjson::NO_SUCH_FIELD
                                          ? std::string("records is missing")
                                          : "records: " + (e == simdjson::INCORRECT_TYPE
                                                               ? std::string("expected an array")
                                                               : json_error(e)));
    std::size_t index = 0;
    for (auto rec : records) {
        const std::string ctx = "records[" + std::to_string(index) + "]";
        od::object record;
        if (auto e = rec.get_object().get(record))
            return make_error(
                errc::json,
                ctx + ": " +
                    (e == simdjson::INCORRECT_TYPE ? std::string("expected an object") : json_error(e)));
        std::string_view data;
        if (auto e = field(record, "data").get_string().get(data))
            return make_error(errc::json,
                              ctx + ".data: " +
                                  (e == simdjson::NO_SUCH_FIELD    ? std::string("missing")
                                   : e == simdjson::INCORRECT_TYPE ? std::string("expected a string")
                                                                   : json_error(e)));
        auto payload = unwrap_record(data, budget, ctx);
        if (!payload) return payload.error();
        auto is_cwl = cloudwatch(inner, *payload, sink, o.records, ctx);
        if (!is_cwl) return is_cwl.error();
        if (!*is_cwl) decoder::lines(*payload, o.text_group, sink);
        ++index;
    }
    if (++it != stream.end() || stream.truncated_bytes() != 0)
        return make_error(errc::json, "trailing content after the request object");
    summary.records = index;
    return summary;
}

decoder::decoder(decode_limits limits)
    : impl_(std::make_unique<impl>(limits)) {}
decoder::~decoder() = default;

const decode_limits& decoder::limits() const noexcept {
    return impl_->limits;
}

result<bool> decoder::cloudwatch(std::string_view data, event_sink& sink, record_format format) {
    const impl::trim_after_request trim_after{*impl_};
    return impl_->cloudwatch(impl_->inner, data, sink, format, {});
}

result<firehose_summary> decoder::firehose(std::string_view body, event_sink& sink,
                                           const firehose_options& options) {
    const impl::trim_after_request trim_after{*impl_}; // also when the sink throws
    return impl_->firehose(body, sink, options);
}

namespace {

/// Follows a dotted path ("data.message") through objects.
simdjson::simdjson_result<simdjson::dom::element> dotted(simdjson::dom::element e, std::string_view path) {
    while (true) {
        const std::size_t dot = path.find('.');
        simdjson::dom::object obj;
        if (auto err = e.get_object().get(obj)) return err;
        auto r = obj[path.substr(0, dot)];
        if (dot == std::string_view::npos || r.error()) return r;
        e = r.value_unsafe();
        path.remove_prefix(dot + 1);
    }
}

} // namespace

result<std::size_t> decoder::webhook(std::string_view body, const webhook_options& o, event_sink& sink) {
    impl& d = *impl_;
    const impl::trim_after_request trim_after{d};
    if (o.gzipped) {
        std::size_t budget = d.limits.max_decompressed_bytes;
        auto inflated = d.gunzip_body(body, budget, "Content-Encoding: gzip");
        if (!inflated) return inflated.error();
        body = *inflated;
    }
    std::size_t events = 0;
    if (o.text) {
        struct counting_sink final : event_sink {
            event_sink& inner;
            std::size_t n = 0;
            explicit counting_sink(event_sink& s)
                : inner(s) {}
            void on_document(std::string_view g) override { inner.on_document(g); }
            void on_text_source(std::string_view g) override { inner.on_text_source(g); }
            void on_event(std::string_view m) override { ++n, inner.on_event(m); }
            void on_control_message() override { inner.on_control_message(); }
        } counter(sink);
        decoder::lines(body, o.group, counter);
        return counter.n;
    }
    if (skip_space(body).empty()) return make_error(errc::json, "empty body");
    if (auto r = d.charge_parse(d.working_outer, impl::dom_bytes(body.size())); !r) return r.error();
    simdjson::dom::document_stream stream;
    if (auto e = d.dom
                     .parse_many(reinterpret_cast<const std::uint8_t*>(body.data()), body.size(),
                                 std::max(body.size() + 1, min_batch))
                     .get(stream))
        return make_error(errc::json, "invalid JSON: " + json_error(e));
    auto one_event = [&](simdjson::dom::element ev, const std::string& where) -> result<void> {
        if (!ev.is_object()) return make_error(errc::json, where + ": expected a JSON object");
        std::string_view message;
        bool found = false;
        for (const auto& field_path : o.message_fields) {
            auto m = dotted(ev, field_path);
            if (m.error()) continue;
            found = true;
            std::string_view text;
            if (m.get_string().get(text) == simdjson::SUCCESS)
                message = text;
            else {
                d.record_buf = simdjson::minify(m.value_unsafe()); // at most the event's own bytes
                if (auto a = d.account(); !a) return a;
                message = d.record_buf;
            }
            break;
        }
        if (!found) {
            std::string names;
            for (const auto& f : o.message_fields)
                names += (names.empty() ? "" : ", ") + f;
            return make_error(errc::document, where + ": no message field (looked for " + names + ")");
        }
        std::string_view group = o.group;
        if (!o.group_field.empty()) {
            std::string_view g;
            if (dotted(ev, o.group_field).get_string().get(g) == simdjson::SUCCESS && !g.empty()) group = g;
        }
        sink.on_text_source(group);
        sink.on_event(message);
        ++events;
        return {};
    };
    std::size_t doc_no = 0;
    for (auto it = stream.begin(); it != stream.end(); ++it) {
        ++doc_no;
        const std::string where =
            "document " + std::to_string(doc_no) + " (offset " + std::to_string(it.current_index()) + ")";
        simdjson::dom::element doc;
        if (auto e = (*it).get(doc))
            return make_error(errc::json, where + ": invalid JSON: " + json_error(e));
        simdjson::dom::array arr;
        if (doc.get_array().get(arr) == simdjson::SUCCESS) {
            std::size_t i = 0;
            for (simdjson::dom::element ev : arr) {
                if (auto r = one_event(ev, where + ": [" + std::to_string(i) + "]"); !r) return r.error();
                ++i;
            }
        } else if (auto r = one_event(doc, where); !r) {
            return r.error();
        }
    }
    if (stream.truncated_bytes() != 0)
        return make_error(errc::json, "incomplete JSON document at offset " +
                                          std::to_string(stream.size_in_bytes() - stream.truncated_bytes()));
    return events;
}

result<void> decoder::cloudwatch_delivery(std::string_view body, event_sink& out) {
    // A delivery must hold at least one subscription document: documents without a messageType,
    // or with another one, are skipped (as in `faultline scan`), but a delivery of nothing else
    // is refused, naming the field, instead of acknowledged with nothing counted.
    struct recognizing_sink final : event_sink {
        event_sink& inner;
        bool recognized = false;
        explicit recognizing_sink(event_sink& s)
            : inner(s) {}
        void on_document(std::string_view g) override { recognized = true, inner.on_document(g); }
        void on_text_source(std::string_view g) override { inner.on_text_source(g); }
        void on_event(std::string_view m) override { inner.on_event(m); }
        void on_control_message() override { recognized = true, inner.on_control_message(); }
    } sink(out);
    auto r = cloudwatch_delivery_impl(body, sink);
    if (r && !sink.recognized)
        return make_error(errc::document, "messageType: no document has messageType DATA_MESSAGE or "
                                          "CONTROL_MESSAGE (not a CloudWatch Logs subscription delivery)");
    return r;
}

result<void> decoder::cloudwatch_delivery_impl(std::string_view body, event_sink& sink) {
    impl& d = *impl_;
    const impl::trim_after_request trim_after{d};
    std::size_t budget = d.limits.max_decompressed_bytes;
    if (looks_gzipped(body)) {
        auto inflated = d.gunzip_body(body, budget, "gzip");
        if (!inflated) return inflated.error();
        body = *inflated;
    }
    // The Lambda form is an object whose only key is "awslogs".
    std::string_view rest = skip_space(body);
    if (!rest.empty() && rest.front() == '{' && skip_space(rest.substr(1)).starts_with("\"awslogs\"")) {
        if (auto r = d.charge_parse(d.working_outer, impl::ondemand_bytes(body.size())); !r) return r.error();
        od::document_stream stream;
        if (auto e = d.outer.iterate_many(body.data(), body.size(), std::max(body.size() + 1, min_batch))
                         .get(stream))
            return make_error(errc::json, "invalid JSON: " + json_error(e));
        auto it = stream.begin();
        if (!(it != stream.end())) return make_error(errc::json, "invalid JSON: incomplete awslogs object");
        od::document_reference doc;
        if (auto e = (*it).get(doc)) return make_error(errc::json, "invalid JSON: " + json_error(e));
        std::string_view data;
        if (auto e = doc["awslogs"]["data"].get_string().get(data))
            return make_error(errc::json,
                              "awslogs.data: " + (e == simdjson::NO_SUCH_FIELD ? std::string("missing")
                                                  : e == simdjson::INCORRECT_TYPE
                                                      ? std::string("expected a string")
                                                      : json_error(e)));
        auto payload = d.unwrap_record(data, budget, "awslogs");
        if (!payload) return payload.error();
        if (++it != stream.end() || stream.truncated_bytes() != 0)
            return make_error(errc::json, "trailing content after the awslogs object");
        auto r = d.cloudwatch(d.inner, *payload, sink, record_format::cloudwatch, "awslogs.data");
        if (!r) return r.error();
        return {};
    }
    auto r = d.cloudwatch(d.inner, body, sink, record_format::cloudwatch, {});
    if (!r) return r.error();
    return {};
}

void decoder::lines(std::string_view data, std::string_view group, event_sink& sink) {
    sink.on_text_source(group);
    while (!data.empty()) {
        const std::size_t nl = data.find('\n');
        std::string_view line = data.substr(0, nl);
        data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t\r\f\v") == std::string_view::npos) continue;
        sink.on_event(line);
    }
}

std::optional<std::string> slack_challenge(std::string_view body) {
    if (body.size() > (64 << 10) || body.find("url_verification") == std::string_view::npos)
        return std::nullopt;
    simdjson::padded_string copy(body);
    simdjson::dom::parser parser;
    simdjson::dom::object o;
    if (parser.parse(copy).get(o)) return std::nullopt;
    std::string_view type, challenge;
    if (o["type"].get(type) || type != "url_verification" || o["challenge"].get(challenge))
        return std::nullopt;
    return std::string(challenge);
}

} // namespace faultline::core::decode
