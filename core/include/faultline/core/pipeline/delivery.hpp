// One HTTP delivery (a Firehose request, a CloudWatch delivery, a webhook) as a pipeline job:
// decoded and counted on a worker, all or nothing, with the verdict handed to a callback (the
// server posts it back to the session that awaits it: the ack means counted).
#pragma once

#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/error.hpp"
#include "faultline/core/pipeline/pipeline.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace faultline::core::pipeline {

enum class delivery_kind { firehose, cloudwatch, webhook };

struct delivery {
    delivery_kind kind = delivery_kind::cloudwatch;
    std::string body;                  ///< capacity must exceed size by decode::json_padding
    std::string source;                ///< label of faultline_events_ingested_total{source}
    std::int64_t now_ms = 0;           ///< arrival time (Unix ms): templates' first/last seen
    decode::firehose_options firehose; ///< text_group points into `text_group`
    std::string text_group;            ///< group of raw text records (Firehose)
    std::shared_ptr<const decode::webhook_options> webhook;
};

struct delivery_result {
    std::optional<admission> refused; ///< not admitted (queue_full or stopped): nothing was counted
    std::optional<error> failure;     ///< the decode error; nothing was counted
    std::uint64_t events = 0;
    std::uint64_t control_messages = 0;
    std::uint64_t documents = 0;
    std::string request_id; ///< Firehose: the body's requestId
};

class delivery_job final : public job {
public:
    using callback = std::function<void(delivery_result)>;
    delivery_job(delivery d, callback done)
        : d_(std::move(d))
        , done_(std::move(done)) {}

    void run(worker_context& worker) noexcept override;

private:
    delivery d_;
    callback done_;
};

} // namespace faultline::core::pipeline
