// Named error patterns compiled into one Vectorscan database (block mode, byte/ASCII semantics,
// HS_FLAG_SINGLEMATCH: a pattern is reported at most once per message).
#pragma once

#include "faultline/core/error.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct hs_database;
struct hs_scratch;

namespace faultline::core::match {

enum class pattern_class : std::uint8_t { error, warn, info };

std::string_view class_name(pattern_class c) noexcept;

struct pattern {
    std::string name;
    pattern_class cls = pattern_class::error;
    std::string regex; ///< without a leading "(?i)": that is `caseless`
    bool caseless = false;
    std::string description;
    std::string origin; ///< "file:line" where it was defined, for error messages
    bool operator==(const pattern&) const = default;
};

/// Parses the `name<TAB>class<TAB>regex` format of shared/bench/patterns.txt ('#' and blank
/// lines ignored). `source` names the file in error messages.
result<std::vector<pattern>> parse_pattern_tsv(std::string_view text, std::string_view source);

/// An immutable compiled pattern set, shared by all workers.
class pattern_set {
public:
    /// Compiles the patterns; a pattern Vectorscan rejects is an error naming the pattern, where
    /// it was defined and Vectorscan's reason.
    static result<std::shared_ptr<const pattern_set>> compile(std::vector<pattern> patterns);

    /// As compile(), with a cache of compiled databases in `cache_dir` (e.g. the state directory):
    /// a database compiled before for the same patterns, flags and Vectorscan build is loaded
    /// instead of compiled (a restart answers in milliseconds, not after tens of ms of compiling).
    /// A missing, stale or unreadable cache entry just means compiling; it is then (re)written.
    static result<std::shared_ptr<const pattern_set>> compile_cached(std::vector<pattern> patterns,
                                                                     const std::string& cache_dir);

    ~pattern_set();
    pattern_set(const pattern_set&) = delete;
    pattern_set& operator=(const pattern_set&) = delete;

    const std::vector<pattern>& patterns() const noexcept { return patterns_; }
    std::size_t size() const noexcept { return patterns_.size(); }
    bool is_error(std::size_t id) const noexcept { return patterns_[id].cls == pattern_class::error; }
    const hs_database* database() const noexcept { return db_; }

private:
    pattern_set() = default;
    std::vector<pattern> patterns_;
    hs_database* db_ = nullptr;
    hs_scratch* prototype_scratch_ = nullptr;
    friend class matcher;
};

/// Per-worker matcher (owns its Vectorscan scratch; not thread-safe).
class matcher {
public:
    explicit matcher(std::shared_ptr<const pattern_set> set);
    ~matcher();
    matcher(const matcher&) = delete;
    matcher& operator=(const matcher&) = delete;

    /// Switches to another pattern set (a configuration reload); not while matching.
    void reset(std::shared_ptr<const pattern_set> set);

    /// Ids (indexes into patterns()) of the patterns found in `message`, each once, ascending.
    std::span<const std::uint32_t> match(std::string_view message);

    const pattern_set& set() const noexcept { return *set_; }
    const std::shared_ptr<const pattern_set>& shared_set() const noexcept { return set_; }

private:
    std::shared_ptr<const pattern_set> set_;
    hs_scratch* scratch_ = nullptr;
    std::vector<std::uint32_t> hits_;
};

} // namespace faultline::core::match
