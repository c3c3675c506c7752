// Shared helpers of the unit tests: a recording event_sink, padded buffers for the JSON
// decoders, test-data files (FAULTLINE_TEST_DATA) and a compiled pattern set.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/decode/base64.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/event_sink.hpp"
#include "faultline/core/decode/gzip.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef FAULTLINE_TEST_DATA
#error "FAULTLINE_TEST_DATA must point at tests/data"
#endif

namespace faultline::test {

/// The UTF-8 encoding of one code point.
inline std::string utf8(std::uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return out;
}

/// Template text -> count (the part of the totals that does not depend on timing or order).
inline std::map<std::string, std::uint64_t> template_counts(const faultline::core::aggregate::counts& c) {
    std::map<std::string, std::uint64_t> out;
    for (const auto& [text, stats] : c.templates)
        out[text] = stats.count;
    return out;
}

/// Everything a decoder emitted, in order.
class recording_sink final : public core::decode::event_sink {
public:
    struct event {
        std::string group; ///< the group of the last on_document / on_text_source
        std::string message;
        bool operator==(const event&) const = default;
    };

    std::vector<std::string> documents;    ///< groups of on_document, in order
    std::vector<std::string> text_sources; ///< groups of on_text_source, in order
    std::vector<event> events;
    std::size_t control_messages = 0;

    void on_document(std::string_view group) override {
        documents.emplace_back(group);
        current_ = group;
    }
    void on_text_source(std::string_view group) override {
        text_sources.emplace_back(group);
        current_ = group;
    }
    void on_event(std::string_view message) override { events.push_back({current_, std::string(message)}); }
    void on_control_message() override { ++control_messages; }

    bool empty() const {
        return documents.empty() && text_sources.empty() && events.empty() && control_messages == 0;
    }
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        for (const auto& e : events)
            out.push_back(e.message);
        return out;
    }

private:
    std::string current_;
};

/// A copy of `s` followed by decode::json_padding readable bytes, as the decoders require.
class padded {
public:
    explicit padded(std::string_view s)
        : buf_(s.size() + core::decode::json_padding, '\0')
        , size_(s.size()) {
        if (!s.empty()) std::copy(s.begin(), s.end(), buf_.begin());
    }
    std::string_view view() const { return {buf_.data(), size_}; }
    operator std::string_view() const { return view(); }

private:
    std::vector<char> buf_;
    std::size_t size_;
};

inline std::string data_path(std::string_view relative) {
    return std::string(FAULTLINE_TEST_DATA) + "/" + std::string(relative);
}

/// The bytes of a file (binary); throws if it cannot be read, so a missing fixture fails loudly.
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read test file " + path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string read_data(std::string_view relative) {
    return read_file(data_path(relative));
}

inline void write_file(const std::string& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write test file " + path);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write test file " + path);
}

/// Compiles a pattern set from `name<TAB>class<TAB>regex` text; a failure fails the test.
inline std::shared_ptr<const core::match::pattern_set> compile_patterns(std::string_view tsv,
                                                                        std::string_view source = "test") {
    auto parsed = core::match::parse_pattern_tsv(tsv, source);
    REQUIRE_MESSAGE(parsed.has_value(), (parsed ? std::string() : parsed.error().message));
    auto set = core::match::pattern_set::compile(std::move(*parsed));
    REQUIRE_MESSAGE(set.has_value(), (set ? std::string() : set.error().message));
    return *set;
}

/// The 16 patterns of the seed benchmark (tests/data/patterns.txt).
inline std::shared_ptr<const core::match::pattern_set> bench_patterns() {
    return compile_patterns(read_data("patterns.txt"), "patterns.txt");
}

/// Id of the pattern called `name`; fails the test if there is none.
inline std::size_t pattern_id(const core::match::pattern_set& set, std::string_view name) {
    for (std::size_t i = 0; i < set.size(); ++i)
        if (set.patterns()[i].name == name) return i;
    FAIL("no pattern named " << std::string(name));
    return 0;
}

/// The error message of a result, or "" when it holds a value (for CHECK_MESSAGE output).
template <class R>
std::string error_text(const R& r) {
    return r ? std::string() : r.error().message;
}

inline bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

/// A compact CloudWatch DATA_MESSAGE with the given (already JSON-escaped) messages.
inline std::string cwl_doc(std::string_view group, const std::vector<std::string>& escaped_messages) {
    std::string s = R"({"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":")" +
                    std::string(group) + R"(","logStream":"s","subscriptionFilters":["f"],"logEvents":[)";
    for (std::size_t i = 0; i < escaped_messages.size(); ++i) {
        if (i) s += ',';
        s += R"({"id":")" + std::to_string(i) + R"(","timestamp":1700000000000,"message":")" +
             escaped_messages[i] + "\"}";
    }
    return s + "]}";
}

inline const std::string control_doc =
    R"({"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"",)"
    R"("subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE"}]})";

/// A Firehose request body whose records carry the given `data` strings verbatim.
inline std::string firehose_body(const std::vector<std::string>& datas,
                                 std::string_view request_id = "req-1") {
    std::string s =
        R"({"requestId":")" + std::string(request_id) + R"(","timestamp":1764201600000,"records":[)";
    for (std::size_t i = 0; i < datas.size(); ++i) {
        if (i) s += ',';
        s += R"({"data":")" + datas[i] + "\"}";
    }
    return s + "]}";
}

/// A Firehose record's data: base64(gzip(doc)).
inline std::string record_of(std::string_view doc) {
    return core::decode::base64_encode(core::decode::gzip_compress(doc));
}

/// A word of its own for each i, of letters the masker keeps (no digits, nothing hex-like): lines
/// built from distinct words mask to distinct templates.
inline std::string distinct_word(std::size_t i) {
    std::string w;
    do {
        w.push_back(static_cast<char>('g' + i % 20));
        i /= 20;
    } while (i);
    return w;
}

} // namespace faultline::test

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& v) {
        std::string s = "{";
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) s += ", ";
            s += '"' + v[i] + '"';
        }
        s += "}";
        return String(s.c_str(), static_cast<String::size_type>(s.size()));
    }
};
template <>
struct StringMaker<faultline::test::recording_sink::event> {
    static String convert(const faultline::test::recording_sink::event& e) {
        const std::string s = "{group \"" + e.group + "\", message \"" + e.message + "\"}";
        return String(s.c_str(), static_cast<String::size_type>(s.size()));
    }
};
} // namespace doctest
