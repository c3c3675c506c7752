// The JSON views of the read API, I/O-free: GET /v1/patterns and GET /v1/templates rendered from
// what the service hands them (counts, rates, picked templates) and the time it gives (an injected
// clock: the tests pass a fixed one). Tested in tests/server/views_test.cpp.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/match/pattern_set.hpp"
#include "faultline/server/service.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::server {

/// GET /v1/patterns[?group=G]: every pattern, its count (in `group`, or in all), the groups it
/// was seen in, and its 1 and 15 minute rates.
std::string patterns_json(const core::aggregate::counts& totals, const core::match::pattern_set& set,
                          std::span<const double> rate_1m, std::span<const double> rate_15m,
                          std::string_view group = {});

/// What GET /v1/templates asks of the templates (filter by group and class, sort, limit), for the
/// miner to pick in place. `set` must outlive the pick (the pipeline holds it during it).
core::aggregate::template_pick templates_pick(const template_query& q, const core::match::pattern_set& set);

/// The picked templates as GET /v1/templates shows them, their rates and trend as of `now_ms`.
std::string templates_json(const std::vector<core::aggregate::picked_template>& list,
                           const core::match::pattern_set& set, std::int64_t now_ms);

} // namespace faultline::server
