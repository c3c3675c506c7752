#include "faultline/core/pipeline/delivery.hpp"

namespace faultline::core::pipeline {

void delivery_job::run(worker_context& worker) noexcept {
    delivery_result r;
    try {
        auto& sink = worker.begin_batch(d_.now_ms);
        switch (d_.kind) {
        case delivery_kind::firehose: {
            d_.firehose.text_group = d_.text_group;
            auto s = worker.decoder.firehose(d_.body, sink, d_.firehose);
            if (!s)
                r.failure = s.error();
            else
                r.request_id = std::move(s->request_id);
            break;
        }
        case delivery_kind::cloudwatch: {
            auto s = worker.decoder.cloudwatch_delivery(d_.body, sink);
            if (!s) r.failure = s.error();
            break;
        }
        case delivery_kind::webhook: {
            auto s = worker.decoder.webhook(d_.body, *d_.webhook, sink);
            if (!s) r.failure = s.error();
            break;
        }
        }
        if (!r.failure) {
            r.events = worker.batch.events;
            r.control_messages = worker.batch.control_messages;
            r.documents = worker.batch.documents;
            worker.commit_batch(d_.source);
        }
    } catch (const std::exception& e) {
        // The worker failed (an allocation, a library), not the input: nothing was counted (the
        // batch is committed last), and the server answers 500, never 400.
        r.failure = make_error(errc::internal, std::string("internal error: ") + e.what());
    } catch (...) {
        r.failure = make_error(errc::internal, "internal error");
    }
    // Release the body before reporting: the server's in-flight byte budget counts it until then.
    std::string().swap(d_.body);
    if (!done_) return;
    try {
        done_(std::move(r));
    } catch (...) {
        // The verdict could not be handed back (an allocation in the hand-off): its session is
        // left waiting until its connection ends; the worker, and the process, go on.
    }
}

} // namespace faultline::core::pipeline
