#include "faultline/server/cluster_view.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/server/template_json.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace faultline::server {

namespace {

struct merged {
    std::string id, text, sample, first_seen, last_seen, severity = "info";
    std::uint64_t count = 0;
    bool is_new = false;
    double rate_1m = 0, rate_15m = 0;
    std::array<std::uint64_t, 15> trend{};
    std::map<std::string, std::uint64_t> groups;
    std::vector<std::string> patterns;
    std::set<std::string> previous_ids;
};

int severity_rank(std::string_view s) {
    return s == "error" ? 2 : s == "warn" ? 1 : 0;
}

void add_string(std::string& out, std::string_view s) {
    core::aggregate::append_json_string(out, s);
}

/// Folds one peer's templates into `all`; an error names what was wrong with the body.
std::string fold(simdjson::dom::parser& parser, const std::string& body, std::map<std::string, merged>& all,
                 std::size_t& n) {
    simdjson::padded_string padded(body);
    simdjson::dom::element doc;
    if (auto e = parser.parse(padded).get(doc)) return std::string("not JSON: ") + simdjson::error_message(e);
    simdjson::dom::array list;
    if (doc["templates"].get_array().get(list)) return "no \"templates\" list";
    for (simdjson::dom::element t : list) {
        std::string_view id, text, sample, first, last, severity;
        std::uint64_t count = 0;
        bool is_new = false;
        if (t["id"].get_string().get(id) || t["template"].get_string().get(text) ||
            t["count"].get_uint64().get(count) || t["first_seen"].get_string().get(first) ||
            t["last_seen"].get_string().get(last))
            return "a template without id, template, count, first_seen or last_seen";
        // Optional fields: absent or of another type, they keep their empty value.
        if (t["sample"].get_string().get(sample)) sample = {};
        if (t["new"].get_bool().get(is_new)) is_new = false;
        if (t["severity"].get_string().get(severity)) severity = {};
        auto [it, fresh] = all.try_emplace(std::string(id));
        merged& m = it->second;
        ++n;
        if (fresh || first < m.first_seen) { // the replica that saw it first speaks for it
            m.first_seen = std::string(first);
            m.sample = std::string(sample);
            m.is_new = is_new;
        }
        if (fresh) {
            m.id = std::string(id);
            m.text = std::string(text);
        }
        if (fresh || last > m.last_seen) m.last_seen = std::string(last);
        m.count += count;
        if (severity_rank(severity) > severity_rank(m.severity)) m.severity = std::string(severity);
        // Rates: finite and not negative, or not taken (the sum must stay a JSON number).
        double r = 0;
        const auto rate = [](double v) { return std::isfinite(v) && v >= 0 && v < 1e12 ? v : 0.0; };
        if (!t["rate_1m"].get_double().get(r)) m.rate_1m += rate(r);
        if (!t["rate_15m"].get_double().get(r)) m.rate_15m += rate(r);
        simdjson::dom::array arr;
        if (!t["trend"].get_array().get(arr)) {
            std::size_t k = 0;
            for (auto v : arr) {
                std::uint64_t x = 0;
                if (k < m.trend.size() && !v.get_uint64().get(x)) m.trend[k] += x;
                ++k;
            }
        }
        if (!t["groups"].get_array().get(arr))
            for (auto g : arr) {
                std::string_view name;
                std::uint64_t c = 0;
                if (!g["group"].get_string().get(name) && !g["count"].get_uint64().get(c))
                    m.groups[std::string(name)] += c;
            }
        if (!t["patterns"].get_array().get(arr))
            for (auto p : arr) {
                std::string_view name;
                if (!p.get_string().get(name) &&
                    std::find(m.patterns.begin(), m.patterns.end(), name) == m.patterns.end())
                    m.patterns.emplace_back(name);
            }
        if (!t["previous_ids"].get_array().get(arr))
            for (auto p : arr) {
                std::string_view pid;
                if (!p.get_string().get(pid)) m.previous_ids.emplace(pid);
            }
    }
    return {};
}

} // namespace

std::string peer_templates_target(const template_query& q) {
    std::string target = "/v1/templates?scope=local&limit=10000&sort=" + q.sort;
    auto param = [&target](std::string_view name, std::string_view value) {
        if (value.empty()) return;
        target += '&';
        target += name;
        target += '=';
        static constexpr char hex[] = "0123456789ABCDEF";
        for (const unsigned char c : value) {
            if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
                target += static_cast<char>(c);
            } else {
                target += '%';
                target += hex[c >> 4];
                target += hex[c & 15];
            }
        }
    };
    param("group", q.group);
    param("class", q.cls);
    return target;
}

std::string merge_cluster_templates(std::vector<peer_answer> answers, const template_query& q) {
    std::map<std::string, merged> all;
    simdjson::dom::parser parser;
    std::vector<std::size_t> counts(answers.size(), 0);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        auto& a = answers[i];
        if (!a.body) continue;
        std::map<std::string, merged> mine = all; // a malformed answer must not count half
        if (std::string why = fold(parser, *a.body, mine, counts[i]); !why.empty()) {
            a.error = "unreadable answer: " + why;
            a.body.reset();
            counts[i] = 0;
            continue;
        }
        all = std::move(mine);
    }
    std::vector<const merged*> list;
    list.reserve(all.size());
    for (const auto& [id, m] : all)
        list.push_back(&m);
    // As the local view ranks: the key (count, first or last seen) descending, then the text.
    auto key_less = [&q](const merged* a, const merged* b) {
        if (q.sort == "first_seen" && a->first_seen != b->first_seen) return a->first_seen > b->first_seen;
        if (q.sort == "last_seen" && a->last_seen != b->last_seen) return a->last_seen > b->last_seen;
        if (q.sort == "count" && a->count != b->count) return a->count > b->count;
        return a->text < b->text;
    };
    std::sort(list.begin(), list.end(), key_less);
    if (list.size() > q.limit) list.resize(q.limit);

    std::string out = "{\"scope\":\"cluster\",\"templates\":[";
    for (std::size_t i = 0; i < list.size(); ++i) {
        const merged& m = *list[i];
        template_row row;
        row.id = m.id;
        row.text = m.text;
        row.count = m.count;
        row.first_seen = m.first_seen;
        row.last_seen = m.last_seen;
        row.sample = m.sample;
        row.is_new = m.is_new;
        row.previous_ids.assign(m.previous_ids.begin(), m.previous_ids.end());
        row.rate_1m = m.rate_1m;
        row.rate_15m = m.rate_15m;
        row.trend = m.trend;
        row.groups.assign(m.groups.begin(), m.groups.end());
        row.patterns = m.patterns;
        row.severity = m.severity;
        if (i) out += ',';
        append_template_json(out, row);
    }
    out += "],\"peers\":[";
    for (std::size_t i = 0; i < answers.size(); ++i) {
        const auto& a = answers[i];
        if (i) out += ',';
        out += "{\"peer\":";
        add_string(out, a.peer);
        if (a.body) {
            out += ",\"ok\":true,\"templates\":" + std::to_string(counts[i]) + "}";
        } else {
            out += ",\"ok\":false,\"error\":";
            add_string(out, a.error);
            out += '}';
        }
    }
    out += "]}\n";
    return out;
}

} // namespace faultline::server
