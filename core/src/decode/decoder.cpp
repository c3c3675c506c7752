#include "faultline/core/decode/decoder.hpp"

#include "decoder_impl.hpp"

#include "faultline/core/decode/base64.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <simdjson.h>

#include <algorithm>

namespace faultline::core::decode {

static_assert(json_padding >= simdjson::SIMDJSON_PADDING, "json_padding must cover simdjson's padding");

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
        // The error names where it is (made only then): "records[3]: document 1 (offset 0): ...".
        auto fail = [&](std::string_view what) -> result<bool> {
            if (fallback && !emitted && doc_no == 1) return false;
            return make_error(errc::json, at(ctx, "document " + std::to_string(doc_no) + " (offset " +
                                                      std::to_string(offset) + ")") +
                                              ": " + std::string(what));
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
            auto item = [&] { return "logEvents[" + std::to_string(index) + "]"; };
            od::object event;
            if (auto e = ev.get_object().get(event))
                return fail(item() + ": " +
                            (e == simdjson::INCORRECT_TYPE ? "expected an object" : json_error(e)));
            std::string_view message;
            if (auto e = field(event, "message").get_string().get(message))
                return fail(item() + ".message: " +
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
    // `where` names the event in an error (made only then): "document 2 (offset 40): [3]".
    auto one_event = [&](simdjson::dom::element ev, const auto& where) -> result<void> {
        if (!ev.is_object()) return make_error(errc::json, where() + ": expected a JSON object");
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
            return make_error(errc::document, where() + ": no message field (looked for " + names + ")");
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
    // A document: one event, or an array of them.
    auto one_document = [&](simdjson::dom::element doc, std::size_t doc_no,
                            std::size_t offset) -> result<void> {
        auto where = [&] {
            return "document " + std::to_string(doc_no) + " (offset " + std::to_string(offset) + ")";
        };
        simdjson::dom::array arr;
        if (doc.get_array().get(arr) != simdjson::SUCCESS) return one_event(doc, where);
        std::size_t i = 0;
        for (simdjson::dom::element ev : arr) {
            if (auto r = one_event(ev, [&] { return where() + ": [" + std::to_string(i) + "]"; }); !r)
                return r;
            ++i;
        }
        return {};
    };
    // A small body of one document (a webhook of one event, or of one array) is parsed as one,
    // without a document stream's set-up. Anything else, or any error, takes the stream's way
    // (which words the error).
    if (body.size() <= single_document_bytes) {
        simdjson::dom::element doc;
        if (d.dom.parse(reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), false).get(doc) ==
            simdjson::SUCCESS) {
            if (auto r = one_document(doc, 1, body.size() - skip_space(body).size()); !r) return r.error();
            return events;
        }
    }
    simdjson::dom::document_stream stream;
    if (auto e = d.dom
                     .parse_many(reinterpret_cast<const std::uint8_t*>(body.data()), body.size(),
                                 std::max(body.size() + 1, min_batch))
                     .get(stream))
        return make_error(errc::json, "invalid JSON: " + json_error(e));
    std::size_t doc_no = 0;
    for (auto it = stream.begin(); it != stream.end(); ++it) {
        ++doc_no;
        simdjson::dom::element doc;
        if (auto e = (*it).get(doc))
            return make_error(errc::json, "document " + std::to_string(doc_no) + " (offset " +
                                              std::to_string(it.current_index()) +
                                              "): invalid JSON: " + json_error(e));
        if (auto r = one_document(doc, doc_no, it.current_index()); !r) return r.error();
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
