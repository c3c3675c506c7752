// Recent rates per pattern and per group, from totals sampled every few seconds (the sample times
// are the caller's: tests give them).
#pragma once

#include "faultline/core/aggregate/counts.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <vector>

namespace faultline::server {

/// Per-pattern totals sampled every few seconds, for the 1 min and 15 min rates.
class rate_tracker {
public:
    using group_totals = core::aggregate::string_map<std::vector<std::uint64_t>>;
    void sample(std::chrono::steady_clock::time_point now, std::vector<std::uint64_t> totals,
                group_totals by_group = {});
    void clear();
    /// Events per second over `window` for every pattern (0 until two samples exist); with a
    /// group, its own events only.
    std::vector<double> rates(std::chrono::seconds window, std::string_view group = {}) const;

private:
    struct sample_point {
        std::chrono::steady_clock::time_point at;
        std::vector<std::uint64_t> totals;
        group_totals by_group;
    };
    mutable std::mutex mutex_;
    std::deque<sample_point> samples_;
};

} // namespace faultline::server
