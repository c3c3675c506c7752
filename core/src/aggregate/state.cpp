#include "faultline/core/aggregate/state.hpp"

#include "faultline/core/aggregate/report.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

namespace faultline::core::aggregate {
namespace {

void num(std::string& out, std::string_view key, std::uint64_t v) {
    append_json_string(out, key);
    out += ':' + std::to_string(v);
}

} // namespace

std::string serialize_state(const counts& t, const match::pattern_set& patterns, std::int64_t saved_ms) {
    const auto& pats = patterns.patterns();
    auto name = [&](std::size_t id) -> std::string_view {
        return id < pats.size() ? std::string_view(pats[id].name) : std::string_view{};
    };
    std::string out;
    out.reserve(4096 + t.templates.size() * 256);
    out += "{\"format\":\"faultline-state\",\"version\":" + std::to_string(state_version);
    out += ",\"saved_ms\":" + std::to_string(saved_ms);
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

result<counts> parse_state(std::string_view json, const match::pattern_set& patterns) {
    const auto& pats = patterns.patterns();
    std::map<std::string, std::uint32_t, std::less<>> ids;
    for (std::size_t i = 0; i < pats.size(); ++i)
        ids.emplace(pats[i].name, static_cast<std::uint32_t>(i));
    simdjson::padded_string copy(json);
    dom::parser parser;
    dom::element root;
    if (auto e = parser.parse(copy).get(root))
        return bad(std::string("invalid JSON: ") + simdjson::error_message(e));
    std::string_view format;
    if (!get(root["format"], format) || format != "faultline-state")
        return bad("not a faultline state document");
    std::int64_t version = 0;
    if (!get(root["version"], version)) return bad("version is missing");
    if (version != state_version)
        return bad("version " + std::to_string(version) + " is not supported (this build reads version " +
                   std::to_string(state_version) + ")");
    counts c(pats.size());
    dom::object totals;
    if (!get(root["totals"], totals)) return bad("totals is missing");
    auto u64 = [&](dom::element e, const char* what, std::uint64_t& out) -> result<void> {
        if (!get(e, out)) return bad(std::string(what) + ": expected a non-negative integer");
        return {};
    };
    for (auto [key, field] : std::initializer_list<std::pair<const char*, std::uint64_t*>>{
             {"documents", &c.documents},
             {"events", &c.events},
             {"control_messages", &c.control_messages},
             {"templates_evicted", &c.templates_evicted}}) {
        dom::element e;
        if (totals[key].get(e)) return bad(std::string("totals.") + key + " is missing");
        if (auto r = u64(e, key, *field); !r) return r.error();
    }
    auto pattern_counts = [&](dom::element e, std::vector<std::uint64_t>& out,
                              const std::string& where) -> result<void> {
        dom::object o;
        if (!get(e, o)) return bad(where + ": expected an object");
        out.assign(pats.size(), 0);
        for (auto [k, v] : o) {
            std::uint64_t n = 0;
            if (!get(v, n)) return bad(where + "." + std::string(k) + ": expected a non-negative integer");
            if (auto it = ids.find(k); it != ids.end()) out[it->second] += n;
        }
        return {};
    };
    if (auto r = pattern_counts(totals["patterns"].value_unsafe(), c.patterns, "totals.patterns"); !r)
        return r.error();
    dom::object groups;
    if (!get(totals["by_group"], groups)) return bad("totals.by_group: expected an object");
    for (auto [g, v] : groups) {
        std::vector<std::uint64_t> per;
        if (auto r = pattern_counts(v, per, "totals.by_group"); !r) return r.error();
        c.by_group.emplace(std::string(g), std::move(per));
    }
    dom::object sources;
    if (!get(totals["by_source"], sources)) return bad("totals.by_source: expected an object");
    for (auto [k, v] : sources) {
        std::uint64_t n = 0;
        if (!get(v, n)) return bad("totals.by_source: expected non-negative integers");
        c.by_source[std::string(k)] = n;
    }
    dom::array templates;
    if (!get(root["templates"], templates)) return bad("templates: expected an array");
    std::size_t index = 0;
    for (dom::element t : templates) {
        const std::string where = "templates[" + std::to_string(index++) + "]";
        std::string_view text;
        std::uint64_t count = 0;
        if (!get(t["text"], text)) return bad(where + ".text: expected a string");
        if (!get(t["count"], count)) return bad(where + ".count: expected a non-negative integer");
        template_stats st;
        st.count = count;
        std::int64_t first_seen = 0;
        if (get(t["first_seen_ms"], first_seen)) {
            auto d = std::make_unique<template_details>();
            d->first_seen_ms = first_seen;
            get(t["last_seen_ms"], d->last_seen_ms);
            std::string_view sample;
            if (get(t["sample"], sample)) d->sample = std::string(sample);
            get(t["new"], d->is_new);
            dom::array arr;
            if (get(t["patterns"], arr))
                for (dom::element p : arr) {
                    std::string_view n;
                    if (get(p, n))
                        if (auto it = ids.find(n); it != ids.end()) d->patterns.push_back(it->second);
                }
            std::sort(d->patterns.begin(), d->patterns.end());
            if (get(t["groups"], arr))
                for (dom::element g : arr) {
                    dom::array pair;
                    std::string_view gname;
                    std::uint64_t n = 0;
                    if (get(g, pair) && pair.size() == 2 && get(pair.at(0).value_unsafe(), gname) &&
                        get(pair.at(1).value_unsafe(), n))
                        d->groups.emplace_back(std::string(gname), n);
                }
            if (get(t["previous"], arr))
                for (dom::element p : arr) {
                    std::string_view prev;
                    if (get(p, prev)) d->previous_texts.emplace_back(prev);
                }
            get(t["minute"], d->minute_seen);
            if (get(t["minutes"], arr)) {
                std::size_t k = 0;
                for (dom::element m : arr) {
                    std::uint64_t v = 0;
                    if (k < d->minutes.size() && get(m, v))
                        d->minutes[k] = static_cast<std::uint32_t>(std::min<std::uint64_t>(v, UINT32_MAX));
                    ++k;
                }
            }
            st.details = std::move(d);
        }
        c.templates.emplace(std::string(text), std::move(st));
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
