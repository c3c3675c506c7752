#include "faultline/server/template_json.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace faultline::server {

std::string fmt_double(double v) {
    if (!std::isfinite(v)) return "0";
    std::ostringstream ss;
    ss.precision(6);
    ss << std::fixed << v;
    std::string s = ss.str();
    while (!s.empty() && s.back() == '0')
        s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s.empty() ? "0" : s;
}

void append_template_json(std::string& out, const template_row& r) {
    using core::aggregate::append_json_string;
    const auto list = [&out](const std::vector<std::string>& items) {
        out += '[';
        for (std::size_t k = 0; k < items.size(); ++k) {
            if (k) out += ',';
            append_json_string(out, items[k]);
        }
        out += ']';
    };
    out += "{\"id\":";
    append_json_string(out, r.id);
    out += ",\"template\":";
    append_json_string(out, r.text);
    out += ",\"count\":" + std::to_string(r.count);
    out += ",\"first_seen\":";
    append_json_string(out, r.first_seen);
    out += ",\"last_seen\":";
    append_json_string(out, r.last_seen);
    out += ",\"sample\":";
    append_json_string(out, r.sample);
    out += r.is_new ? ",\"new\":true" : ",\"new\":false";
    out += ",\"previous_ids\":";
    list(r.previous_ids);
    out += ",\"rate_1m\":" + fmt_double(r.rate_1m) + ",\"rate_15m\":" + fmt_double(r.rate_15m);
    out += ",\"trend\":[";
    for (std::size_t k = 0; k < r.trend.size(); ++k) {
        if (k) out += ',';
        out += std::to_string(r.trend[k]);
    }
    auto groups = r.groups;
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    out += "],\"groups\":[";
    for (std::size_t k = 0; k < groups.size(); ++k) {
        if (k) out += ',';
        out += "{\"group\":";
        append_json_string(out, groups[k].first);
        out += ",\"count\":" + std::to_string(groups[k].second) + "}";
    }
    out += "],\"patterns\":";
    list(r.patterns);
    out += ",\"severity\":";
    append_json_string(out, r.severity);
    out += '}';
}

} // namespace faultline::server
