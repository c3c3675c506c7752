#include "faultline/core/aggregate/analyzer.hpp"

#include "faultline/core/mine/masker.hpp"

namespace faultline::core::aggregate {

analyzer::analyzer(match::matcher& matcher, analyze_options options)
    : matcher_(matcher)
    , options_(options) {}

void analyzer::begin(counts& batch, std::int64_t now_ms) {
    batch_ = &batch;
    now_ms_ = now_ms;
    // Details in the batch's array are all of its time: counted at another, they go to their
    // templates first (counted on there, see on_event).
    if (!batch.open_details.entries.empty() && batch.open_details.now_ms != now_ms) batch.settle_details();
    batch.open_details.now_ms = now_ms;
    group_counts_ = nullptr;
    group_.clear();
    events_.clear();
}

void analyzer::on_document(std::string_view group) {
    ++batch_->documents;
    on_text_source(group);
}

void analyzer::on_text_source(std::string_view group) {
    if (group_counts_ && group == group_) return;
    group_.assign(group);
    group_counts_ = nullptr;
}

void analyzer::on_event(std::string_view message) {
    ++batch_->events;
    if (message.size() > options_.max_message_bytes) message = message.substr(0, options_.max_message_bytes);
    const auto hits = matcher_.match(message);
    if (options_.record_events) events_.push_back(nullptr); // until it is mined
    if (hits.empty()) return;
    if (!group_counts_) {
        auto it = batch_->by_group.find(std::string_view(group_));
        if (it == batch_->by_group.end())
            it = batch_->by_group.emplace(group_, std::vector<std::uint64_t>(matcher_.set().size(), 0)).first;
        else if (it->second.size() != matcher_.set().size()) // recycled under another pattern set
            it->second.assign(matcher_.set().size(), 0);
        group_counts_ = &it->second;
        group_key_ = &it->first;
    }
    bool is_error = false;
    for (const std::uint32_t id : hits) {
        ++batch_->patterns[id];
        ++(*group_counts_)[id];
        is_error = is_error || matcher_.set().is_error(id);
    }
    if (!is_error) return;
    mine::mask_message(message, template_, options_.mask_bytes);
    auto it = batch_->templates.find(std::string_view(template_));
    if (it == batch_->templates.end()) {
        if (spare_.empty()) {
            it = batch_->templates.try_emplace(template_).first;
        } else { // an entry the batch dropped, with its storage: no allocation
            auto node = std::move(spare_.back());
            spare_.pop_back();
            node.key().assign(template_);
            it = batch_->templates.insert(std::move(node)).position;
        }
    }
    if (options_.record_events) events_.back() = &it->first;
    template_stats& stats = it->second;
    if (!options_.template_details) {
        ++stats.count;
    } else if (stats.count == 0) { // its details go to the batch's array (see batch_detail)
        stats.batch_slot = batch_->open_details.first(message, hits, group_key_);
        stats.count = 1;
    } else if (stats.batch_slot != template_stats::no_batch_slot) {
        batch_->open_details.again(stats.batch_slot, hits, group_key_);
        ++stats.count;
    } else { // it holds details of its own (counts::settle_details)
        stats.add(group_, hits, message, now_ms_);
    }
}

void analyzer::on_control_message() {
    ++batch_->control_messages;
}

} // namespace faultline::core::aggregate
