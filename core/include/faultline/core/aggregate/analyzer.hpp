// The per-event step of the engine: match an event against the pattern set and, for error-class
// events, mask it into a template; everything is counted into the current batch.
#pragma once

#include "faultline/core/aggregate/counts.hpp"
#include "faultline/core/decode/event_sink.hpp"
#include "faultline/core/match/pattern_set.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace faultline::core::aggregate {

struct analyze_options {
    /// Longer messages are counted, and matched and masked on their first bytes only.
    std::size_t max_message_bytes = std::size_t{64} << 10;
    /// Keep per-template details (first/last seen, sample, groups, patterns) for the API. Off for
    /// `faultline scan`, whose report needs only the counts: less memory per template.
    bool template_details = true;
    /// Longest masked text kept per event: 200 for exact templates (SEED_BENCH), more for mining.
    std::size_t mask_bytes = 200;
    /// Record, per event in order, the batch template it was counted under (`event_templates`):
    /// for `faultline scan --assignments`.
    bool record_events = false;
};

/// An event_sink that counts into a `counts` batch. One per worker; not thread-safe.
class analyzer final : public decode::event_sink {
public:
    analyzer(match::matcher& matcher, analyze_options options = {});

    /// Starts counting into `batch` (which must be sized for the matcher's pattern set); templates
    /// first or last seen in it are stamped `now_ms` (Unix ms).
    void begin(counts& batch, std::int64_t now_ms = 0);

    void on_document(std::string_view group) override;
    void on_text_source(std::string_view group) override;
    void on_event(std::string_view message) override;
    void on_control_message() override;

    /// With analyze_options::record_events: per event of the batch, in order, its key in the
    /// batch's `templates` (null: not an error event, not mined). Valid until that map changes.
    const std::vector<const std::string*>& event_templates() const noexcept { return events_; }

    /// Entries the batch dropped (counts::restart), which new templates are made from.
    spare_templates& spare() noexcept { return spare_; }

private:
    match::matcher& matcher_;
    analyze_options options_;
    counts* batch_ = nullptr;
    std::int64_t now_ms_ = 0;
    std::string group_;
    std::vector<std::uint64_t>* group_counts_ = nullptr; // the current group's entry, made on first match
    const std::string* group_key_ = nullptr;             // and its key (the templates' details name it)
    std::string template_;
    std::vector<const std::string*> events_;
    spare_templates spare_;
};

} // namespace faultline::core::aggregate
