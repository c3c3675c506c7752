// OTLP/HTTP logs: ExportLogsServiceRequest as protobuf (walked on the wire: every string is a
// view into the body, nothing is allocated per record, so a body of tiny records cannot grow
// into objects many times its size) or as OTLP's JSON encoding (simdjson's DOM). Both read the
// same fields and make the same events: a record replayed from the journal in either encoding
// gives what it gave when it arrived.
#include "faultline/core/decode/base64.hpp"
#include "faultline/core/decode/decoder.hpp"

#include "decoder_impl.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

namespace faultline::core::decode {

namespace {

/// How deep arrays and maps may nest inside a body (OTLP's AnyValue is recursive).
constexpr int max_depth = 32;

// Field numbers (opentelemetry/proto v1.11.0, third_party/opentelemetry-proto).
namespace f {
constexpr std::uint32_t request_resource_logs = 1; // ExportLogsServiceRequest
constexpr std::uint32_t resource = 1;              // ResourceLogs
constexpr std::uint32_t scope_logs = 2;
constexpr std::uint32_t resource_attributes = 1; // Resource
constexpr std::uint32_t log_records = 2;         // ScopeLogs
constexpr std::uint32_t severity_number = 2;     // LogRecord
constexpr std::uint32_t severity_text = 3;
constexpr std::uint32_t body = 5;
constexpr std::uint32_t kv_key = 1; // KeyValue
constexpr std::uint32_t kv_value = 2;
constexpr std::uint32_t list_values = 1; // ArrayValue, KeyValueList
// AnyValue's oneof
constexpr std::uint32_t string_value = 1;
constexpr std::uint32_t bool_value = 2;
constexpr std::uint32_t int_value = 3;
constexpr std::uint32_t double_value = 4;
constexpr std::uint32_t array_value = 5;
constexpr std::uint32_t kvlist_value = 6;
constexpr std::uint32_t bytes_value = 7;
} // namespace f

enum wire : std::uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

/// One protobuf message, field by field, from a view: a length-delimited field is a view into
/// the input. Every read is bounds-checked; `bad` says the bytes are not a protobuf message.
struct pb_fields {
    std::string_view in;
    bool bad = false;
    std::uint32_t field = 0;
    std::uint32_t type = 0;
    std::uint64_t number = 0; ///< varint, fixed64 and fixed32 fields
    std::string_view bytes;   ///< length-delimited fields

    explicit pb_fields(std::string_view message)
        : in(message) {}

    /// The next field; false at the end of the message or when it is not protobuf.
    bool next() {
        if (in.empty() || bad) return false;
        std::uint64_t key = 0;
        if (!read_varint(key)) return fail();
        field = static_cast<std::uint32_t>(key >> 3);
        type = static_cast<std::uint32_t>(key & 7);
        if (field == 0 || key >> 32) return fail();
        switch (type) {
        case varint:
            if (!read_varint(number)) return fail();
            return true;
        case fixed64:
            return fixed(8);
        case fixed32:
            return fixed(4);
        case length_delimited: {
            std::uint64_t n = 0;
            if (!read_varint(n) || n > in.size()) return fail();
            bytes = in.substr(0, static_cast<std::size_t>(n));
            in.remove_prefix(static_cast<std::size_t>(n));
            return true;
        }
        default: // groups (3, 4) are not used by OTLP; 6 and 7 do not exist
            return fail();
        }
    }
    bool is(std::uint32_t fld, std::uint32_t t) const noexcept { return field == fld && type == t; }

private:
    bool fail() {
        bad = true;
        return false;
    }
    bool read_varint(std::uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (in.empty()) return false;
            const auto b = static_cast<unsigned char>(in.front());
            in.remove_prefix(1);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return true;
        }
        return false; // more than 10 bytes
    }
    bool fixed(std::size_t n) {
        if (in.size() < n) return fail();
        number = 0;
        for (std::size_t i = 0; i < n; ++i)
            number |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
        in.remove_prefix(n);
        return true;
    }
};

/// The short name of a SeverityNumber (1-24); empty for 0 (unspecified) and out-of-range values.
std::string_view severity_name(std::uint64_t n) noexcept {
    static constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    if (n < 1 || n > 24) return {};
    return names[(n - 1) / 4];
}

/// The short name of a SeverityNumber written as its enum name ("SEVERITY_NUMBER_ERROR2"): the
/// JSON encoding asks for integers, and receivers such as the Collector accept names too.
std::string_view severity_name(std::string_view enum_name) noexcept {
    constexpr std::string_view prefix = "SEVERITY_NUMBER_";
    if (!enum_name.starts_with(prefix)) return {};
    enum_name.remove_prefix(prefix.size());
    if (!enum_name.empty() && enum_name.back() >= '2' && enum_name.back() <= '4') enum_name.remove_suffix(1);
    for (const std::string_view n : {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"})
        if (enum_name == n) return n;
    return {};
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            out += "\\u00";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    out += '"';
}

void append_double(std::string& out, double v) {
    if (!std::isfinite(v)) {
        out += std::isnan(v) ? "\"NaN\"" : (v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
    out.append(buf, static_cast<std::size_t>(n));
}

/// The rank of `key` in `names` (its index), or names.size() when it is not there.
std::size_t rank_of(std::string_view key, const std::vector<std::string>& names) noexcept {
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == key) return i;
    return names.size();
}

// ---- protobuf ------------------------------------------------------------------------------

/// What an AnyValue holds: its last oneof field (protobuf: the last one wins).
struct pb_any {
    std::uint32_t kind = 0; ///< 0: no value
    std::uint64_t number = 0;
    std::string_view bytes;
};

result<pb_any> read_any(std::string_view message) {
    pb_any a;
    pb_fields r(message);
    while (r.next()) {
        switch (r.field) {
        case f::string_value:
        case f::array_value:
        case f::kvlist_value:
        case f::bytes_value:
            if (r.type != length_delimited) continue;
            a = {r.field, 0, r.bytes};
            break;
        case f::bool_value:
        case f::int_value:
            if (r.type != varint) continue;
            a = {r.field, r.number, {}};
            break;
        case f::double_value:
            if (r.type != fixed64) continue;
            a = {r.field, r.number, {}};
            break;
        default:
            break; // string_value_strindex (profiles) and later additions: not a log body
        }
    }
    if (r.bad) return make_error(errc::protobuf, "AnyValue: not a protobuf message");
    return a;
}

/// A KeyValue's key and value (the value's bytes: an AnyValue).
struct pb_kv {
    std::string_view key;
    std::string_view value;
    bool has_value = false;
};

result<pb_kv> read_kv(std::string_view message) {
    pb_kv kv;
    pb_fields r(message);
    while (r.next()) {
        if (r.is(f::kv_key, length_delimited))
            kv.key = r.bytes;
        else if (r.is(f::kv_value, length_delimited))
            kv.value = r.bytes, kv.has_value = true;
    }
    if (r.bad) return make_error(errc::protobuf, "KeyValue: not a protobuf message");
    return kv;
}

/// Appends an AnyValue as JSON.
result<void> render_any(const pb_any& a, std::string& out, int depth);

result<void> render_list(std::string_view message, bool map, std::string& out, int depth) {
    if (depth > max_depth)
        return make_error(errc::protobuf, "body nests arrays and maps deeper than " + std::to_string(max_depth));
    out += map ? '{' : '[';
    bool first = true;
    pb_fields r(message);
    while (r.next()) {
        if (!r.is(f::list_values, length_delimited)) continue;
        if (!first) out += ',';
        first = false;
        if (map) {
            auto kv = read_kv(r.bytes);
            if (!kv) return kv.error();
            append_json_string(out, kv->key);
            out += ':';
            auto v = read_any(kv->value);
            if (!v) return v.error();
            if (auto e = render_any(*v, out, depth + 1); !e) return e;
        } else {
            auto v = read_any(r.bytes);
            if (!v) return v.error();
            if (auto e = render_any(*v, out, depth + 1); !e) return e;
        }
    }
    if (r.bad) return make_error(errc::protobuf, "ArrayValue/KeyValueList: not a protobuf message");
    out += map ? '}' : ']';
    return {};
}

result<void> render_any(const pb_any& a, std::string& out, int depth) {
    switch (a.kind) {
    case f::string_value:
        append_json_string(out, a.bytes);
        return {};
    case f::bool_value:
        out += a.number ? "true" : "false";
        return {};
    case f::int_value:
        out += std::to_string(static_cast<std::int64_t>(a.number));
        return {};
    case f::double_value: {
        double d = 0;
        std::memcpy(&d, &a.number, sizeof d);
        append_double(out, d);
        return {};
    }
    case f::bytes_value:
        append_json_string(out, base64_encode(a.bytes));
        return {};
    case f::array_value:
    case f::kvlist_value:
        return render_list(a.bytes, a.kind == f::kvlist_value, out, depth);
    default:
        out += "null";
        return {};
    }
}

} // namespace

/// Reads OTLP records (either encoding) into events: shared by both walkers.
struct otlp_reader {
    decoder::impl& d;
    const otlp_options& o;
    event_sink& sink;
    otlp_summary summary;

    /// The event of a record: `message` (after its severity) as one event of the current group.
    void event(std::string_view severity, std::string_view message) {
        ++summary.records;
        if (severity.empty()) return sink.on_event(message);
        d.record_buf.clear();
        d.record_buf.append(severity);
        d.record_buf += ' ';
        d.record_buf.append(message);
        sink.on_event(d.record_buf);
    }
};

namespace {

result<void> pb_record(otlp_reader& rd, std::string_view message) {
    std::uint64_t severity_number = 0;
    std::string_view severity_text, body;
    bool has_body = false;
    pb_fields r(message);
    while (r.next()) {
        if (r.is(f::severity_number, varint))
            severity_number = r.number;
        else if (r.is(f::severity_text, length_delimited))
            severity_text = r.bytes;
        else if (r.is(f::body, length_delimited))
            body = r.bytes, has_body = true;
    }
    if (r.bad) return make_error(errc::protobuf, "LogRecord: not a protobuf message");
    pb_any value;
    if (has_body) {
        auto v = read_any(body);
        if (!v) return v.error();
        value = *v;
    }
    if (value.kind == 0) { // no body, or an empty AnyValue: nothing to match
        ++rd.summary.rejected;
        return {};
    }
    std::string_view severity = severity_name(severity_number);
    if (severity.empty()) severity = severity_text;
    if (value.kind == f::string_value) {
        rd.event(severity, value.bytes);
        return {};
    }
    // A map: its first message field when it has one (a string as it is, anything else as JSON).
    std::string& text = rd.d.b64_buf;
    text.clear();
    if (value.kind == f::kvlist_value) {
        std::size_t best = rd.o.message_fields.size();
        pb_any chosen;
        pb_fields list(value.bytes);
        while (list.next()) {
            if (!list.is(f::list_values, length_delimited)) continue;
            auto kv = read_kv(list.bytes);
            if (!kv) return kv.error();
            const std::size_t rank = rank_of(kv->key, rd.o.message_fields);
            if (rank >= best) continue;
            auto v = read_any(kv->value);
            if (!v) return v.error();
            best = rank;
            chosen = *v;
        }
        if (list.bad) return make_error(errc::protobuf, "KeyValueList: not a protobuf message");
        if (best < rd.o.message_fields.size()) {
            if (chosen.kind == f::string_value) {
                rd.event(severity, chosen.bytes);
                return {};
            }
            value = chosen;
        }
    }
    if (auto e = render_any(value, text, 0); !e) return e;
    if (auto a = rd.d.account(); !a) return a;
    rd.event(severity, text);
    return {};
}

/// The group of a ResourceLogs: the first of group_attributes its resource has (a non-empty string).
result<std::string_view> pb_group(const otlp_options& o, std::string_view resource_logs) {
    std::string_view group = o.group;
    std::size_t best = o.group_attributes.size();
    pb_fields r(resource_logs);
    while (r.next()) {
        if (!r.is(f::resource, length_delimited)) continue;
        pb_fields res(r.bytes);
        while (res.next()) {
            if (!res.is(f::resource_attributes, length_delimited)) continue;
            auto kv = read_kv(res.bytes);
            if (!kv) return kv.error();
            const std::size_t rank = rank_of(kv->key, o.group_attributes);
            if (rank >= best) continue;
            auto v = read_any(kv->value);
            if (!v) return v.error();
            if (v->kind == f::string_value && !v->bytes.empty()) best = rank, group = v->bytes;
        }
        if (res.bad) return make_error(errc::protobuf, "Resource: not a protobuf message");
    }
    if (r.bad) return make_error(errc::protobuf, "ResourceLogs: not a protobuf message");
    return group;
}

result<void> pb_request(otlp_reader& rd, std::string_view body) {
    pb_fields req(body);
    std::size_t i = 0;
    while (req.next()) {
        if (!req.is(f::request_resource_logs, length_delimited)) continue;
        const std::string where = "resourceLogs[" + std::to_string(i++) + "]";
        // Fields may come in any order: the resource (the group) first, then the records.
        auto group = pb_group(rd.o, req.bytes);
        if (!group) return make_error(errc::protobuf, where + ": " + group.error().message);
        rd.sink.on_text_source(*group);
        pb_fields rl(req.bytes);
        while (rl.next()) {
            if (!rl.is(f::scope_logs, length_delimited)) continue;
            pb_fields scope(rl.bytes);
            while (scope.next()) {
                if (!scope.is(f::log_records, length_delimited)) continue;
                if (auto e = pb_record(rd, scope.bytes); !e)
                    return make_error(e.error().code, where + ": " + e.error().message);
            }
            if (scope.bad) return make_error(errc::protobuf, where + ": ScopeLogs: not a protobuf message");
        }
    }
    if (req.bad) return make_error(errc::protobuf, "ExportLogsServiceRequest: not a protobuf message");
    return {};
}

// ---- JSON ----------------------------------------------------------------------------------

using element = simdjson::dom::element;

/// A field by OTLP's lowerCamelCase name, or by its protobuf name (the JSON mapping accepts both).
simdjson::simdjson_result<element> member(element obj, std::string_view camel, std::string_view snake = {}) {
    auto v = obj[camel];
    if (v.error() == simdjson::NO_SUCH_FIELD && !snake.empty()) return obj[snake];
    return v;
}

/// An array field (absent or null: nullopt, as an empty one); an error names the field when it
/// is something else. (A default-constructed dom::array is not an empty array: never iterated.)
result<std::optional<simdjson::dom::array>> array_of(element obj, std::string_view camel, std::string_view snake,
                                                     const std::string& where) {
    auto v = member(obj, camel, snake);
    if (v.error() == simdjson::NO_SUCH_FIELD || v.value_unsafe().is_null())
        return std::optional<simdjson::dom::array>();
    simdjson::dom::array a;
    if (v.get_array().get(a) != simdjson::SUCCESS)
        return make_error(errc::json, where + "." + std::string(camel) + ": expected an array");
    return std::optional<simdjson::dom::array>(a);
}

/// The elements of an array_of() result (none when it was absent).
simdjson::dom::array elements(const std::optional<simdjson::dom::array>& a) {
    static const simdjson::dom::array empty = [] {
        static simdjson::dom::parser p;
        return p.parse(std::string_view("[]")).get_array().value_unsafe();
    }();
    return a ? *a : empty;
}

/// An AnyValue in OTLP JSON: {"stringValue": ...} etc. Sets `str` for a string value; else
/// appends the value as JSON to `out`. `kind` as the protobuf field (0: no value).
result<void> json_any(element v, std::string& out, std::string_view* str, std::uint32_t& kind, int depth,
                      const std::string& where) {
    kind = 0;
    simdjson::dom::object obj;
    if (v.is_null()) return {};
    if (v.get_object().get(obj) != simdjson::SUCCESS)
        return make_error(errc::json, where + ": expected an AnyValue object");
    if (depth > max_depth)
        return make_error(errc::json, where + ": body nests arrays and maps deeper than " +
                                          std::to_string(max_depth));
    for (auto [key, value] : obj) {
        if (value.is_null()) continue; // proto3 JSON: null is the default (no value)
        if (key == "stringValue" || key == "string_value") {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS)
                return make_error(errc::json, where + ".stringValue: expected a string");
            kind = f::string_value;
            if (str)
                *str = s;
            else
                append_json_string(out, s);
        } else if (key == "boolValue" || key == "bool_value") {
            bool b = false;
            if (value.get_bool().get(b) != simdjson::SUCCESS)
                return make_error(errc::json, where + ".boolValue: expected true or false");
            kind = f::bool_value;
            out += b ? "true" : "false";
        } else if (key == "intValue" || key == "int_value") {
            // int64 in JSON: a decimal string (the mapping's form) or a number.
            std::int64_t n = 0;
            std::string_view s;
            if (value.get_string().get(s) == simdjson::SUCCESS) {
                const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
                if (ec != std::errc() || p != s.data() + s.size())
                    return make_error(errc::json, where + ".intValue: expected an int64, got '" + std::string(s) + "'");
            } else if (value.get_int64().get(n) != simdjson::SUCCESS) {
                return make_error(errc::json, where + ".intValue: expected an int64");
            }
            kind = f::int_value;
            out += std::to_string(n);
        } else if (key == "doubleValue" || key == "double_value") {
            double x = 0;
            std::string_view s;
            if (value.get_double().get(x) == simdjson::SUCCESS) {
            } else if (value.get_string().get(s) == simdjson::SUCCESS &&
                       (s == "NaN" || s == "Infinity" || s == "-Infinity")) {
                x = s == "NaN" ? std::numeric_limits<double>::quiet_NaN()
                               : (s == "Infinity" ? 1 : -1) * std::numeric_limits<double>::infinity();
            } else {
                return make_error(errc::json, where + ".doubleValue: expected a number");
            }
            kind = f::double_value;
            append_double(out, x);
        } else if (key == "bytesValue" || key == "bytes_value") {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS)
                return make_error(errc::json, where + ".bytesValue: expected a base64 string");
            kind = f::bytes_value;
            append_json_string(out, s);
        } else if (key == "arrayValue" || key == "array_value" || key == "kvlistValue" || key == "kvlist_value") {
            const bool map = key.front() == 'k';
            auto listed = array_of(value, "values", {}, where + "." + std::string(key));
            if (!listed) return listed.error();
            const simdjson::dom::array values = elements(*listed);
            kind = map ? f::kvlist_value : f::array_value;
            out += map ? '{' : '[';
            bool first = true;
            for (element item : values) {
                if (!first) out += ',';
                first = false;
                std::uint32_t k = 0;
                element inner = item;
                if (map) {
                    std::string_view name;
                    if (item["key"].get_string().get(name) != simdjson::SUCCESS)
                        return make_error(errc::json, where + "." + std::string(key) + ": expected {key, value}");
                    append_json_string(out, name);
                    out += ':';
                    auto val = item["value"];
                    if (val.error()) {
                        out += "null";
                        continue;
                    }
                    inner = val.value_unsafe();
                }
                const std::size_t at = out.size();
                if (auto e = json_any(inner, out, nullptr, k, depth + 1, where); !e) return e;
                if (k == 0 && out.size() == at) out += "null";
            }
            out += map ? '}' : ']';
        }
        // Anything else: ignored (unknown fields).
    }
    return {};
}

result<void> json_record(otlp_reader& rd, element record, const std::string& where) {
    if (!record.is_object()) return make_error(errc::json, where + ": expected a log record object");
    std::string_view severity;
    std::uint64_t number = 0;
    if (auto n = member(record, "severityNumber", "severity_number"); !n.error()) {
        std::int64_t v = 0;
        std::string_view name;
        if (n.get_int64().get(v) == simdjson::SUCCESS && v > 0)
            number = static_cast<std::uint64_t>(v);
        else if (n.get_string().get(name) == simdjson::SUCCESS)
            severity = severity_name(name);
    }
    if (severity.empty()) severity = severity_name(number);
    if (severity.empty()) {
        std::string_view text;
        if (member(record, "severityText", "severity_text").get_string().get(text) == simdjson::SUCCESS)
            severity = text;
    }
    auto body = member(record, "body");
    if (body.error() == simdjson::NO_SUCH_FIELD) {
        ++rd.summary.rejected;
        return {};
    }
    // A map body: its first message field when it has one.
    element value = body.value_unsafe();
    simdjson::dom::object any;
    if (value.get_object().get(any) == simdjson::SUCCESS) {
        auto kv = member(value, "kvlistValue", "kvlist_value");
        if (!kv.error()) {
            auto values = array_of(kv.value_unsafe(), "values", {}, where + ".body.kvlistValue");
            if (!values) return values.error();
            std::size_t best = rd.o.message_fields.size();
            element chosen;
            for (element item : elements(*values)) {
                std::string_view name;
                if (item["key"].get_string().get(name) != simdjson::SUCCESS) continue;
                const std::size_t rank = rank_of(name, rd.o.message_fields);
                if (rank >= best) continue;
                auto val = item["value"];
                if (val.error()) continue;
                best = rank;
                chosen = val.value_unsafe();
            }
            if (best < rd.o.message_fields.size()) value = chosen;
        }
    }
    std::string& text = rd.d.b64_buf;
    text.clear();
    std::string_view str;
    std::uint32_t kind = 0;
    if (auto e = json_any(value, text, &str, kind, 0, where + ".body"); !e) return e;
    if (kind == 0) {
        ++rd.summary.rejected;
        return {};
    }
    if (auto a = rd.d.account(); !a) return a;
    rd.event(severity, kind == f::string_value ? str : std::string_view(text));
    return {};
}

result<void> json_request(otlp_reader& rd, std::string_view body) {
    if (skip_space(body).empty()) return make_error(errc::json, "empty body");
    if (auto r = rd.d.charge_parse(rd.d.working_outer, decoder::impl::dom_bytes(body.size())); !r)
        return r.error();
    element root;
    if (auto e = rd.d.dom.parse(body.data(), body.size(), false).get(root))
        return make_error(errc::json, "invalid JSON: " + json_error(e));
    if (!root.is_object()) return make_error(errc::json, "expected an ExportLogsServiceRequest object");
    auto resources = array_of(root, "resourceLogs", "resource_logs", "ExportLogsServiceRequest");
    if (!resources) return resources.error();
    std::size_t i = 0;
    for (element rl : elements(*resources)) {
        const std::string where = "resourceLogs[" + std::to_string(i++) + "]";
        if (!rl.is_object()) return make_error(errc::json, where + ": expected an object");
        std::string_view group = rd.o.group;
        if (auto res = member(rl, "resource"); !res.error() && res.value_unsafe().is_object()) {
            auto attrs = array_of(res.value_unsafe(), "attributes", {}, where + ".resource");
            if (!attrs) return attrs.error();
            std::size_t best = rd.o.group_attributes.size();
            for (element kv : elements(*attrs)) {
                std::string_view key, value;
                if (kv["key"].get_string().get(key) != simdjson::SUCCESS) continue;
                const std::size_t rank = rank_of(key, rd.o.group_attributes);
                if (rank >= best) continue;
                auto v = kv["value"];
                if (v.error()) continue;
                if (member(v.value_unsafe(), "stringValue", "string_value").get_string().get(value) ==
                        simdjson::SUCCESS &&
                    !value.empty())
                    best = rank, group = value;
            }
        }
        rd.sink.on_text_source(group);
        auto scopes = array_of(rl, "scopeLogs", "scope_logs", where);
        if (!scopes) return scopes.error();
        std::size_t s = 0;
        for (element scope : elements(*scopes)) {
            const std::string swhere = where + ".scopeLogs[" + std::to_string(s++) + "]";
            if (!scope.is_object()) return make_error(errc::json, swhere + ": expected an object");
            auto records = array_of(scope, "logRecords", "log_records", swhere);
            if (!records) return records.error();
            std::size_t k = 0;
            for (element record : elements(*records))
                if (auto e = json_record(rd, record, swhere + ".logRecords[" + std::to_string(k++) + "]"); !e)
                    return e;
        }
    }
    return {};
}

} // namespace

result<otlp_summary> decoder::otlp(std::string_view body, const otlp_options& o, event_sink& sink) {
    impl& d = *impl_;
    const impl::trim_after_request trim_after{d};
    if (o.gzipped) {
        std::size_t budget = d.limits.max_decompressed_bytes;
        auto inflated = d.gunzip_body(body, budget, "Content-Encoding: gzip");
        if (!inflated) return inflated.error();
        body = *inflated;
    }
    otlp_reader rd{d, o, sink, {}};
    auto r = o.json ? json_request(rd, body) : pb_request(rd, body);
    if (!r) return r.error();
    return rd.summary;
}

} // namespace faultline::core::decode
