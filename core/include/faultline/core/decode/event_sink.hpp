// What decoders emit. Views passed to a sink are valid only during the call.
#pragma once

#include <string_view>

namespace faultline::core::decode {

class event_sink {
public:
    virtual ~event_sink() = default;
    /// A CloudWatch DATA_MESSAGE starts; the events that follow belong to `group`.
    virtual void on_document(std::string_view group) = 0;
    /// Raw text events follow (a text record, a webhook, a file of lines), in `group`.
    virtual void on_text_source(std::string_view group) = 0;
    /// One log event of the current group.
    virtual void on_event(std::string_view message) = 0;
    /// A CloudWatch CONTROL_MESSAGE (no events are counted for it).
    virtual void on_control_message() = 0;
};

} // namespace faultline::core::decode
