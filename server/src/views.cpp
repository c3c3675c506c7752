#include "views.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/server/log.hpp"
#include "faultline/server/template_json.hpp"

#include <algorithm>

namespace faultline::server {

using core::aggregate::append_json_string;

std::string patterns_json(const core::aggregate::counts& totals, const core::match::pattern_set& set,
                          std::span<const double> rate_1m, std::span<const double> rate_15m,
                          std::string_view group) {
    const auto& pats = set.patterns();
    std::vector<std::pair<std::string, const std::vector<std::uint64_t>*>> groups;
    for (const auto& [g, v] : totals.by_group)
        if (group.empty() || g == group) groups.emplace_back(g, &v);
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{\"patterns\":[";
    for (std::size_t i = 0; i < pats.size(); ++i) {
        if (i) out += ',';
        out += "{\"name\":";
        append_json_string(out, pats[i].name);
        out += ",\"class\":\"" + std::string(core::match::class_name(pats[i].cls)) + "\",\"description\":";
        append_json_string(out, pats[i].description);
        std::uint64_t total = 0;
        std::string per_group;
        for (const auto& [g, v] : groups) {
            const std::uint64_t n = i < v->size() ? (*v)[i] : 0;
            if (!n) continue;
            total += n;
            if (!per_group.empty()) per_group += ',';
            append_json_string(per_group, g);
            per_group += ':' + std::to_string(n);
        }
        if (group.empty()) total = i < totals.patterns.size() ? totals.patterns[i] : 0;
        out += ",\"count\":" + std::to_string(total) + ",\"groups\":{" + per_group + "}";
        out += ",\"rate_1m\":" + fmt_double(i < rate_1m.size() ? rate_1m[i] : 0.0);
        out += ",\"rate_15m\":" + fmt_double(i < rate_15m.size() ? rate_15m[i] : 0.0) + "}";
    }
    out += "]}\n";
    return out;
}

namespace {
const core::aggregate::template_details& details_of(const core::aggregate::template_stats& s) {
    static const core::aggregate::template_details none;
    return s.details ? *s.details : none;
}
} // namespace

core::aggregate::template_pick templates_pick(const template_query& q, const core::match::pattern_set& set) {
    core::aggregate::template_pick p;
    p.limit = q.limit;
    if (!q.group.empty() || !q.cls.empty())
        p.keep = [q, &set](const core::aggregate::template_stats& st) {
            const auto& s = details_of(st);
            const auto& pats = set.patterns();
            if (!q.group.empty() && std::none_of(s.groups.begin(), s.groups.end(),
                                                 [&](const auto& g) { return g.first == q.group; }))
                return false;
            return q.cls.empty() || std::any_of(s.patterns.begin(), s.patterns.end(), [&](std::uint32_t id) {
                       return id < pats.size() && core::match::class_name(pats[id].cls) == q.cls;
                   });
        };
    if (q.sort == "first_seen")
        p.key = [](const core::aggregate::template_stats& st) { return details_of(st).first_seen_ms; };
    else if (q.sort == "last_seen")
        p.key = [](const core::aggregate::template_stats& st) { return details_of(st).last_seen_ms; };
    return p;
}

std::string templates_json(const std::vector<core::aggregate::picked_template>& list,
                           const core::match::pattern_set& set, std::int64_t now_ms) {
    const auto& pats = set.patterns();
    std::string out = "{\"templates\":[";
    const std::int64_t minute = now_ms / 60'000;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& s = details_of(list[i].stats);
        template_row row;
        row.id = core::aggregate::template_id(list[i].text);
        row.text = list[i].text;
        row.count = list[i].stats.count;
        row.first_seen = log::iso8601(s.first_seen_ms);
        row.last_seen = log::iso8601(s.last_seen_ms);
        row.sample = s.sample;
        row.is_new = s.is_new;
        for (const auto& previous : s.previous_texts)
            row.previous_ids.push_back(core::aggregate::template_id(previous));
        row.rate_1m = s.rate(now_ms, 1);
        row.rate_15m = s.rate(now_ms, 15);
        for (std::size_t k = 0; k < row.trend.size(); ++k) // events per minute, the current one last
            row.trend[k] = s.in_minute(minute - 14 + static_cast<std::int64_t>(k));
        row.groups = s.groups;
        for (const std::uint32_t id : s.patterns) {
            if (id >= pats.size()) continue;
            const auto& p = pats[id];
            row.patterns.push_back(p.name);
            if (p.cls == core::match::pattern_class::error)
                row.severity = "error";
            else if (p.cls == core::match::pattern_class::warn && row.severity != "error")
                row.severity = "warn";
        }
        if (i) out += ',';
        append_template_json(out, row);
    }
    out += "]}\n";
    return out;
}

} // namespace faultline::server
