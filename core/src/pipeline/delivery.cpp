#include "faultline/core/pipeline/delivery.hpp"

#include <utility>

namespace faultline::core::pipeline {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_str(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

/// Reads what put_u64/put_str wrote; every read is bounds-checked (a record is input too).
struct reader {
    std::string_view in;
    bool ok = true;
    std::uint64_t u64() {
        if (in.size() < 8) {
            ok = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[static_cast<std::size_t>(i)]))
                 << (8 * i);
        in.remove_prefix(8);
        return v;
    }
    /// A list of strings (at most 1024: a record is input too).
    bool list(std::vector<std::string>& out) {
        const std::uint64_t n = u64();
        if (!ok || n > 1024) return ok = false;
        out.clear();
        for (std::uint64_t i = 0; i < n && ok; ++i)
            out.emplace_back(str());
        return ok;
    }
    std::string_view str() {
        const std::uint64_t n = u64();
        if (!ok || n > in.size()) {
            ok = false;
            return {};
        }
        const std::string_view s = in.substr(0, n);
        in.remove_prefix(n);
        return s;
    }
};

// Version 2 added the dedupe key before the body, version 3 the OTLP options before it; records
// of versions 1 (no key) and 2 (no OTLP options) are still read.
constexpr std::string_view record_magic = "faultline-delivery-3";
constexpr std::string_view record_magic_v2 = "faultline-delivery-2";
constexpr std::string_view record_magic_v1 = "faultline-delivery-1";

void put_list(std::string& out, const std::vector<std::string>& list) {
    put_u64(out, list.size());
    for (const auto& s : list)
        put_str(out, s);
}

} // namespace

std::string journal_record(const delivery& d) {
    std::string out = journal_record_head(d);
    out += d.body;
    return out;
}

std::string journal_record_head(const delivery& d) {
    std::string out;
    out.reserve(256);
    // Version 2 when there is nothing of version 3's to write: a rollback to the previous build
    // can still replay every delivery but OTLP ones.
    const bool v3 = d.otlp != nullptr;
    out.append(v3 ? record_magic : record_magic_v2);
    put_u64(out, static_cast<std::uint64_t>(d.kind));
    put_str(out, d.source);
    put_u64(out, static_cast<std::uint64_t>(d.now_ms));
    put_u64(out, d.firehose.body_gzipped ? 1 : 0);
    put_u64(out, static_cast<std::uint64_t>(d.firehose.records));
    put_str(out, d.text_group);
    put_u64(out, d.webhook ? 1 : 0);
    if (d.webhook) {
        const auto& w = *d.webhook;
        put_u64(out, w.message_fields.size());
        for (const auto& f : w.message_fields)
            put_str(out, f);
        put_str(out, w.group);
        put_str(out, w.group_field);
        put_u64(out, (w.text ? 1 : 0) | (w.gzipped ? 2 : 0));
    }
    if (v3) put_u64(out, 1);
    if (v3) {
        const auto& o = *d.otlp;
        put_u64(out, (o.json ? 1 : 0) | (o.gzipped ? 2 : 0));
        put_list(out, o.group_attributes);
        put_str(out, o.group);
        put_list(out, o.message_fields);
    }
    put_str(out, d.dedupe_key);
    put_u64(out, d.body.size()); // put_str(out, d.body) without the bytes
    return out;
}

std::optional<delivery> parse_journal_record(std::string_view record) {
    const int version = record.starts_with(record_magic)      ? 3
                        : record.starts_with(record_magic_v2) ? 2
                        : record.starts_with(record_magic_v1) ? 1
                                                              : 0;
    if (version == 0) return std::nullopt;
    reader r{record.substr(record_magic.size())}; // the magics have the same length
    delivery d;
    const std::uint64_t kind = r.u64();
    if (kind > static_cast<std::uint64_t>(delivery_kind::otlp)) return std::nullopt;
    d.kind = static_cast<delivery_kind>(kind);
    d.source = std::string(r.str());
    // Arrival time: Unix ms, never before 1970 nor past the year 9999 (a damaged record otherwise).
    const std::uint64_t now_ms = r.u64();
    if (now_ms > std::uint64_t{253'402'300'800'000}) return std::nullopt;
    d.now_ms = static_cast<std::int64_t>(now_ms);
    d.firehose.body_gzipped = r.u64() != 0;
    const std::uint64_t format = r.u64();
    if (format > static_cast<std::uint64_t>(decode::record_format::cloudwatch_or_text)) return std::nullopt;
    d.firehose.records = static_cast<decode::record_format>(format);
    d.text_group = std::string(r.str());
    if (r.u64()) {
        auto w = std::make_shared<decode::webhook_options>();
        const std::uint64_t fields = r.u64();
        if (!r.ok || fields > 1024) return std::nullopt;
        w->message_fields.clear();
        for (std::uint64_t i = 0; i < fields && r.ok; ++i)
            w->message_fields.emplace_back(r.str());
        w->group = std::string(r.str());
        w->group_field = std::string(r.str());
        const std::uint64_t flags = r.u64();
        w->text = flags & 1;
        w->gzipped = flags & 2;
        d.webhook = std::move(w);
    } else if (d.kind == delivery_kind::webhook) {
        return std::nullopt;
    }
    if (version >= 3 && r.u64()) {
        auto o = std::make_shared<decode::otlp_options>();
        const std::uint64_t flags = r.u64();
        o->json = flags & 1;
        o->gzipped = flags & 2;
        if (!r.list(o->group_attributes)) return std::nullopt;
        o->group = std::string(r.str());
        if (!r.list(o->message_fields)) return std::nullopt;
        d.otlp = std::move(o);
    } else if (d.kind == delivery_kind::otlp) {
        return std::nullopt;
    }
    if (version >= 2) d.dedupe_key = std::string(r.str());
    const std::string_view body = r.str();
    if (!r.ok || !r.in.empty()) return std::nullopt;
    d.body.reserve(body.size() + decode::json_padding);
    d.body.assign(body);
    return d;
}

delivery_result decode_delivery(worker_context& worker, delivery& d) {
    delivery_result r;
    auto& sink = worker.begin_batch(d.now_ms);
    switch (d.kind) {
    case delivery_kind::firehose: {
        d.firehose.text_group = d.text_group;
        auto s = worker.decoder.firehose(d.body, sink, d.firehose);
        if (!s)
            r.failure = s.error();
        else
            r.request_id = std::move(s->request_id);
        break;
    }
    case delivery_kind::cloudwatch: {
        auto s = worker.decoder.cloudwatch_delivery(d.body, sink);
        if (!s) r.failure = s.error();
        break;
    }
    case delivery_kind::webhook: {
        auto s = worker.decoder.webhook(d.body, *d.webhook, sink);
        if (!s) r.failure = s.error();
        break;
    }
    case delivery_kind::otlp: {
        if (!d.otlp) {
            r.failure = make_error(errc::internal, "an OTLP delivery without its options");
            break;
        }
        auto s = worker.decoder.otlp(d.body, *d.otlp, sink);
        if (!s)
            r.failure = s.error();
        else
            r.rejected = s->rejected;
        break;
    }
    }
    if (!r.failure) {
        r.events = worker.batch.events;
        r.control_messages = worker.batch.control_messages;
        r.documents = worker.batch.documents;
    }
    return r;
}

void delivery_job::run(worker_context& worker) noexcept {
    delivery_result r;
    try {
        // With a journal, the record is the body as received (the decoders only read it), after
        // its head: the body is moved into the journal's queue, not copied.
        std::string record;
        if (journal_ && journal_->journal()) record = journal_record_head(d_);
        r = decode_delivery(worker, d_);
        if (!r.failure) {
            if (!record.empty()) {
                // Durable acknowledgement: the verdict is given once the journal has the record.
                const verdict_hold hold = journal_->commit_durably(
                    worker, d_.source, std::move(record), std::exchange(d_.body, {}),
                    [done = done_, r](bool ok) mutable {
                        if (!ok)
                            r.failure = make_error(
                                errc::io, "the journal (state_dir) could not be written: retry later");
                        if (done) done(std::move(r));
                    });
                if (journaled_) {
                    try {
                        journaled_(); // bookkeeping only: what it throws must not answer twice
                    } catch (...) {
                    }
                }
                // Queued and committed: the verdict is given when the journal has written the
                // record and the hold is gone (an exception before this: below, nothing queued).
                return;
            }
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
