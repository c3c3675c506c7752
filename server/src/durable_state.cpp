#include "faultline/server/durable_state.hpp"

#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/server/log.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace faultline::server {

namespace {
std::int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
} // namespace

durable_state::durable_state(std::string dir, core::pipeline::pipeline& pipe, dedupe_cache& dedupe,
                             dedupe_store* store, std::chrono::milliseconds in_flight_ttl)
    : dir_(std::move(dir))
    , pipe_(pipe)
    , dedupe_(dedupe)
    , store_(store)
    , in_flight_ttl_(in_flight_ttl) {}

durable_state::~durable_state() = default;

std::string durable_state::file() const {
    return dir_ + "/state.json";
}

durable_state::restored durable_state::restore() {
    restored out;
    const std::string path = file();
    std::uint64_t& replay_from = out.replay_from; // every segment, unless the snapshot says where it ends
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        log::info("no saved state: starting fresh", {{"path", path}});
    } else {
        auto text = core::aggregate::read_file(path);
        core::aggregate::delivery_ids ids;
        auto parsed = text ? core::aggregate::parse_state(*text, pipe_.patterns(), &replay_from, &ids)
                           : core::result<core::aggregate::counts>(text.error());
        if (parsed)
            for (const auto& [id, acked_ms] : ids)
                remember(id, acked_ms);
        if (!parsed) {
            replay_from = 0; // the snapshot is gone: every segment there is
            const std::string aside = path + ".corrupt-" + std::to_string(now_unix_ms());
            std::filesystem::rename(path, aside, ec);
            log::error("saved state unreadable: kept aside, starting fresh",
                       {{"path", path},
                        {"error", parsed.error().message},
                        {"kept_as", ec ? std::string("(rename failed: ") + ec.message() + ")" : aside}});
        } else {
            const std::size_t templates = parsed->templates.size();
            out.snapshot_events = parsed->events;
            pipe_.restore(std::move(*parsed));
            log::info("state restored", {{"path", path},
                                         {"templates", std::to_string(templates)},
                                         {"events", std::to_string(out.snapshot_events)}});
        }
    }
    // What was acknowledged after that snapshot: the journal's records, in order.
    // Each record is a delivery as received: decoded again, it adds what it added before.
    out.journal = core::aggregate::journal::replay(dir_, replay_from, [&](std::string_view record) {
        core::pipeline::delivery d;
        if (!pipe_.replay_record(record, &d)) return false;
        if (!d.dedupe_key.empty()) remember(d.dedupe_key, d.now_ms);
        return true;
    });
    for (std::size_t i = 0; i < out.journal.problems.size(); ++i)
        log::error(
            "journal damaged: replayed up to the damage, the rest kept aside",
            {{"problem", out.journal.problems[i]},
             {"kept_as", i < out.journal.kept_aside.size() ? out.journal.kept_aside[i] : std::string()}});
    damaged_ += out.journal.kept_aside.size();
    return out;
}

void durable_state::log_replayed(const restored& r) const {
    if (!r.journal.records && !r.journal.segments) return;
    const std::uint64_t events = pipe_.counters().totals.events;
    log::info("journal replayed",
              {{"records", std::to_string(r.journal.records)},
               {"events", std::to_string(events >= r.snapshot_events ? events - r.snapshot_events : 0)},
               {"segments", std::to_string(r.journal.segments)}});
}

void durable_state::load() {
    if (dir_.empty()) {
        log::info(
            "state disabled (state_dir is empty): counters and templates start fresh and are not saved");
        return;
    }
    const restored r = restore();
    log_replayed(r);
    auto opened = core::aggregate::journal::open(dir_, r.replay_from);
    if (!opened) {
        // Without a journal acknowledgements would not survive a crash: refuse to pretend.
        throw std::runtime_error("cannot open the journal: " + opened.error().message);
    }
    journal_ = std::move(*opened);
    pipe_.set_journal(journal_.get());
    // The replayed records are in the totals now: a snapshot makes them the starting point.
    if (r.journal.records) save();
}

bool durable_state::failed() const {
    return journal_ && journal_->failures() != failures_repaired_.load();
}

bool durable_state::rebuild_after_failure() {
    if (!failed()) return false;
    std::lock_guard one_at_a_time(save_mutex_);
    const std::uint64_t failures_before = failures_repaired_.load();
    restored r;
    // The counts in memory hold deliveries whose journal write failed (answered 503: their
    // senders retry them): they are dropped and the state is read again from the disk, which
    // has exactly what was acknowledged, as a restart would.
    pipe_.rebuild([&] {
        // Drained: every failure so far is behind this point. The count is rebuilt before the
        // failures are marked repaired (a reader that sees them repaired sees the new counts).
        // A reader that finds them repaired also finds the generation moved (it reads both after
        // its copy): its copy may predate the rebuild, so it reads again.
        const std::uint64_t failures = journal_->failures();
        ++rebuilds_;
        r = restore();
        failures_repaired_.store(failures);
    });
    log::error("journal write failed: the counts were rebuilt from the state directory",
               {{"failed_writes", std::to_string(failures_repaired_.load() - failures_before)},
                {"records_replayed", std::to_string(r.journal.records)},
                {"dir", dir_}});
    return true;
}

std::optional<std::string> durable_state::read(const std::function<std::string()>& render) const {
    if (!journal_) return render();
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::uint64_t generation = rebuilds_.load();
        std::string out = render();
        // Every delivery counted in what was just read was appended to the journal before it
        // was committed: once the journal has synced up to here, all of it survives a crash.
        journal_->wait_synced(journal_->appended());
        // Unless a write failed and the counts were not rebuilt since: what was read may hold
        // deliveries answered 503, which a restart would not find. Not shown: the state is being
        // rebuilt (a rebuild during the read: read again).
        if (failed()) return std::nullopt;
        if (rebuilds_.load() == generation) return out;
    }
    return std::nullopt;
}

void durable_state::drain() {
    if (journal_) journal_->drain();
}

std::uint64_t durable_state::journal_bytes() const {
    return journal_ ? journal_->segment_bytes() : 0;
}

void durable_state::remember(const std::string& id, std::int64_t acked_ms) {
    // Wall-clock ages become steady-clock points: the dedupe table ages entries on that clock.
    const auto now = std::chrono::steady_clock::now();
    const auto age = std::chrono::milliseconds(std::max<std::int64_t>(0, now_unix_ms() - acked_ms));
    dedupe_.remember(id, now - age, now);
    // A claim this process left in the shared store when it stopped (a crash between the journal
    // and the store's "done") would hold the id "in flight" for every replica until it expires:
    // an id acknowledged that recently is marked done again.
    if (store_ && age < in_flight_ttl_) store_->finish(id, true);
}

core::aggregate::delivery_ids durable_state::acknowledged(std::uint64_t upto) const {
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t unix_now = now_unix_ms();
    core::aggregate::delivery_ids out;
    auto ids = dedupe_.acknowledged(upto);
    out.reserve(ids.size());
    for (auto& [id, at] : ids)
        out.emplace_back(std::move(id),
                         unix_now - std::chrono::duration_cast<std::chrono::milliseconds>(now - at).count());
    return out;
}

bool durable_state::save() {
    if (dir_.empty()) return true;
    std::lock_guard one_at_a_time(save_mutex_);
    const std::string path = file();
    std::string doc;
    std::uint64_t segment = 0;
    auto snapshot = [&] {
        const auto view = pipe_.view();
        const auto ids = acknowledged();
        doc = core::aggregate::serialize_state(view.totals, *view.patterns, now_unix_ms(), segment, &ids);
    };
    if (journal_) {
        // A new segment starts while no delivery is being committed: the counts copied then plus
        // the segments from the new one on are the whole state. Only the copy is made while the
        // workers are held; the document is written after they go on.
        std::optional<core::pipeline::pipeline::totals_view> held;
        std::uint64_t ids_mark = 0;
        auto cp = pipe_.durable_checkpoint([&](core::pipeline::pipeline::totals_view& v, std::uint64_t next) {
            segment = next;
            // The ids of the deliveries in this copy are those journaled or acknowledged before
            // this point: journaled ids of later deliveries must not be in it (their records may
            // never reach the disk). Only the point is taken in the hold; the ids (up to 100 000
            // by default: 11 ms for 10 000 when they were copied here) after it.
            ids_mark = dedupe_.mark();
            held.emplace(std::move(v));
        });
        if (!cp) {
            log::error("cannot start a new journal segment", {{"error", cp.error().message}});
            return false;
        }
        const auto ids = acknowledged(ids_mark);
        doc = core::aggregate::serialize_state(held->totals, *held->patterns, now_unix_ms(), segment, &ids);
        // Written only once the writer is in the new segment: until then the records after the
        // mark may still go to the old one, which this snapshot would let be removed.
        if (!cp->opened.get()) {
            log::error("cannot start a new journal segment: the state is kept in the journal until the next "
                       "snapshot",
                       {{"segment", std::to_string(segment)}, {"dir", dir_}});
            return false;
        }
        // A write failed before the mark: the copy may hold deliveries answered 503 (the
        // rebuild after the failure takes them out; the snapshot waits for it).
        if (failed()) {
            log::error("state snapshot skipped: a journal write failed and the counts are not rebuilt yet",
                       {{"dir", dir_}});
            return false;
        }
    } else {
        snapshot();
    }
    if (auto r = core::aggregate::write_file_atomic(path, doc); !r) {
        log::error("cannot write the state snapshot", {{"path", path}, {"error", r.error().message}});
        return false;
    }
    if (journal_) journal_->remove_before(segment); // they are in the snapshot now
    return true;
}

} // namespace faultline::server
