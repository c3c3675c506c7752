#include "faultline/server/rates.hpp"

#include <algorithm>

namespace faultline::server {

void rate_tracker::clear() {
    std::lock_guard lock(mutex_);
    samples_.clear();
}

void rate_tracker::sample(std::chrono::steady_clock::time_point now, std::vector<std::uint64_t> totals,
                          group_totals by_group) {
    std::lock_guard lock(mutex_);
    samples_.push_back({now, std::move(totals), std::move(by_group)});
    while (samples_.size() > 2 && now - samples_[1].at > std::chrono::minutes(16))
        samples_.pop_front();
}

std::vector<double> rate_tracker::rates(std::chrono::seconds window, std::string_view group) const {
    std::lock_guard lock(mutex_);
    if (samples_.size() < 2) return {};
    const sample_point& now = samples_.back();
    // The oldest sample inside the window (or the oldest there is, if the window is longer).
    std::size_t k = 0;
    while (k + 2 < samples_.size() && now.at - samples_[k].at > window)
        ++k;
    const sample_point& then = samples_[k];
    auto of = [&](const sample_point& p) -> const std::vector<std::uint64_t>* {
        if (group.empty()) return &p.totals;
        auto it = p.by_group.find(group);
        return it == p.by_group.end() ? nullptr : &it->second;
    };
    // A group absent from the older sample has no rate yet (not its whole history over the window).
    if (!of(now) || !of(then)) return {};
    const auto& v_now = *of(now);
    const auto& v_then = *of(then);
    const double secs = std::chrono::duration<double>(now.at - then.at).count();
    std::vector<double> out(v_now.size(), 0.0);
    if (secs <= 0) return out;
    for (std::size_t i = 0; i < v_now.size(); ++i) {
        const std::uint64_t before = i < v_then.size() ? v_then[i] : 0;
        out[i] = v_now[i] >= before ? static_cast<double>(v_now[i] - before) / secs : 0.0;
    }
    return out;
}

} // namespace faultline::server
