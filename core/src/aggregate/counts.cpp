#include "faultline/core/aggregate/counts.hpp"

namespace faultline::core::aggregate {

namespace {
void add_vector(std::vector<std::uint64_t>& into, const std::vector<std::uint64_t>& from) {
    if (into.size() < from.size()) into.resize(from.size(), 0);
    for (std::size_t i = 0; i < from.size(); ++i) into[i] += from[i];
}
} // namespace

void counts::merge(const counts& other) {
    documents += other.documents;
    events += other.events;
    control_messages += other.control_messages;
    add_vector(patterns, other.patterns);
    for (const auto& [group, per_pattern] : other.by_group) {
        auto it = by_group.find(group);
        if (it == by_group.end()) by_group.emplace(group, per_pattern);
        else add_vector(it->second, per_pattern);
    }
    for (const auto& [tpl, n] : other.templates) {
        auto it = templates.find(tpl);
        if (it == templates.end()) templates.emplace(tpl, n);
        else it->second += n;
    }
}

void counts::clear() {
    documents = events = control_messages = 0;
    std::fill(patterns.begin(), patterns.end(), 0);
    by_group.clear();
    templates.clear();
}

} // namespace faultline::core::aggregate
