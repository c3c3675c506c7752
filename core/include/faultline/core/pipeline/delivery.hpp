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

enum class delivery_kind { firehose, cloudwatch, webhook, otlp };

struct delivery {
    delivery_kind kind = delivery_kind::cloudwatch;
    std::string body;                  ///< capacity must exceed size by decode::json_padding
    std::string source;                ///< label of faultline_events_ingested_total{source}
    std::int64_t now_ms = 0;           ///< arrival time (Unix ms): templates' first/last seen
    decode::firehose_options firehose; ///< text_group points into `text_group`
    std::string text_group;            ///< group of raw text records (Firehose)
    std::shared_ptr<const decode::webhook_options> webhook;
    std::shared_ptr<const decode::otlp_options> otlp;
    /// The id a redelivery is recognised by (the dedupe key of a Firehose request id or webhook
    /// delivery id; empty: none): journaled with the delivery, so it survives a restart.
    std::string dedupe_key;
};

struct delivery_result {
    std::optional<admission> refused; ///< not admitted (queue_full or stopped): nothing was counted
    std::optional<error> failure;     ///< the decode error; nothing was counted
    std::uint64_t events = 0;
    std::uint64_t control_messages = 0;
    std::uint64_t documents = 0;
    std::uint64_t rejected = 0; ///< OTLP: log records not counted (no body)
    std::string request_id;     ///< Firehose: the body's requestId
};

/// Decodes `d` into the worker's batch (begin_batch at d.now_ms first). Counts nothing: the
/// caller commits the batch. Throws only what the decoder's allocations throw.
delivery_result decode_delivery(worker_context& worker, delivery& d);

/// A delivery as a journal record: its body exactly as received, and how to read it (kind,
/// source, arrival time, Firehose, webhook and OTLP options). Replayed, it decodes to the same counts.
std::string journal_record(const delivery& d);
/// journal_record(d) but the body's bytes: the record is this followed by d.body.
std::string journal_record_head(const delivery& d);
/// The delivery of a journal record (nullopt: not a record this build reads). The body gets
/// the decoders' padding.
std::optional<delivery> parse_journal_record(std::string_view record);

class delivery_job final : public job {
public:
    using callback = std::function<void(delivery_result)>;
    /// `durable`: the pipeline whose journal (if it has one) commits the batch before `done`.
    /// `journaled`: called once the record is in the journal's queue and the batch is committed
    /// (before `done`, which waits for the sync), while no checkpoint can run: a snapshot taken
    /// after it holds this delivery's counts, so it must hold its id too.
    delivery_job(delivery&& d, callback done, pipeline* durable = nullptr,
                 std::function<void()> journaled = {})
        : d_(std::move(d))
        , done_(std::move(done))
        , journal_(durable)
        , journaled_(std::move(journaled)) {}

    void run(worker_context& worker) noexcept override;

private:
    delivery d_;
    callback done_;
    pipeline* journal_;
    std::function<void()> journaled_;
};

} // namespace faultline::core::pipeline
