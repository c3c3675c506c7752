#include "faultline/core/match/pattern_set.hpp"

#include <hs.h>

#include <malloc.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <algorithm>
#include <new>
#include <set>

namespace faultline::core::match {

std::string_view class_name(pattern_class c) noexcept {
    switch (c) {
    case pattern_class::error:
        return "error";
    case pattern_class::warn:
        return "warn";
    case pattern_class::info:
        return "info";
    }
    return "error";
}

namespace {

bool parse_class(std::string_view s, pattern_class& out) {
    if (s == "error")
        out = pattern_class::error;
    else if (s == "warn")
        out = pattern_class::warn;
    else if (s == "info")
        out = pattern_class::info;
    else
        return false;
    return true;
}

} // namespace

result<std::vector<pattern>> parse_pattern_tsv(std::string_view text, std::string_view source) {
    std::vector<pattern> out;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        const std::string where = std::string(source) + ":" + std::to_string(line_no);
        const std::size_t t1 = line.find('\t');
        const std::size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
        if (t2 == std::string_view::npos || line.find('\t', t2 + 1) != std::string_view::npos)
            return make_error(errc::pattern, where + ": expected name<TAB>class<TAB>regex");
        pattern p;
        p.name = std::string(line.substr(0, t1));
        if (p.name.empty()) return make_error(errc::pattern, where + ": empty pattern name");
        const std::string_view cls = line.substr(t1 + 1, t2 - t1 - 1);
        if (!parse_class(cls, p.cls))
            return make_error(errc::pattern, where + ": pattern '" + p.name + "': class '" +
                                                 std::string(cls) + "' is not one of error, warn, info");
        std::string_view rx = line.substr(t2 + 1);
        if (rx.starts_with("(?i)")) {
            p.caseless = true;
            rx.remove_prefix(4);
        }
        p.regex = std::string(rx);
        p.origin = where;
        out.push_back(std::move(p));
    }
    return out;
}

result<std::shared_ptr<const pattern_set>> pattern_set::compile(std::vector<pattern> patterns) {
    std::shared_ptr<pattern_set> set(new pattern_set());
    std::set<std::string_view> names;
    for (const auto& p : patterns) {
        const std::string where = p.origin.empty() ? std::string() : " (" + p.origin + ")";
        if (p.name.empty()) return make_error(errc::pattern, "a pattern has an empty name" + where);
        if (!names.insert(p.name).second)
            return make_error(errc::pattern, "pattern '" + p.name + "'" + where + ": duplicate name");
        if (p.regex.empty())
            return make_error(errc::pattern, "pattern '" + p.name + "'" + where + ": empty regex");
        if (p.regex.find('\0') != std::string::npos)
            return make_error(errc::pattern,
                              "pattern '" + p.name + "'" + where + ": regex contains a NUL byte");
    }
    set->patterns_ = std::move(patterns);
    if (set->patterns_.empty()) return std::shared_ptr<const pattern_set>(std::move(set));

    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (std::size_t i = 0; i < set->patterns_.size(); ++i) {
        const auto& p = set->patterns_[i];
        exprs.push_back(p.regex.c_str());
        flags.push_back(HS_FLAG_SINGLEMATCH | (p.caseless ? HS_FLAG_CASELESS : 0u));
        ids.push_back(static_cast<unsigned>(i));
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                         HS_MODE_BLOCK, nullptr, &set->db_, &err) != HS_SUCCESS) {
        std::string msg = err && err->message ? err->message : "unknown error";
        const int idx = err ? err->expression : -1;
        hs_free_compile_error(err);
        if (idx >= 0 && static_cast<std::size_t>(idx) < set->patterns_.size()) {
            const auto& p = set->patterns_[static_cast<std::size_t>(idx)];
            const std::string where = p.origin.empty() ? std::string() : " (" + p.origin + ")";
            return make_error(errc::pattern, "pattern '" + p.name + "'" + where + ": regex rejected: " + msg);
        }
        return make_error(errc::pattern, "pattern set rejected: " + msg);
    }
    if (hs_alloc_scratch(set->db_, &set->prototype_scratch_) != HS_SUCCESS) throw std::bad_alloc();
    // The compiler's working memory (~9 MB for the default set, for a ~50 KB database) is free
    // now; hand it back to the system instead of keeping it resident in this thread's arena.
    malloc_trim(0);
    return std::shared_ptr<const pattern_set>(std::move(set));
}

result<std::shared_ptr<const pattern_set>> pattern_set::compile_cached(std::vector<pattern> patterns,
                                                                       const std::string& cache_dir) {
    if (cache_dir.empty() || patterns.empty()) return compile(std::move(patterns));
    // The key covers everything the database depends on: each regex, its flags and id, and the
    // Vectorscan build (a database from another version or platform is refused on load anyway).
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    const std::string_view version = hs_version();
    XXH3_64bits_update(st, version.data(), version.size());
    for (const auto& p : patterns) {
        const unsigned flags = HS_FLAG_SINGLEMATCH | (p.caseless ? HS_FLAG_CASELESS : 0u);
        XXH3_64bits_update(st, &flags, sizeof flags);
        const std::uint64_t n = p.regex.size();
        XXH3_64bits_update(st, &n, sizeof n);
        XXH3_64bits_update(st, p.regex.data(), p.regex.size());
    }
    const std::uint64_t key = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    char name[64];
    std::snprintf(name, sizeof name, "patterns-%016llx.hsdb", static_cast<unsigned long long>(key));
    const std::filesystem::path path = std::filesystem::path(cache_dir) / name;

    {
        std::ifstream in(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        hs_database_t* db = nullptr;
        if (!bytes.empty() && hs_deserialize_database(bytes.data(), bytes.size(), &db) == HS_SUCCESS) {
            // Same checks as compile() on names; the regexes are the ones the key was made of.
            std::shared_ptr<pattern_set> set(new pattern_set());
            std::set<std::string_view> names;
            for (const auto& p : patterns)
                if (p.name.empty() || !names.insert(p.name).second) {
                    hs_free_database(db);
                    return compile(std::move(patterns)); // let compile() report it
                }
            set->patterns_ = std::move(patterns);
            set->db_ = db;
            if (hs_alloc_scratch(set->db_, &set->prototype_scratch_) != HS_SUCCESS) throw std::bad_alloc();
            return std::shared_ptr<const pattern_set>(std::move(set));
        }
    }
    auto compiled = compile(std::move(patterns));
    if (!compiled) return compiled;
    char* bytes = nullptr;
    std::size_t length = 0;
    if (hs_serialize_database((*compiled)->db_, &bytes, &length) == HS_SUCCESS) {
        std::error_code ec;
        std::filesystem::create_directories(cache_dir, ec);
        // A name of its own per process: concurrent writers never interleave in one file.
        const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out.write(bytes, static_cast<std::streamsize>(length));
        }
        std::filesystem::rename(tmp, path, ec); // best effort: a cache
        std::free(bytes);
    }
    return compiled;
}

pattern_set::~pattern_set() {
    if (prototype_scratch_) hs_free_scratch(prototype_scratch_);
    if (db_) hs_free_database(db_);
}

matcher::matcher(std::shared_ptr<const pattern_set> set)
    : set_(std::move(set)) {
    if (set_->prototype_scratch_ && hs_clone_scratch(set_->prototype_scratch_, &scratch_) != HS_SUCCESS)
        throw std::bad_alloc();
    hits_.reserve(set_->size());
}

void matcher::reset(std::shared_ptr<const pattern_set> set) {
    hs_scratch* fresh = nullptr;
    if (set->prototype_scratch_ && hs_clone_scratch(set->prototype_scratch_, &fresh) != HS_SUCCESS)
        throw std::bad_alloc();
    if (scratch_) hs_free_scratch(scratch_);
    scratch_ = fresh;
    set_ = std::move(set);
    hits_.clear();
    hits_.reserve(set_->size());
}

matcher::~matcher() {
    if (scratch_) hs_free_scratch(scratch_);
}

std::span<const std::uint32_t> matcher::match(std::string_view message) {
    hits_.clear();
    if (!set_->db_) return {};
    auto on_match = [](unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) -> int {
        static_cast<std::vector<std::uint32_t>*>(ctx)->push_back(id);
        return 0;
    };
    hs_scan(set_->db_, message.empty() ? "" : message.data(), static_cast<unsigned>(message.size()), 0,
            scratch_, on_match, &hits_);
    if (hits_.size() > 1) std::sort(hits_.begin(), hits_.end());
    return hits_;
}

} // namespace faultline::core::match
