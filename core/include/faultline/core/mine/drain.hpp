// Drain-style template mining of masked messages (He et al., "Drain: An Online Log Parsing
// Approach with Fixed Depth Tree"; behaviour of logpai/Drain3's drain.py): lines are routed by
// their token count, then by their leading tokens (a token holding a variable routes as "<*>"),
// to a leaf whose clusters are compared with the line; the most similar one absorbs it,
// positions that differ becoming "<*>". Two changes to Drain's similarity, measured on Loghub-2k
// (loadtest/mining_bench.py), are described at drain_options. Bounded: at most `max_clusters` clusters (least
// recently used evicted, their emptied tree nodes removed) and `max_tokens` tokens per line.
//
// Single-threaded: the caller shards and locks.
#pragma once

#include "faultline/core/aggregate/counts.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace faultline::core::mine {

struct drain_options {
    /// Drain3's depth (>= 3): root, token-count node, leading-token nodes, leaf. As in Drain3's
    /// tree_search / add_seq_to_prefix_tree, a line is routed by its first depth - 3 tokens
    /// (never its last token): depth 3 keeps the clusters under the token-count node, 4 routes by
    /// the first token, the default 5 by the first two.
    std::size_t depth = 5;
    /// sim_th: a line joins the most similar template of its leaf when (equal tokens +
    /// variable_weight x the template's variable positions) / tokens reaches it. A variable
    /// position is a "<*>" or a token holding a variable (a digit or masker placeholder, a path, a
    /// dotted name, a day or month name): Drain3 counts "<*>" as 0 and a placeholder as 1.
    double similarity = 0.55;
    double variable_weight = 0.5; ///< in [0, 1]
    /// A template that has taken this many events is settled: it no longer takes a line with a
    /// different plain word (a word without digits, dots, slashes, '=' or '@') where it has a
    /// constant token. 0: never settled (Drain3).
    std::uint64_t settled_after = 2;
    std::size_t max_children = 100;    ///< per internal node; beyond it tokens go to the "<*>" child
    std::size_t max_clusters = 10'000; ///< least recently used clusters are evicted beyond it
    std::size_t max_tokens = 128;      ///< tokens of a line used for clustering (the rest are dropped)
    bool operator==(const drain_options&) const = default;
};

inline constexpr std::string_view wildcard = "<*>";

/// A token holding a variable part: a digit, or a masker placeholder in it ("<NUM>",
/// "clients<NUM>.google.com:<NUM>"). Such a token never routes a line: it goes to "<*>".
bool is_variable(std::string_view token) noexcept;

struct cluster {
    std::uint64_t id = 0;                    ///< unique in its drain: 1, 2, ... in creation order
    std::vector<std::string> tokens;         ///< the template's tokens ("<*>" where lines differ)
    std::string text;                        ///< tokens joined by single spaces
    std::vector<std::string> previous_texts; ///< earlier texts of this cluster, oldest first, at most 8
    std::uint64_t last_used = 0;             ///< LRU clock value of its last add()/restore()
    aggregate::template_stats stats;         ///< the caller's counters; the tree only stores them

    static constexpr std::size_t max_previous_texts = 8;
};

class drain {
public:
    /// Throws std::invalid_argument when depth < 3, similarity is NaN, variable_weight is not in
    /// [0, 1], or max_children, max_clusters or max_tokens is 0.
    explicit drain(drain_options options = {});

    struct added {
        cluster* c;       ///< valid until the next add()/restore()
        bool created;     ///< a new cluster
        bool generalized; ///< an existing cluster's text changed (the old text is in previous_texts)
    };

    /// Adds one masked line, standing for `events` events: tokens are split on ' ' (empty tokens
    /// are skipped; the masker collapsed whitespace already), at most max_tokens of them are
    /// used. An empty line is one cluster with an empty text.
    added add(std::string_view masked_line, std::uint64_t events = 1);

    /// Re-creates a cluster from a snapshot (tokens as saved, cut to max_tokens; previous_texts
    /// keeps its last 8); returns it (valid until the next add()/restore()). Subject to the cap:
    /// may evict the least recently used cluster. It becomes the most recently used.
    /// `events`: how many it had taken (for settled_after).
    cluster* restore(std::vector<std::string> tokens, std::vector<std::string> previous_texts,
                     std::uint64_t events = 1);

    std::size_t size() const noexcept { return live_; }
    std::uint64_t evicted() const noexcept { return evicted_; }
    /// Nodes of the prefix tree (token-count nodes included): bounded by the live clusters' paths.
    std::size_t node_count() const noexcept { return nodes_.size() - free_nodes_.size(); }

    /// f(const cluster&) for every cluster, in no particular order.
    /// f(cluster&) for every cluster (e.g. to remap pattern ids in its stats).
    template <class F>
    void for_each_mutable(F&& f) {
        for (slot& s : slots_)
            if (s.live) f(s.c);
    }

    template <class F>
    void for_each(F&& f) const {
        for (const slot& s : slots_)
            if (s.live) f(s.c);
    }

    const drain_options& options() const noexcept { return options_; }

    /// Called with each cluster the cap evicts, before it goes.
    void on_evict(std::function<void(const cluster&)> f) { on_evict_ = std::move(f); }

private:
    static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

    struct slot {
        cluster c;
        std::vector<std::uint32_t> sig; // per token: signature(token), 0 for "<*>"
        std::uint32_t leaf = npos;      // node holding this cluster
        std::uint32_t prev = npos;      // LRU list: towards the most recently used
        std::uint32_t next = npos;      // towards the least recently used
        bool live = false;
        std::uint64_t members = 0; // events it has taken (for settled_after)
    };

    struct node {
        std::uint32_t parent = npos; // npos: a token-count node (child of the root)
        std::uint32_t wild = npos;   // the "<*>" child
        std::uint32_t children = 0;  // children, the "<*>" child included (Drain3's len(key_to_child_node))
        std::uint32_t length = 0;    // token count of the lines below it
        bool is_wild = false;        // it is its parent's "<*>" child
        std::string key;             // its token under its parent (not for "<*>" or token-count nodes)
        std::vector<std::uint32_t> clusters; // leaf: cluster slots, oldest first
    };

    struct edge_view {
        std::uint32_t parent;
        std::string_view token;
    };
    struct edge_key {
        std::uint32_t parent;
        std::string token;
    };
    struct edge_hash {
        using is_transparent = void;
        std::size_t operator()(const edge_view& e) const noexcept;
        std::size_t operator()(const edge_key& e) const noexcept {
            return (*this)(edge_view{e.parent, e.token});
        }
    };
    struct edge_eq {
        using is_transparent = void;
        static bool eq(const edge_view& a, const edge_view& b) noexcept {
            return a.parent == b.parent && a.token == b.token;
        }
        bool operator()(const edge_key& a, const edge_key& b) const noexcept {
            return eq({a.parent, a.token}, {b.parent, b.token});
        }
        bool operator()(const edge_view& a, const edge_key& b) const noexcept {
            return eq(a, {b.parent, b.token});
        }
        bool operator()(const edge_key& a, const edge_view& b) const noexcept {
            return eq({a.parent, a.token}, b);
        }
        bool operator()(const edge_view& a, const edge_view& b) const noexcept { return eq(a, b); }
    };

    void split(std::string_view line);
    std::uint32_t search_leaf() const;
    std::uint32_t fast_match(std::uint32_t leaf) const;
    std::uint32_t insert_path(); // leaf for tokens_ (creates the path)
    std::uint32_t child(std::uint32_t parent, std::string_view token);
    std::uint32_t new_node(std::uint32_t parent, std::uint32_t length);
    void remove_node(std::uint32_t n);
    std::uint32_t create_cluster(); // from tokens_, after evicting if full
    void evict_lru();
    void touch(std::uint32_t s);
    void unlink(std::uint32_t s);
    void push_front(std::uint32_t s);

    drain_options options_;
    std::size_t prefix_tokens_; // Drain3's self.depth: depth - 2

    std::vector<slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::size_t live_ = 0;
    std::uint64_t evicted_ = 0;
    std::uint64_t clock_ = 0;
    std::uint32_t lru_head_ = npos; // most recently used
    std::uint32_t lru_tail_ = npos; // least recently used
    std::uint64_t next_id_ = 0;

    std::vector<node> nodes_;
    std::vector<std::uint32_t> free_nodes_;
    std::vector<std::uint32_t> by_length_; // token count -> token-count node (npos: none)
    std::unordered_map<edge_key, std::uint32_t, edge_hash, edge_eq> edges_;

    std::vector<std::string_view> tokens_; // the line being added (scratch)
    std::vector<std::uint32_t> sigs_;      // their signatures (scratch)
    std::function<void(const cluster&)> on_evict_;
};

} // namespace faultline::core::mine
