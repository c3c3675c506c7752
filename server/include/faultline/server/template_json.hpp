// One template as GET /v1/templates shows it: the local view (service) and the cluster view
// (cluster_view) fill a row each and render it here, so the two answers have one shape.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace faultline::server {

struct template_row {
    std::string id;
    std::string text;
    std::uint64_t count = 0;
    std::string first_seen; ///< ISO 8601
    std::string last_seen;  ///< ISO 8601
    std::string sample;
    bool is_new = false;
    std::vector<std::string> previous_ids;
    double rate_1m = 0;
    double rate_15m = 0;
    std::array<std::uint64_t, 15> trend{}; ///< events per minute over the last 15, the current one last
    std::vector<std::pair<std::string, std::uint64_t>> groups; ///< any order: shown by count, then name
    std::vector<std::string> patterns;
    std::string severity = "info";
};

/// Appends `row` as one JSON object of the templates list.
void append_template_json(std::string& out, const template_row& row);

/// A JSON number with up to 6 decimals, trailing zeros dropped; "0" for what is not finite.
std::string fmt_double(double v);

} // namespace faultline::server
