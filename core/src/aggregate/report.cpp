#include "faultline/core/aggregate/report.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace faultline::core::aggregate {
namespace {

void append_u16(std::string& out, std::uint32_t unit) {
    static constexpr char hex[] = "0123456789abcdef";
    out += "\\u";
    out += hex[(unit >> 12) & 15];
    out += hex[(unit >> 8) & 15];
    out += hex[(unit >> 4) & 15];
    out += hex[unit & 15];
}

/// Decodes one UTF-8 sequence at s[i]; returns its length (0: invalid).
std::size_t utf8_decode(std::string_view s, std::size_t i, std::uint32_t& cp) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    std::size_t len;
    if (c < 0x80) return cp = c, 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void append_number(std::string& out, std::uint64_t n) {
    out += std::to_string(n);
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            if (c == '"')
                out += "\\\"";
            else if (c == '\\')
                out += "\\\\";
            else
                out += static_cast<char>(c);
            ++i;
            continue;
        }
        switch (c) {
        case '\b':
            out += "\\b";
            ++i;
            continue;
        case '\f':
            out += "\\f";
            ++i;
            continue;
        case '\n':
            out += "\\n";
            ++i;
            continue;
        case '\r':
            out += "\\r";
            ++i;
            continue;
        case '\t':
            out += "\\t";
            ++i;
            continue;
        default:
            break;
        }
        std::uint32_t cp = 0;
        const std::size_t len = utf8_decode(s, i, cp);
        if (len == 0) {
            append_u16(out, 0xfffd);
            ++i;
            continue;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            append_u16(out, 0xd800 + (cp >> 10));
            append_u16(out, 0xdc00 + (cp & 0x3ff));
        } else {
            append_u16(out, cp);
        }
        i += len;
    }
    out += '"';
}

std::string render_report(const counts& totals, const match::pattern_set& patterns) {
    const auto& pats = patterns.patterns();
    std::vector<std::size_t> by_name(pats.size());
    std::iota(by_name.begin(), by_name.end(), 0);
    std::sort(by_name.begin(), by_name.end(),
              [&](std::size_t a, std::size_t b) { return pats[a].name < pats[b].name; });
    const auto count_of = [](const std::vector<std::uint64_t>& v, std::size_t id) -> std::uint64_t {
        return id < v.size() ? v[id] : 0;
    };

    std::string out;
    out.reserve(4096);
    out += "{\"documents\":";
    append_number(out, totals.documents);
    out += ",\"events\":";
    append_number(out, totals.events);
    out += ",\"control_messages\":";
    append_number(out, totals.control_messages);
    out += ",\"patterns\":{";
    for (std::size_t k = 0; k < by_name.size(); ++k) {
        if (k) out += ',';
        append_json_string(out, pats[by_name[k]].name);
        out += ':';
        append_number(out, count_of(totals.patterns, by_name[k]));
    }
    out += "},\"by_group\":{";
    std::vector<const std::pair<const std::string, std::vector<std::uint64_t>>*> groups;
    for (const auto& g : totals.by_group)
        if (std::any_of(g.second.begin(), g.second.end(), [](std::uint64_t n) { return n != 0; }))
            groups.push_back(&g);
    std::sort(groups.begin(), groups.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (std::size_t k = 0; k < groups.size(); ++k) {
        if (k) out += ',';
        append_json_string(out, groups[k]->first);
        out += ":{";
        bool first = true;
        for (const std::size_t id : by_name) {
            const std::uint64_t n = count_of(groups[k]->second, id);
            if (n == 0) continue;
            if (!first) out += ',';
            first = false;
            append_json_string(out, pats[id].name);
            out += ':';
            append_number(out, n);
        }
        out += '}';
    }
    out += "},\"top_templates\":[";
    std::vector<const std::pair<const std::string, template_stats>*> top;
    top.reserve(totals.templates.size());
    for (const auto& t : totals.templates)
        top.push_back(&t);
    const auto better = [](auto* a, auto* b) {
        return a->second.count != b->second.count ? a->second.count > b->second.count : a->first < b->first;
    };
    const std::size_t n = std::min(report_top_templates, top.size());
    std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n), top.end(), better);
    for (std::size_t k = 0; k < n; ++k) {
        if (k) out += ',';
        out += "{\"template\":";
        append_json_string(out, top[k]->first);
        out += ",\"count\":";
        append_number(out, top[k]->second.count);
        out += '}';
    }
    out += "]}\n";
    return out;
}

} // namespace faultline::core::aggregate
