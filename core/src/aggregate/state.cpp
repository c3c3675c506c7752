#include "faultline/core/aggregate/state.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

namespace faultline::core::aggregate {
namespace {

void num(std::string& out, std::string_view key, std::uint64_t v) {
    append_json_string(out, key);
    out += ':' + std::to_string(v);
}

} // namespace

std::string serialize_state(const counts& t, const match::pattern_set& patterns, std::int64_t saved_ms,
                            std::uint64_t journal_segment, const delivery_ids* ids) {
    const auto& pats = patterns.patterns();
    auto name = [&](std::size_t id) -> std::string_view {
        return id < pats.size() ? std::string_view(pats[id].name) : std::string_view{};
    };
    std::string out;
    out.reserve(4096 + t.templates.size() * 256);
    out += "{\"format\":\"faultline-state\",\"version\":" + std::to_string(state_version);
    out += ",\"saved_ms\":" + std::to_string(saved_ms);
    if (journal_segment) out += ",\"journal_segment\":" + std::to_string(journal_segment);
    if (ids && !ids->empty()) {
        out += ",\"delivery_ids\":[";
        for (std::size_t i = 0; i < ids->size(); ++i) {
            if (i) out += ',';
            out += '[';
            append_json_string(out, (*ids)[i].first);
            out += ',' + std::to_string((*ids)[i].second) + ']';
        }
        out += ']';
    }
    out += ",\"totals\":{";
    num(out, "documents", t.documents);
    out += ',';
    num(out, "events", t.events);
    out += ',';
    num(out, "control_messages", t.control_messages);
    out += ',';
    num(out, "templates_evicted", t.templates_evicted);
    out += ",\"patterns\":{";
    bool first = true;
    for (std::size_t i = 0; i < t.patterns.size(); ++i) {
        if (!t.patterns[i] || name(i).empty()) continue;
        if (!first) out += ',';
        first = false;
        num(out, name(i), t.patterns[i]);
    }
    out += "},\"by_group\":{";
    first = true;
    for (const auto& [g, v] : t.by_group) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, g);
        out += ":{";
        bool f2 = true;
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i] || name(i).empty()) continue;
            if (!f2) out += ',';
            f2 = false;
            num(out, name(i), v[i]);
        }
        out += '}';
    }
    out += "},\"by_source\":{";
    first = true;
    for (const auto& [src, n] : t.by_source) {
        if (!first) out += ',';
        first = false;
        num(out, src, n);
    }
    out += "}},\"templates\":[";
    first = true;
    for (const auto& [text, st] : t.templates) {
        if (!first) out += ',';
        first = false;
        out += "{\"text\":";
        append_json_string(out, text);
        out += ",\"count\":" + std::to_string(st.count);
        if (const auto* d = st.details.get()) {
            out += ",\"first_seen_ms\":" + std::to_string(d->first_seen_ms);
            out += ",\"last_seen_ms\":" + std::to_string(d->last_seen_ms);
            out += ",\"sample\":";
            append_json_string(out, d->sample);
            out += ",\"new\":";
            out += d->is_new ? "true" : "false";
            out += ",\"patterns\":[";
            for (std::size_t k = 0; k < d->patterns.size(); ++k) {
                if (k) out += ',';
                append_json_string(out, name(d->patterns[k]));
            }
            out += "],\"groups\":[";
            for (std::size_t k = 0; k < d->groups.size(); ++k) {
                if (k) out += ',';
                out += '[';
                append_json_string(out, d->groups[k].first);
                out += ',' + std::to_string(d->groups[k].second) + ']';
            }
            out += "],\"previous\":[";
            for (std::size_t k = 0; k < d->previous_texts.size(); ++k) {
                if (k) out += ',';
                append_json_string(out, d->previous_texts[k]);
            }
            out += "],\"minute\":" + std::to_string(d->minute_seen) + ",\"minutes\":[";
            for (std::size_t k = 0; k < d->minutes.size(); ++k) {
                if (k) out += ',';
                out += std::to_string(d->minutes[k]);
            }
            out += ']';
        }
        out += '}';
    }
    out += "]}\n";
    return out;
}

namespace {

namespace dom = simdjson::dom;

error bad(const std::string& what) {
    return make_error(errc::document, "state file: " + what);
}

template <class T>
bool get(dom::element e, T& out) {
    return e.get(out) == simdjson::SUCCESS;
}

} // namespace

result<counts> parse_state(std::string_view json, const match::pattern_set& patterns,
                           std::uint64_t* journal_segment, delivery_ids* delivered) {
    // A state file is input from outside like any other (a disk, an operator, a restore gone
    // wrong): every field is checked for presence and type, and any problem fails the whole
    // document with the field's path. Nothing here may crash on a document of any shape.
    const auto& pats = patterns.patterns();
    std::map<std::string, std::uint32_t, std::less<>> ids;
    for (std::size_t i = 0; i < pats.size(); ++i)
        ids.emplace(pats[i].name, static_cast<std::uint32_t>(i));
    simdjson::padded_string copy(json);
    dom::parser parser;
    dom::element root;
    if (auto e = parser.parse(copy).get(root))
        return bad(std::string("invalid JSON: ") + simdjson::error_message(e));
    dom::object top;
    if (!get(root, top)) return bad("not a faultline state document (expected a JSON object)");

    // The value of `key` in `o`: an error naming `path.key` when it is missing.
    auto field = [](dom::object o, std::string_view key, const std::string& path) -> result<dom::element> {
        dom::element e;
        if (o[key].get(e)) return bad(path + std::string(key) + " is missing");
        return e;
    };
    auto u64 = [](dom::element e, const std::string& where) -> result<std::uint64_t> {
        std::uint64_t v = 0;
        if (!get(e, v)) return bad(where + ": expected a non-negative integer");
        return v;
    };
    auto i64 = [](dom::element e, const std::string& where) -> result<std::int64_t> {
        std::int64_t v = 0;
        if (!get(e, v)) return bad(where + ": expected an integer");
        return v;
    };
    auto str = [](dom::element e, const std::string& where) -> result<std::string_view> {
        std::string_view v;
        if (!get(e, v)) return bad(where + ": expected a string");
        return v;
    };
    auto obj = [](dom::element e, const std::string& where) -> result<dom::object> {
        dom::object v;
        if (!get(e, v)) return bad(where + ": expected an object");
        return v;
    };
    auto arr = [](dom::element e, const std::string& where) -> result<dom::array> {
        dom::array v;
        if (!get(e, v)) return bad(where + ": expected an array");
        return v;
    };

    {
        std::string_view format;
        dom::element f;
        if (top["format"].get(f) || !get(f, format) || format != "faultline-state")
            return bad("not a faultline state document (format is not \"faultline-state\")");
    }
    auto version_field = field(top, "version", "");
    if (!version_field) return version_field.error();
    auto version = i64(*version_field, "version");
    if (!version) return version.error();
    if (*version != state_version)
        return bad("version " + std::to_string(*version) + " is not supported (this build reads version " +
                   std::to_string(state_version) + ")");
    if (auto saved = field(top, "saved_ms", ""); !saved)
        return saved.error();
    else if (auto v = i64(*saved, "saved_ms"); !v)
        return v.error();
    if (journal_segment) {
        *journal_segment = 0; // absent: every journal segment is replayed
        if (dom::element e; !top["journal_segment"].get(e)) {
            auto n = u64(e, "journal_segment");
            if (!n) return n.error();
            *journal_segment = *n;
        }
    }
    if (delivered) {
        delivered->clear();
        if (dom::element e; !top["delivery_ids"].get(e)) {
            auto list = arr(e, "delivery_ids");
            if (!list) return list.error();
            std::size_t i = 0;
            for (dom::element item : *list) {
                const std::string where = "delivery_ids[" + std::to_string(i++) + "]";
                auto pair = arr(item, where);
                if (!pair) return pair.error();
                dom::element first, second;
                if (pair->size() != 2 || pair->at(0).get(first) || pair->at(1).get(second))
                    return bad(where + ": expected [id, acknowledged_ms]");
                auto id = str(first, where + "[0]");
                if (!id) return id.error();
                if (id->empty() || id->size() > max_delivery_id_bytes)
                    return bad(where + "[0]: expected an id of 1 to " +
                               std::to_string(max_delivery_id_bytes) + " bytes");
                auto at = u64(second, where + "[1]");
                if (!at) return at.error();
                if (*at > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                    return bad(where + "[1]: out of range");
                delivered->emplace_back(std::string(*id), static_cast<std::int64_t>(*at));
            }
        }
    }

    counts c(pats.size());
    auto totals_field = field(top, "totals", "");
    if (!totals_field) return totals_field.error();
    auto totals = obj(*totals_field, "totals");
    if (!totals) return totals.error();
    for (auto [key, out] : std::initializer_list<std::pair<const char*, std::uint64_t*>>{
             {"documents", &c.documents},
             {"events", &c.events},
             {"control_messages", &c.control_messages},
             {"templates_evicted", &c.templates_evicted}}) {
        auto e = field(*totals, key, "totals.");
        if (!e) return e.error();
        auto v = u64(*e, std::string("totals.") + key);
        if (!v) return v.error();
        *out = *v;
    }
    // Pattern counts by name; names of patterns no longer configured are dropped.
    auto pattern_counts = [&](dom::element e, std::vector<std::uint64_t>& out,
                              const std::string& where) -> result<void> {
        auto o = obj(e, where);
        if (!o) return o.error();
        out.assign(pats.size(), 0);
        for (auto [k, v] : *o) {
            auto n = u64(v, where + "." + std::string(k));
            if (!n) return n.error();
            if (auto it = ids.find(k); it != ids.end()) out[it->second] += *n;
        }
        return {};
    };
    {
        auto e = field(*totals, "patterns", "totals.");
        if (!e) return e.error();
        if (auto r = pattern_counts(*e, c.patterns, "totals.patterns"); !r) return r.error();
    }
    {
        auto e = field(*totals, "by_group", "totals.");
        if (!e) return e.error();
        auto groups = obj(*e, "totals.by_group");
        if (!groups) return groups.error();
        for (auto [g, v] : *groups) {
            std::vector<std::uint64_t> per;
            if (auto r = pattern_counts(v, per, "totals.by_group." + std::string(g)); !r) return r.error();
            c.by_group.emplace(std::string(g), std::move(per));
        }
    }
    {
        auto e = field(*totals, "by_source", "totals.");
        if (!e) return e.error();
        auto sources = obj(*e, "totals.by_source");
        if (!sources) return sources.error();
        for (auto [k, v] : *sources) {
            auto n = u64(v, "totals.by_source." + std::string(k));
            if (!n) return n.error();
            c.by_source[std::string(k)] = *n;
        }
    }

    auto templates_field = field(top, "templates", "");
    if (!templates_field) return templates_field.error();
    auto templates = arr(*templates_field, "templates");
    if (!templates) return templates.error();
    std::size_t index = 0;
    for (dom::element t : *templates) {
        const std::string where = "templates[" + std::to_string(index++) + "]";
        auto o = obj(t, where);
        if (!o) return o.error();
        auto text_field = field(*o, "text", where + ".");
        if (!text_field) return text_field.error();
        auto text = str(*text_field, where + ".text");
        if (!text) return text.error();
        auto count_field = field(*o, "count", where + ".");
        if (!count_field) return count_field.error();
        auto count = u64(*count_field, where + ".count");
        if (!count) return count.error();
        template_stats st;
        st.count = *count;
        // Details are written together (first_seen_ms and the rest) or not at all.
        dom::element first;
        if ((*o)["first_seen_ms"].get(first)) {
            for (const char* key :
                 {"last_seen_ms", "sample", "new", "patterns", "groups", "previous", "minute", "minutes"}) {
                dom::element ignored;
                if (!(*o)[key].get(ignored)) return bad(where + ".first_seen_ms is missing");
            }
        } else {
            auto d = std::make_unique<template_details>();
            // Times within what the per-minute arithmetic handles (no overflow, no negative index).
            constexpr std::int64_t max_minute = INT64_MAX / 60'000 - 32;
            auto in_range = [&](std::int64_t v, std::int64_t max, const std::string& w) -> result<void> {
                if (v < 0 || v > max) return bad(w + ": out of range (0 to " + std::to_string(max) + ")");
                return {};
            };
            auto first_seen = i64(first, where + ".first_seen_ms");
            if (!first_seen) return first_seen.error();
            if (auto r = in_range(*first_seen, max_minute * 60'000, where + ".first_seen_ms"); !r)
                return r.error();
            d->first_seen_ms = *first_seen;
            auto need = [&](std::string_view key) { return field(*o, key, where + "."); };
            auto last = need("last_seen_ms");
            if (!last) return last.error();
            auto last_seen = i64(*last, where + ".last_seen_ms");
            if (!last_seen) return last_seen.error();
            if (auto r = in_range(*last_seen, max_minute * 60'000, where + ".last_seen_ms"); !r)
                return r.error();
            d->last_seen_ms = *last_seen;
            auto sample_field = need("sample");
            if (!sample_field) return sample_field.error();
            auto sample = str(*sample_field, where + ".sample");
            if (!sample) return sample.error();
            if (sample->size() > template_details::max_sample_bytes)
                return bad(where + ".sample: longer than " +
                           std::to_string(template_details::max_sample_bytes) + " bytes");
            d->sample = std::string(*sample);
            auto is_new = need("new");
            if (!is_new) return is_new.error();
            if (!get(*is_new, d->is_new)) return bad(where + ".new: expected true or false");
            auto pats_field = need("patterns");
            if (!pats_field) return pats_field.error();
            auto pat_names = arr(*pats_field, where + ".patterns");
            if (!pat_names) return pat_names.error();
            for (dom::element p : *pat_names) {
                auto n = str(p, where + ".patterns[]");
                if (!n) return n.error();
                if (auto it = ids.find(*n); it != ids.end()) d->patterns.push_back(it->second);
            }
            std::sort(d->patterns.begin(), d->patterns.end());
            d->patterns.erase(std::unique(d->patterns.begin(), d->patterns.end()), d->patterns.end());
            auto groups_field = need("groups");
            if (!groups_field) return groups_field.error();
            auto groups = arr(*groups_field, where + ".groups");
            if (!groups) return groups.error();
            for (dom::element g : *groups) {
                const std::string gw = where + ".groups[" + std::to_string(d->groups.size()) + "]";
                dom::array pair;
                std::string_view gname;
                std::uint64_t n = 0;
                if (!get(g, pair) || pair.size() != 2 || !get(pair.at(0).value_unsafe(), gname) ||
                    !get(pair.at(1).value_unsafe(), n))
                    return bad(gw + ": expected [group, count]");
                if (d->groups.size() == template_details::max_groups)
                    return bad(where + ".groups: more than " + std::to_string(template_details::max_groups));
                d->groups.emplace_back(std::string(gname), n);
            }
            auto previous_field = need("previous");
            if (!previous_field) return previous_field.error();
            auto previous = arr(*previous_field, where + ".previous");
            if (!previous) return previous.error();
            for (dom::element p : *previous) {
                auto prev = str(p, where + ".previous[]");
                if (!prev) return prev.error();
                d->previous_texts.emplace_back(*prev);
            }
            auto minute_field = need("minute");
            if (!minute_field) return minute_field.error();
            auto minute = i64(*minute_field, where + ".minute");
            if (!minute) return minute.error();
            if (auto r = in_range(*minute, max_minute, where + ".minute"); !r) return r.error();
            d->minute_seen = *minute;
            auto minutes_field = need("minutes");
            if (!minutes_field) return minutes_field.error();
            auto minutes = arr(*minutes_field, where + ".minutes");
            if (!minutes) return minutes.error();
            if (minutes->size() > d->minutes.size())
                return bad(where + ".minutes: more than " + std::to_string(d->minutes.size()) + " entries");
            std::size_t k = 0;
            for (dom::element m : *minutes) {
                auto v = u64(m, where + ".minutes[" + std::to_string(k) + "]");
                if (!v) return v.error();
                d->minutes[k++] = static_cast<std::uint32_t>(std::min<std::uint64_t>(*v, UINT32_MAX));
            }
            st.details = std::move(d);
        }
        c.templates.emplace(std::string(*text), std::move(st));
    }
    return c;
}

result<void> write_file_atomic(const std::string& path, std::string_view data) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    std::error_code ec;
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    if (ec)
        return make_error(errc::io,
                          target.parent_path().string() + ": cannot create directory: " + ec.message());
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(errc::io, tmp + ": cannot create: " + std::strerror(errno));
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return make_error(errc::io, tmp + ": write failed: " + std::strerror(err));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        return make_error(errc::io, tmp + ": fsync failed: " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return make_error(errc::io, path + ": rename failed: " + std::strerror(err));
    }
    const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

result<std::string> read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errc::io, path + ": " + std::strerror(errno));
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return make_error(errc::io, path + ": " + std::strerror(err));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

} // namespace faultline::core::aggregate
