#include "faultline/core/mine/drain.hpp"

#define XXH_INLINE_ALL // the edge hash: a few lookups per mined line, of short tokens
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <utility>

namespace faultline::core::mine {
namespace {

bool has_digit(std::string_view s) noexcept {
    for (const char ch : s)
        if (ch >= '0' && ch <= '9') return true;
    return false;
}

// The masker's placeholders (and Drain's own wildcard): what stands for a variable.
constexpr std::string_view placeholders[] = {"<*>", "<NUM>", "<IP>", "<HEX>", "<ID>", "<UUID>"};

// A plain word ("client", "SPP.", "SOCKS<NUM>"): starts with a letter, and besides trailing
// punctuation holds no '.', ':', '/', '=', '@' or quote (not a host, path, key=value, address or
// quoted value).
bool word_like(std::string_view t) noexcept {
    if (t.empty() || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) return false;
    while (t.size() > 1 && (t.back() == '.' || t.back() == ',' || t.back() == ';' || t.back() == ':'))
        t.remove_suffix(1);
    return t.find_first_of(".:/=@'\"") == std::string_view::npos;
}

// "user" (any case, with trailing punctuation): the word after it is a user name, a value
// ("session closed for user cyrus", "Invalid user admin from ..."), not a keyword.
bool names_a_user(std::string_view t) noexcept {
    while (!t.empty() && (t.back() == ':' || t.back() == ','))
        t.remove_suffix(1);
    if (t.size() != 4) return false;
    const auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); };
    return lower(t[0]) == 'u' && lower(t[1]) == 's' && lower(t[2]) == 'e' && lower(t[3]) == 'r';
}

// A token without the opening brackets before it: "(run-parts" is the word "run-parts".
std::string_view unbracketed(std::string_view t) noexcept {
    while (t.size() > 1 && (t.front() == '(' || t.front() == '[' || t.front() == '{'))
        t.remove_prefix(1);
    return t;
}

} // namespace

bool is_variable(std::string_view s) noexcept {
    if (s.empty()) return false;
    if (has_digit(s)) return true;
    // Names of days and months: parts of a timestamp ("Sun Jul  3 10:05:25 2005").
    if (s.size() == 3 || (s.size() == 4 && s[3] == ',')) {
        static constexpr std::string_view names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                                                     "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                     "Aug", "Sep", "Oct", "Nov", "Dec"};
        for (const std::string_view n : names)
            if (s.substr(0, 3) == n) return true;
    }
    // A quoted value ('alice', "orders"), or key=value ("user=root", "host='api.internal',").
    if (s.front() == '\'' || s.front() == '"') {
        std::string_view q = s;
        while (q.size() > 2 && (q.back() == ',' || q.back() == '.' || q.back() == ';' || q.back() == ':'))
            q.remove_suffix(1);
        if (q.size() >= 2 && q.back() == q.front()) return true;
    }
    if (const std::size_t eq = s.find('='); eq != std::string_view::npos && eq > 0 && eq + 1 < s.size())
        return true;
    // A path, or a dotted name (host, bundle or class: "proxy.cse.cuhk.edu.hk", "com.apple.x").
    if (s.size() > 1 && s.front() == '/') return true;
    std::size_t dots = 0;
    for (std::size_t i = 1; i + 1 < s.size(); ++i)
        dots += s[i] == '.' && s[i + 1] != '.' && s[i - 1] != '.';
    if (dots >= 2) return true;
    for (std::size_t i = s.find('<'); i != std::string_view::npos; i = s.find('<', i + 1))
        for (const std::string_view p : placeholders)
            if (s.substr(i, p.size()) == p) return true;
    return false;
}

namespace {

bool same(const std::string& a, std::string_view b) noexcept {
    return a.size() == b.size() && (b.empty() || std::memcmp(a.data(), b.data(), b.size()) == 0);
}

bool is_wildcard(std::string_view a) noexcept {
    return a == wildcard;
}

// A cheap fingerprint of a non-empty token (length, first, middle and last bytes), never 0: equal
// tokens have equal signatures, so most different tokens are told apart without reading them.
std::uint32_t signature(std::string_view t) noexcept {
    const std::size_t n = t.size();
    const auto byte = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(t[i]));
    };
    return (static_cast<std::uint32_t>(std::min<std::size_t>(n, 255)) << 24) | (byte(0) << 16) |
           (byte(n / 2) << 8) | byte(n - 1);
}

// In a template: 0 for "<*>", variable_sig for a token holding a variable (it counts as a variable
// position, never as an equal token, in the similarity), else the token's signature.
constexpr std::uint32_t variable_sig = 1; // signature() of a non-empty token is >= 1 << 24

std::uint32_t template_signature(std::string_view t) noexcept {
    return is_wildcard(t) ? 0 : is_variable(t) ? variable_sig : signature(t);
}

void join(const std::vector<std::string>& tokens, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i != 0) out += ' ';
        out += tokens[i];
    }
}

} // namespace

std::size_t drain::edge_hash::operator()(const edge_view& e) const noexcept {
    // XXH3 seeded with the parent: one pass, and several times faster than std::hash's on the
    // short tokens of a path (nothing depends on the map's order).
    return static_cast<std::size_t>(XXH3_64bits_withSeed(e.token.data(), e.token.size(), e.parent));
}

drain::drain(drain_options options)
    : options_(options) {
    if (std::isnan(options_.similarity)) throw std::invalid_argument("drain: similarity is not a number");
    if (!(options_.variable_weight >= 0 && options_.variable_weight <= 1))
        throw std::invalid_argument("drain: variable_weight must be in [0, 1]");
    if (options_.depth < 3) throw std::invalid_argument("drain: depth must be at least 3");
    if (options_.max_children == 0) throw std::invalid_argument("drain: max_children must be positive");
    if (options_.max_clusters == 0) throw std::invalid_argument("drain: max_clusters must be positive");
    if (options_.max_tokens == 0) throw std::invalid_argument("drain: max_tokens must be positive");
    prefix_tokens_ = options_.depth - 2;
    tokens_.reserve(std::min<std::size_t>(options_.max_tokens, 256));
    sigs_.reserve(tokens_.capacity());
}

// --- tokens -------------------------------------------------------------------------------------

void drain::split(std::string_view line) {
    tokens_.clear();
    const std::size_t n = line.size();
    std::size_t i = 0;
    const char* p = line.data();
    while (i < n && tokens_.size() < options_.max_tokens) {
        while (i < n && p[i] == ' ')
            ++i;
        if (i == n) break;
        const void* space = std::memchr(p + i, ' ', n - i);
        const std::size_t j = space ? static_cast<std::size_t>(static_cast<const char*>(space) - p) : n;
        tokens_.push_back(line.substr(i, j - i));
        i = j;
    }
    sigs_.clear();
    for (const std::string_view t : tokens_)
        sigs_.push_back(signature(t));
}

// --- tree ---------------------------------------------------------------------------------------

// Drain3 tree_search: the token-count node, then one node per leading token (exact token, else
// the "<*>" child), never more than depth - 3 tokens nor the last token.
std::uint32_t drain::search_leaf() const {
    const std::size_t n = tokens_.size();
    if (n >= by_length_.size() || by_length_[n] == npos) return npos;
    std::uint32_t cur = by_length_[n];
    std::size_t depth = 1;
    for (const std::string_view token : tokens_) {
        if (depth == prefix_tokens_ || depth == n) break;
        const auto it = edges_.find(edge_view{cur, token});
        if (it != edges_.end()) {
            cur = it->second;
        } else {
            cur = nodes_[cur].wild;
            if (cur == npos) return npos;
        }
        ++depth;
    }
    return cur;
}

std::uint32_t drain::new_node(std::uint32_t parent, std::uint32_t length) {
    std::uint32_t n;
    if (!free_nodes_.empty()) {
        n = free_nodes_.back();
        free_nodes_.pop_back();
    } else {
        n = static_cast<std::uint32_t>(nodes_.size());
        nodes_.emplace_back();
    }
    node& x = nodes_[n];
    x.parent = parent;
    x.wild = npos;
    x.children = 0;
    x.length = length;
    x.is_wild = false;
    x.key.clear();
    x.clusters.clear();
    if (parent != npos) ++nodes_[parent].children;
    return n;
}

// Drain3 add_seq_to_prefix_tree's step for one token: the existing child, else a new child while
// the node has room, else the "<*>" child (always for a token with a digit).
std::uint32_t drain::child(std::uint32_t parent, std::string_view token) {
    const bool wild_token = token == wildcard;
    if (wild_token) {
        if (nodes_[parent].wild != npos) return nodes_[parent].wild;
    } else if (const auto it = edges_.find(edge_view{parent, token}); it != edges_.end()) {
        return it->second;
    }
    const std::size_t children = nodes_[parent].children;
    const std::size_t limit = options_.max_children;
    bool make_wild;
    if (is_variable(token)) {
        if (nodes_[parent].wild != npos) return nodes_[parent].wild;
        make_wild = true;
    } else if (nodes_[parent].wild != npos) {
        if (children >= limit) return nodes_[parent].wild;
        make_wild = false;
    } else {
        // Drain3 keeps the last slot of a node for its "<*>" child.
        make_wild = wild_token || children + 1 >= limit;
    }
    const std::uint32_t len = nodes_[parent].length;
    const std::uint32_t n = new_node(parent, len);
    if (make_wild) {
        nodes_[n].is_wild = true;
        nodes_[parent].wild = n;
    } else {
        nodes_[n].key.assign(token);
        edges_.emplace(edge_key{parent, std::string(token)}, n);
    }
    return n;
}

std::uint32_t drain::insert_path() {
    const std::size_t n = tokens_.size();
    if (n >= by_length_.size()) by_length_.resize(n + 1, npos);
    if (by_length_[n] == npos) by_length_[n] = new_node(npos, static_cast<std::uint32_t>(n));
    std::uint32_t cur = by_length_[n];
    std::size_t depth = 1;
    for (const std::string_view token : tokens_) {
        if (depth == prefix_tokens_ || depth == n) break;
        cur = child(cur, token);
        ++depth;
    }
    return cur;
}

// Removes `n` and then its ancestors while they hold neither clusters nor children.
void drain::remove_node(std::uint32_t n) {
    while (n != npos) {
        node& x = nodes_[n];
        if (!x.clusters.empty() || x.children != 0) return;
        const std::uint32_t parent = x.parent;
        if (parent == npos) {
            by_length_[x.length] = npos;
        } else {
            node& p = nodes_[parent];
            if (x.is_wild) {
                p.wild = npos;
            } else {
                const auto it = edges_.find(edge_view{parent, x.key});
                if (it != edges_.end()) edges_.erase(it);
            }
            --p.children;
        }
        free_nodes_.push_back(n);
        n = parent;
    }
}

// --- matching -----------------------------------------------------------------------------------

// Drain3 fast_match, with two changes measured on Loghub-2k (loadtest/mining_bench.py):
// - similarity = (equal tokens + variable_weight x variable positions) / tokens, where a variable
//   position is the template's "<*>" or a token of it holding a variable (is_variable); Drain3
//   counts "<*>" as 0 and masker placeholders as equal tokens (1);
// - a settled template (one that has taken settled_after events or more) does not take a line
//   that differs from it in a plain word where it has a constant token, nor one that has another
//   constant where the template has a plain word (a word may follow an opening bracket):
//   "client WindowsUpdateAgent." and "client SPP." are two events, and so are "CMD (run-parts
//   ...)" and "CMD (/projects/...)", however similar the rest. The word after "user" is a value,
//   not a keyword: "session closed for user cyrus" and "... user news" are one event.
// The most similar candidate wins, ties to the one with more variable positions, then to the
// oldest (Drain3 >= 0.9.7); none when the best similarity is below the threshold. A candidate is
// abandoned as soon as it cannot reach the threshold or is ruled out.
std::uint32_t drain::fast_match(std::uint32_t leaf) const {
    const std::vector<std::uint32_t>& ids = nodes_[leaf].clusters;
    if (ids.empty()) return npos;
    const std::size_t n = tokens_.size();
    if (n == 0) return ids.front();
    const double th = options_.similarity;
    const double w = options_.variable_weight;
    const double dn = static_cast<double>(n);
    std::uint32_t best = npos;
    double best_sim = 0;
    std::size_t best_params = 0;
    for (const std::uint32_t id : ids) { // oldest first, as Drain3's list
        const slot& candidate = slots_[id];
        const std::uint32_t* sig = candidate.sig.data();
        const std::string* t = candidate.c.tokens.data();
        const bool settled = options_.settled_after != 0 && candidate.members >= options_.settled_after;
        double score = 0; // equal + w x params
        std::size_t params = 0;
        std::size_t i = 0;
        for (; i < n; ++i) {
            if (sig[i] <= variable_sig) {
                ++params;
                score += w;
            } else if (sig[i] == sigs_[i] && same(t[i], tokens_[i])) {
                score += 1;
            } else if (settled && !(i > 0 && names_a_user(tokens_[i - 1])) &&
                       (word_like(unbracketed(tokens_[i])) ||
                        (word_like(unbracketed(t[i])) && !is_variable(tokens_[i])))) {
                break; // a plain word where the settled template has another constant, or the reverse
            }
            if ((score + static_cast<double>(n - i - 1)) / dn < th) break;
        }
        if (i < n) continue;
        const double sim = score / dn;
        if (best == npos || sim > best_sim || (sim == best_sim && params > best_params)) {
            best = id;
            best_sim = sim;
            best_params = params;
        }
    }
    return best;
}

// --- clusters and LRU ---------------------------------------------------------------------------

void drain::unlink(std::uint32_t s) {
    slot& x = slots_[s];
    if (x.prev != npos)
        slots_[x.prev].next = x.next;
    else
        lru_head_ = x.next;
    if (x.next != npos)
        slots_[x.next].prev = x.prev;
    else
        lru_tail_ = x.prev;
    x.prev = x.next = npos;
}

void drain::push_front(std::uint32_t s) {
    slot& x = slots_[s];
    x.prev = npos;
    x.next = lru_head_;
    if (lru_head_ != npos) slots_[lru_head_].prev = s;
    lru_head_ = s;
    if (lru_tail_ == npos) lru_tail_ = s;
}

void drain::touch(std::uint32_t s) {
    if (lru_head_ != s) {
        unlink(s);
        push_front(s);
    }
    slots_[s].c.last_used = ++clock_;
}

void drain::evict_lru() {
    const std::uint32_t s = lru_tail_;
    if (s == npos) return;
    unlink(s);
    slot& x = slots_[s];
    if (on_evict_) on_evict_(x.c);
    std::vector<std::uint32_t>& in_leaf = nodes_[x.leaf].clusters;
    in_leaf.erase(std::find(in_leaf.begin(), in_leaf.end(), s));
    remove_node(x.leaf);
    x.live = false;
    x.leaf = npos;
    x.c.previous_texts.clear();
    x.c.stats = aggregate::template_stats{};
    free_slots_.push_back(s);
    --live_;
    ++evicted_;
}

std::uint32_t drain::create_cluster() {
    if (live_ >= options_.max_clusters) evict_lru();
    const std::uint32_t leaf = insert_path();
    std::uint32_t s;
    if (!free_slots_.empty()) {
        s = free_slots_.back();
        free_slots_.pop_back();
    } else {
        s = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    slot& x = slots_[s];
    cluster& c = x.c;
    c.id = ++next_id_;
    c.tokens.resize(tokens_.size());
    x.sig.resize(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
        c.tokens[i].assign(tokens_[i]);
        x.sig[i] = template_signature(tokens_[i]);
    }
    join(c.tokens, c.text);
    c.previous_texts.clear();
    c.stats = aggregate::template_stats{};
    x.leaf = leaf;
    x.live = true;
    x.members = 1;
    nodes_[leaf].clusters.push_back(s);
    push_front(s);
    c.last_used = ++clock_;
    ++live_;
    return s;
}

drain::added drain::add(std::string_view masked_line, std::uint64_t events) {
    split(masked_line);
    const std::uint32_t leaf = search_leaf();
    const std::uint32_t m = leaf == npos ? npos : fast_match(leaf);
    if (m == npos) {
        const std::uint32_t s = create_cluster();
        slots_[s].members = events;
        return {&slots_[s].c, true, false};
    }
    slot& x = slots_[m];
    cluster& c = x.c;
    bool changed = false;
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
        std::string& t = c.tokens[i];
        if (x.sig[i] == 0) continue;
        if ((x.sig[i] == sigs_[i] || x.sig[i] == variable_sig) && same(t, tokens_[i])) continue;
        if (!changed) {
            changed = true;
            if (c.previous_texts.size() >= cluster::max_previous_texts)
                c.previous_texts.erase(c.previous_texts.begin());
            c.previous_texts.push_back(c.text);
        }
        t.assign(wildcard);
        x.sig[i] = 0;
    }
    if (changed) join(c.tokens, c.text);
    touch(m);
    x.members += events;
    return {&c, false, changed};
}

cluster* drain::restore(std::vector<std::string> tokens, std::vector<std::string> previous_texts,
                        std::uint64_t events) {
    std::erase_if(tokens, [](const std::string& t) { return t.empty(); });
    if (tokens.size() > options_.max_tokens) tokens.resize(options_.max_tokens);
    tokens_.clear();
    for (const std::string& t : tokens)
        tokens_.push_back(t);
    if (previous_texts.size() > cluster::max_previous_texts)
        previous_texts.erase(previous_texts.begin(),
                             previous_texts.end() - static_cast<std::ptrdiff_t>(cluster::max_previous_texts));

    std::uint32_t s = npos;
    if (tokens_.empty()) { // the one cluster of empty lines
        const std::uint32_t leaf = search_leaf();
        if (leaf != npos && !nodes_[leaf].clusters.empty()) {
            s = nodes_[leaf].clusters.back();
            touch(s);
        }
    }
    if (s == npos) {
        s = create_cluster();
        slots_[s].members = 0;
    }
    slots_[s].members += std::max<std::uint64_t>(1, events);
    tokens_.clear(); // views into `tokens`, which dies here
    cluster& c = slots_[s].c;
    c.previous_texts = std::move(previous_texts);
    return &c;
}

} // namespace faultline::core::mine
