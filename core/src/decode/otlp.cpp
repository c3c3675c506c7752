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

enum wire : std::uint32_t {
    varint = 0,
    fixed64 = 1,
    length_delimited = 2,
    start_group = 3,
    end_group = 4,
    fixed32 = 5
};

/// One protobuf message, field by field, from a view: a length-delimited field is a view into
/// the input. Every read is bounds-checked; `bad` says the bytes are not a protobuf message.
/// Groups (deprecated, unused by OTLP) are skipped whole, as unknown fields are.
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
        if (!read_key() || !read_value(0)) return fail();
        return true;
    }
    bool is(std::uint32_t fld, std::uint32_t t) const noexcept { return field == fld && type == t; }

private:
    bool fail() {
        bad = true;
        return false;
    }
    bool read_key() {
        std::uint64_t key = 0;
        if (!read_varint(key)) return false;
        field = static_cast<std::uint32_t>(key >> 3);
        type = static_cast<std::uint32_t>(key & 7);
        return field != 0 && !(key >> 32);
    }
    bool read_value(int depth) {
        switch (type) {
        case varint:
            return read_varint(number);
        case fixed64:
            return fixed(8);
        case fixed32:
            return fixed(4);
        case length_delimited: {
            std::uint64_t n = 0;
            if (!read_varint(n) || n > in.size()) return false;
            bytes = in.substr(0, static_cast<std::size_t>(n));
            in.remove_prefix(static_cast<std::size_t>(n));
            return true;
        }
        case start_group: { // skipped up to its end group (same field number), nested ones too
            if (depth >= max_depth) return false;
            const std::uint32_t group = field;
            for (;;) {
                if (in.empty() || !read_key()) return false;
                if (type == end_group) {
                    if (field != group) return false;
                    field = group;
                    type = start_group;
                    return true;
                }
                if (!read_value(depth + 1)) return false;
            }
        }
        default: // an end group without its start; 6 and 7 do not exist
            return false;
        }
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
        if (in.size() < n) return false;
        number = 0;
        for (std::size_t i = 0; i < n; ++i)
            number |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
        in.remove_prefix(n);
        return true;
    }
};

/// The short name of a SeverityNumber (an enum: int32 on the wire, 1-24 defined); empty for
/// 0 (unspecified) and undefined values.
std::string_view severity_name(std::uint64_t wire_value) noexcept {
    static constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    const auto n = static_cast<std::uint32_t>(wire_value); // as libprotobuf reads an enum
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

bool valid_utf8(std::string_view s) noexcept {
    return simdjson::validate_utf8(s.data(), s.size());
}

/// Standard base64 with padding (what OTLP's JSON encoding gives for bytes).
bool valid_base64(std::string_view s) noexcept {
    if (s.size() % 4) return false;
    std::size_t pad = 0;
    while (pad < 2 && pad < s.size() && s[s.size() - 1 - pad] == '=')
        ++pad;
    for (std::size_t i = 0; i + pad < s.size(); ++i) {
        const char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '/'))
            return false;
    }
    return true;
}

/// A buffer whose growth is reserved in the request's budget before it is allocated (rendered
/// bodies: a byte may become six, "\u0001").
class charged_text {
public:
    charged_text(decoder::impl& d, std::string& s)
        : d_(d)
        , s_(s) {
        s_.clear();
    }
    std::string& str() noexcept { return s_; }
    result<void> append(std::string_view v) {
        if (auto r = need(v.size()); !r) return r;
        s_.append(v);
        return {};
    }
    result<void> json_string(std::string_view v) {
        static constexpr char hex[] = "0123456789abcdef";
        if (auto r = need(6 * v.size() + 2); !r) return r;
        s_ += '"';
        for (const char c : v) {
            const auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                s_ += '\\';
                s_ += c;
            } else if (u < 0x20) {
                s_ += "\\u00";
                s_ += hex[u >> 4];
                s_ += hex[u & 15];
            } else {
                s_ += c;
            }
        }
        s_ += '"';
        return {};
    }
    result<void> base64_string(std::string_view bytes) {
        static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (auto r = need((bytes.size() + 2) / 3 * 4 + 2); !r) return r;
        s_ += '"';
        std::size_t i = 0;
        for (; i + 3 <= bytes.size(); i += 3) {
            const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 |
                                    static_cast<unsigned char>(bytes[i + 1]) << 8 |
                                    static_cast<unsigned char>(bytes[i + 2]);
            s_ += digits[v >> 18];
            s_ += digits[(v >> 12) & 63];
            s_ += digits[(v >> 6) & 63];
            s_ += digits[v & 63];
        }
        if (i < bytes.size()) {
            std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
            if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
            s_ += digits[v >> 18];
            s_ += digits[(v >> 12) & 63];
            s_ += i + 1 < bytes.size() ? digits[(v >> 6) & 63] : '=';
            s_ += '=';
        }
        s_ += '"';
        return {};
    }
    result<void> number(double v) {
        if (!std::isfinite(v))
            return append(std::isnan(v) ? "\"NaN\"" : (v > 0 ? "\"Infinity\"" : "\"-Infinity\""));
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v); // shortest round trip, no locale
        return append(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    result<void> number(std::int64_t v) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        return append(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

private:
    result<void> need(std::size_t k) {
        if (s_.size() + k <= s_.capacity()) return {};
        const std::size_t cap = std::max(s_.capacity() * 2, s_.size() + k);
        const std::uint64_t total = d_.charges_except(&s_) + cap;
        if (!d_.hold.hold_exactly(total)) return d_.refuse(total);
        s_.reserve(cap);
        return d_.account();
    }
    decoder::impl& d_;
    std::string& s_;
};

/// The rank of `key` in `names` (its index), or names.size() when it is not there.
std::size_t rank_of(std::string_view key, const std::vector<std::string>& names) noexcept {
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == key) return i;
    return names.size();
}

// ---- protobuf ------------------------------------------------------------------------------

/// An AnyValue: its oneof's last field. Occurrences merge as protobuf merges messages: a later
/// scalar or string replaces; a later array or map of the same kind appends its values (`lists`
/// holds each occurrence's ArrayValue / KeyValueList).
struct pb_any {
    std::uint32_t kind = 0; ///< 0: no value
    std::uint64_t number = 0;
    std::string_view bytes;
    std::vector<std::string_view> lists;
};

result<void> read_any(std::string_view message, pb_any& a) {
    pb_fields r(message);
    while (r.next()) {
        switch (r.field) {
        case f::string_value:
        case f::bytes_value:
            if (r.type != length_delimited) continue;
            if (r.field == f::string_value && !valid_utf8(r.bytes))
                return make_error(errc::protobuf, "AnyValue.string_value: invalid UTF-8");
            a.kind = r.field, a.bytes = r.bytes, a.lists.clear();
            break;
        case f::array_value:
        case f::kvlist_value:
            if (r.type != length_delimited) continue;
            if (a.kind != r.field) a.lists.clear();
            a.kind = r.field;
            a.lists.push_back(r.bytes);
            break;
        case f::bool_value:
        case f::int_value:
            if (r.type != varint) continue;
            a.kind = r.field, a.number = r.number, a.lists.clear();
            break;
        case f::double_value:
            if (r.type != fixed64) continue;
            a.kind = r.field, a.number = r.number, a.lists.clear();
            break;
        default:
            break; // string_value_strindex (profiles) and later additions: not a log body
        }
    }
    if (r.bad) return make_error(errc::protobuf, "AnyValue: not a protobuf message");
    return {};
}

/// A KeyValue: its key (the last one) and its value (every occurrence merged into `value`).
result<void> read_kv(std::string_view message, std::string_view& key, pb_any& value) {
    pb_fields r(message);
    while (r.next()) {
        if (r.is(f::kv_key, length_delimited)) {
            if (!valid_utf8(r.bytes)) return make_error(errc::protobuf, "KeyValue.key: invalid UTF-8");
            key = r.bytes;
        } else if (r.is(f::kv_value, length_delimited)) {
            if (auto e = read_any(r.bytes, value); !e) return e;
        }
    }
    if (r.bad) return make_error(errc::protobuf, "KeyValue: not a protobuf message");
    return {};
}

result<void> render_any(const pb_any& a, charged_text& out, int depth);

/// Appends an array or a map (every occurrence's values, in order) as JSON.
result<void> render_lists(const pb_any& a, charged_text& out, int depth) {
    if (depth >= max_depth)
        return make_error(errc::protobuf,
                          "body nests arrays and maps deeper than " + std::to_string(max_depth));
    const bool map = a.kind == f::kvlist_value;
    if (auto e = out.append(map ? "{" : "["); !e) return e;
    bool first = true;
    for (const std::string_view list : a.lists) {
        pb_fields r(list);
        while (r.next()) {
            if (!r.is(f::list_values, length_delimited)) continue;
            if (!first)
                if (auto e = out.append(","); !e) return e;
            first = false;
            pb_any v;
            if (map) {
                std::string_view key;
                if (auto e = read_kv(r.bytes, key, v); !e) return e;
                if (auto e = out.json_string(key); !e) return e;
                if (auto e = out.append(":"); !e) return e;
            } else if (auto e = read_any(r.bytes, v); !e) {
                return e;
            }
            if (auto e = render_any(v, out, depth + 1); !e) return e;
        }
        if (r.bad) return make_error(errc::protobuf, "ArrayValue/KeyValueList: not a protobuf message");
    }
    return out.append(map ? "}" : "]");
}

/// Appends an AnyValue as JSON (no value: null).
result<void> render_any(const pb_any& a, charged_text& out, int depth) {
    switch (a.kind) {
    case f::string_value:
        return out.json_string(a.bytes);
    case f::bool_value:
        return out.append(a.number ? "true" : "false");
    case f::int_value:
        return out.number(static_cast<std::int64_t>(a.number));
    case f::double_value: {
        double d = 0;
        std::memcpy(&d, &a.number, sizeof d);
        return out.number(d);
    }
    case f::bytes_value:
        return out.base64_string(a.bytes);
    case f::array_value:
    case f::kvlist_value:
        return render_lists(a, out, depth);
    default:
        return out.append("null");
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
    result<void> event(std::string_view severity, std::string_view message) {
        ++summary.records;
        if (severity.empty()) {
            sink.on_event(message);
            return {};
        }
        if (auto r = d.reserve_buffer(d.record_buf, severity.size() + 1 + message.size()); !r) return r;
        d.record_buf.append(severity);
        d.record_buf += ' ';
        d.record_buf.append(message);
        sink.on_event(d.record_buf);
        return {};
    }
};

namespace {

result<void> pb_record(otlp_reader& rd, std::string_view message) {
    std::uint64_t severity_number = 0;
    std::string_view severity_text;
    pb_any value; // every body field merged
    pb_fields r(message);
    while (r.next()) {
        if (r.is(f::severity_number, varint))
            severity_number = r.number;
        else if (r.is(f::severity_text, length_delimited))
            severity_text = r.bytes;
        else if (r.is(f::body, length_delimited)) {
            if (auto e = read_any(r.bytes, value); !e) return e;
        }
    }
    if (r.bad) return make_error(errc::protobuf, "LogRecord: not a protobuf message");
    if (!valid_utf8(severity_text))
        return make_error(errc::protobuf, "LogRecord.severity_text: invalid UTF-8");
    if (value.kind == 0) { // no body, or an empty AnyValue: nothing to match
        ++rd.summary.rejected;
        return {};
    }
    std::string_view severity = severity_name(severity_number);
    if (severity.empty()) severity = severity_text;
    if (value.kind == f::string_value) return rd.event(severity, value.bytes);
    // A map: its first message field with a value (a string as it is, anything else as JSON).
    if (value.kind == f::kvlist_value) {
        std::size_t best = rd.o.message_fields.size();
        pb_any chosen;
        for (const std::string_view list_bytes : value.lists) {
            pb_fields list(list_bytes);
            while (list.next()) {
                if (!list.is(f::list_values, length_delimited)) continue;
                std::string_view key;
                pb_any v;
                if (auto e = read_kv(list.bytes, key, v); !e) return e;
                const std::size_t rank = rank_of(key, rd.o.message_fields);
                if (rank >= best || v.kind == 0) continue;
                best = rank;
                chosen = std::move(v);
            }
            if (list.bad) return make_error(errc::protobuf, "KeyValueList: not a protobuf message");
        }
        if (best < rd.o.message_fields.size()) {
            if (chosen.kind == f::string_value) return rd.event(severity, chosen.bytes);
            value = std::move(chosen);
        }
    }
    charged_text text(rd.d, rd.d.b64_buf);
    if (auto e = render_any(value, text, 0); !e) return e;
    return rd.event(severity, text.str());
}

/// The group of a ResourceLogs: the first of group_attributes its resource has (a non-empty string).
result<std::string_view> pb_group(const otlp_options& o, std::string_view resource_logs) {
    std::string_view group = o.group;
    std::size_t best = o.group_attributes.size();
    pb_fields r(resource_logs);
    while (r.next()) {
        if (!r.is(f::resource, length_delimited)) continue; // every occurrence: they merge
        pb_fields res(r.bytes);
        while (res.next()) {
            if (!res.is(f::resource_attributes, length_delimited)) continue;
            std::string_view key;
            pb_any v;
            if (auto e = read_kv(res.bytes, key, v); !e) return e.error();
            const std::size_t rank = rank_of(key, o.group_attributes);
            if (rank < best && v.kind == f::string_value && !v.bytes.empty()) best = rank, group = v.bytes;
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
/// `obj` must be an object.
simdjson::simdjson_result<element> member(element obj, std::string_view camel, std::string_view snake = {}) {
    auto v = obj[camel];
    if (v.error() == simdjson::NO_SUCH_FIELD && !snake.empty()) return obj[snake];
    return v;
}

/// An array field of the object `obj` (absent or null: nullopt, read as empty); an error names
/// the field when `obj` is not an object or the field is something else. (A default-constructed
/// dom::array or element is not a value: never read.)
result<std::optional<simdjson::dom::array>> array_of(element obj, std::string_view camel,
                                                     std::string_view snake, const std::string& where) {
    if (!obj.is_object()) return make_error(errc::json, where + ": expected an object");
    auto v = member(obj, camel, snake);
    if (v.error() == simdjson::NO_SUCH_FIELD) return std::optional<simdjson::dom::array>();
    if (v.error())
        return make_error(errc::json, where + "." + std::string(camel) + ": " + json_error(v.error()));
    if (v.value_unsafe().is_null()) return std::optional<simdjson::dom::array>();
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

bool is_key(std::string_view key, std::string_view camel, std::string_view snake) noexcept {
    return key == camel || key == snake;
}

/// The oneof field an AnyValue object holds (its last non-null one; 0: none or not an object).
std::uint32_t json_kind(element v) {
    simdjson::dom::object obj;
    if (v.get_object().get(obj) != simdjson::SUCCESS) return 0;
    struct oneof {
        std::string_view json, proto;
        std::uint32_t field;
    };
    static constexpr oneof fields[] = {
        {"stringValue", "string_value", f::string_value}, {"boolValue", "bool_value", f::bool_value},
        {"intValue", "int_value", f::int_value},          {"doubleValue", "double_value", f::double_value},
        {"arrayValue", "array_value", f::array_value},    {"kvlistValue", "kvlist_value", f::kvlist_value},
        {"bytesValue", "bytes_value", f::bytes_value},
    };
    std::uint32_t kind = 0;
    for (auto [key, value] : obj) {
        if (value.is_null()) continue;
        for (const auto& o : fields)
            if (is_key(key, o.json, o.proto)) kind = o.field;
    }
    return kind;
}

/// An AnyValue in OTLP JSON ({"stringValue": ...} etc.; its last oneof key wins, as in protobuf).
/// A top-level string is given in `str` (not copied) when `str` is set; anything else is
/// appended to `out` as JSON. `kind` as the protobuf field (0: no value).
result<void> json_any(element v, charged_text& out, std::string_view* str, std::uint32_t& kind, int depth,
                      const std::string& where) {
    kind = 0;
    if (v.is_null()) return {};
    simdjson::dom::object obj;
    if (v.get_object().get(obj) != simdjson::SUCCESS)
        return make_error(errc::json, where + ": expected an AnyValue object");
    const std::size_t start = out.str().size();
    for (auto [key, value] : obj) {
        if (value.is_null()) continue; // proto3 JSON: null is the default (no value)
        const bool oneof =
            is_key(key, "stringValue", "string_value") || is_key(key, "boolValue", "bool_value") ||
            is_key(key, "intValue", "int_value") || is_key(key, "doubleValue", "double_value") ||
            is_key(key, "bytesValue", "bytes_value") || is_key(key, "arrayValue", "array_value") ||
            is_key(key, "kvlistValue", "kvlist_value");
        if (!oneof) continue;    // unknown fields are ignored
        out.str().resize(start); // a later oneof field replaces an earlier one
        if (str) *str = {};
        if (is_key(key, "stringValue", "string_value")) {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS)
                return make_error(errc::json, where + ".stringValue: expected a string");
            kind = f::string_value;
            if (str)
                *str = s;
            else if (auto e = out.json_string(s); !e)
                return e;
        } else if (is_key(key, "boolValue", "bool_value")) {
            bool b = false;
            if (value.get_bool().get(b) != simdjson::SUCCESS)
                return make_error(errc::json, where + ".boolValue: expected true or false");
            kind = f::bool_value;
            if (auto e = out.append(b ? "true" : "false"); !e) return e;
        } else if (is_key(key, "intValue", "int_value")) {
            // int64 in JSON: a decimal string (the mapping's form) or a number with no fraction.
            std::int64_t n = 0;
            std::string_view s;
            double d = 0;
            if (value.get_string().get(s) == simdjson::SUCCESS) {
                const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
                if (ec != std::errc() || p != s.data() + s.size())
                    return make_error(errc::json,
                                      where + ".intValue: expected an int64, got '" + std::string(s) + "'");
            } else if (value.get_int64().get(n) == simdjson::SUCCESS) {
            } else if (value.get_double().get(d) == simdjson::SUCCESS && std::trunc(d) == d && d >= -9.2e18 &&
                       d <= 9.2e18) {
                n = static_cast<std::int64_t>(d);
            } else {
                return make_error(errc::json, where + ".intValue: expected an int64");
            }
            kind = f::int_value;
            if (auto e = out.number(n); !e) return e;
        } else if (is_key(key, "doubleValue", "double_value")) {
            double x = 0;
            std::string_view s;
            if (value.get_double().get(x) == simdjson::SUCCESS) {
            } else if (value.get_string().get(s) == simdjson::SUCCESS) {
                if (s == "NaN")
                    x = std::numeric_limits<double>::quiet_NaN();
                else if (s == "Infinity" || s == "-Infinity")
                    x = (s == "Infinity" ? 1 : -1) * std::numeric_limits<double>::infinity();
                else if (const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
                         ec != std::errc() || p != s.data() + s.size())
                    return make_error(errc::json, where + ".doubleValue: expected a number, got '" +
                                                      std::string(s) + "'");
            } else {
                return make_error(errc::json, where + ".doubleValue: expected a number");
            }
            kind = f::double_value;
            if (auto e = out.number(x); !e) return e;
        } else if (is_key(key, "bytesValue", "bytes_value")) {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS || !valid_base64(s))
                return make_error(errc::json, where + ".bytesValue: expected base64");
            kind = f::bytes_value;
            if (auto e = out.json_string(s); !e) return e;
        } else { // an array or a map
            const bool map = key.front() == 'k';
            if (depth >= max_depth)
                return make_error(errc::json, where + ": body nests arrays and maps deeper than " +
                                                  std::to_string(max_depth));
            auto listed = array_of(value, "values", {}, where + "." + std::string(key));
            if (!listed) return listed.error();
            kind = map ? f::kvlist_value : f::array_value;
            if (auto e = out.append(map ? "{" : "["); !e) return e;
            bool first = true;
            for (element item : elements(*listed)) {
                if (!first)
                    if (auto e = out.append(","); !e) return e;
                first = false;
                element inner = item;
                bool has_value = true;
                if (map) {
                    if (!item.is_object())
                        return make_error(errc::json,
                                          where + "." + std::string(key) + ": expected {key, value}");
                    std::string_view name; // absent: "" (proto3's default)
                    if (auto k = item["key"]; !k.error() && k.get_string().get(name) != simdjson::SUCCESS &&
                                              !k.value_unsafe().is_null())
                        return make_error(errc::json,
                                          where + "." + std::string(key) + ".key: expected a string");
                    if (auto e = out.json_string(name); !e) return e;
                    if (auto e = out.append(":"); !e) return e;
                    auto val = item["value"];
                    if (val.error())
                        has_value = false;
                    else
                        inner = val.value_unsafe();
                }
                std::uint32_t k = 0;
                const std::size_t at = out.str().size();
                if (has_value)
                    if (auto e = json_any(inner, out, nullptr, k, depth + 1, where); !e) return e;
                if (k == 0) {
                    out.str().resize(at);
                    if (auto e = out.append("null"); !e) return e;
                }
            }
            if (auto e = out.append(map ? "}" : "]"); !e) return e;
        }
    }
    return {};
}

result<void> json_record(otlp_reader& rd, element record, const std::string& where) {
    if (!record.is_object()) return make_error(errc::json, where + ": expected a log record object");
    std::string_view severity;
    if (auto n = member(record, "severityNumber", "severity_number"); !n.error()) {
        std::int64_t v = 0;
        std::string_view name;
        if (n.get_int64().get(v) == simdjson::SUCCESS)
            severity = severity_name(static_cast<std::uint64_t>(v));
        else if (n.get_string().get(name) == simdjson::SUCCESS)
            severity = severity_name(name);
    }
    if (severity.empty()) {
        std::string_view text;
        if (member(record, "severityText", "severity_text").get_string().get(text) == simdjson::SUCCESS)
            severity = text;
    }
    auto body = member(record, "body");
    if (body.error() || json_kind(body.value_unsafe()) == 0) { // no body, or an empty one
        if (body.error() && body.error() != simdjson::NO_SUCH_FIELD)
            return make_error(errc::json, where + ".body: " + json_error(body.error()));
        if (!body.error() && !body.value_unsafe().is_null() && !body.value_unsafe().is_object())
            return make_error(errc::json, where + ".body: expected an AnyValue object");
        ++rd.summary.rejected;
        return {};
    }
    // A map body: its first message field with a value.
    element value = body.value_unsafe();
    if (json_kind(value) == f::kvlist_value) {
        auto kv = member(value, "kvlistValue", "kvlist_value");
        if (!kv.error() && kv.value_unsafe().is_object()) {
            auto values = array_of(kv.value_unsafe(), "values", {}, where + ".body.kvlistValue");
            if (!values) return values.error();
            std::size_t best = rd.o.message_fields.size();
            element chosen;
            for (element item : elements(*values)) {
                if (!item.is_object()) continue; // refused when rendered
                std::string_view name;
                if (item["key"].get_string().get(name) != simdjson::SUCCESS) continue;
                const std::size_t rank = rank_of(name, rd.o.message_fields);
                if (rank >= best) continue;
                auto val = item["value"];
                if (val.error() || json_kind(val.value_unsafe()) == 0) continue;
                best = rank;
                chosen = val.value_unsafe();
            }
            if (best < rd.o.message_fields.size()) value = chosen;
        }
    }
    charged_text text(rd.d, rd.d.b64_buf);
    std::string_view str;
    std::uint32_t kind = 0;
    if (auto e = json_any(value, text, &str, kind, 0, where + ".body"); !e) return e;
    return rd.event(severity, kind == f::string_value ? str : std::string_view(text.str()));
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
                if (!kv.is_object()) continue;
                std::string_view key, value;
                if (kv["key"].get_string().get(key) != simdjson::SUCCESS) continue;
                const std::size_t rank = rank_of(key, rd.o.group_attributes);
                if (rank >= best) continue;
                auto v = kv["value"];
                if (v.error() || !v.value_unsafe().is_object()) continue;
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
