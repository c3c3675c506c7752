// The state file is untrusted input: every field of a saved document is removed, and every value
// replaced by one of another type, in turn; each damaged document is refused with a message
// naming the field (the service then keeps the file aside and starts fresh), never a crash.
#include "../support/helpers.hpp"

#include "faultline/core/aggregate/state.hpp"

#include <simdjson.h>

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

namespace {

using namespace faultline;
namespace dom = simdjson::dom;

std::shared_ptr<const core::match::pattern_set> patterns() {
    return test::compile_patterns("timeout\terror\ttimed out\nrefused\terror\tconnection refused\n");
}

/// A state with every kind of field: totals, per-group and per-source counts, a template with
/// details (samples, groups, patterns, previous texts, minutes) and one without.
std::string saved_state(const core::match::pattern_set& set) {
    core::aggregate::counts c(set.size());
    c.documents = 3;
    c.events = 42;
    c.control_messages = 1;
    c.templates_evicted = 2;
    c.patterns[0] = 5;
    c.patterns[1] = 7;
    c.by_group["/aws/lambda/a"] = {5, 0};
    c.by_group["/aws/lambda/b"] = {0, 7};
    c.by_source["firehose"] = 40;
    c.by_source["webhook:default"] = 2;
    core::aggregate::template_stats st;
    st.count = 12;
    st.details = std::make_unique<core::aggregate::template_details>();
    st.details->first_seen_ms = 1700000000000;
    st.details->last_seen_ms = 1700000060000;
    st.details->sample = "Task timed out after 3.00 seconds";
    st.details->patterns = {0};
    st.details->groups = {{"/aws/lambda/a", 12}};
    st.details->previous_texts = {"Task timed out after 3.00 seconds"};
    st.details->is_new = true;
    st.details->minute_seen = 28333334;
    st.details->minutes[3] = 12;
    c.templates.emplace("Task timed out after <NUM> seconds", std::move(st));
    core::aggregate::template_stats plain;
    plain.count = 1;
    c.templates.emplace("connection refused", std::move(plain));
    return core::aggregate::serialize_state(c, set, 1700000120000);
}

/// Writes `e` back as JSON, with the value at `target` (a path like "totals.patterns") removed
/// or replaced by `replacement`.
void write(dom::element e, const std::string& path, const std::string& target, const std::string* replacement,
           std::string& out) {
    switch (e.type()) {
    case dom::element_type::OBJECT: {
        out += '{';
        bool first = true;
        for (auto [k, v] : dom::object(e)) {
            const std::string p = path.empty() ? std::string(k) : path + "." + std::string(k);
            if (p == target && !replacement) continue;
            if (!first) out += ',';
            first = false;
            out += '"' + std::string(k) + "\":";
            if (p == target)
                out += *replacement;
            else
                write(v, p, target, replacement, out);
        }
        out += '}';
        break;
    }
    case dom::element_type::ARRAY: {
        out += '[';
        std::size_t i = 0;
        bool first = true;
        for (dom::element v : dom::array(e)) {
            const std::string p = path + "[" + std::to_string(i++) + "]";
            if (p == target && !replacement) continue;
            if (!first) out += ',';
            first = false;
            if (p == target)
                out += *replacement;
            else
                write(v, p, target, replacement, out);
        }
        out += ']';
        break;
    }
    default:
        out += simdjson::minify(e);
    }
}

/// Every path in the document, with whether its value is a string.
void paths(dom::element e, const std::string& path,
           std::vector<std::pair<std::string, dom::element_type>>& out) {
    if (!path.empty()) out.emplace_back(path, e.type());
    if (e.type() == dom::element_type::OBJECT)
        for (auto [k, v] : dom::object(e))
            paths(v, path.empty() ? std::string(k) : path + "." + std::string(k), out);
    else if (e.type() == dom::element_type::ARRAY) {
        std::size_t i = 0;
        for (dom::element v : dom::array(e))
            paths(v, path + "[" + std::to_string(i++) + "]", out);
    }
}

/// Members of these objects are entries of a map (names of patterns, groups, sources): removing
/// one leaves a valid document.
bool is_map_entry(const std::string& path) {
    // totals.by_group.G is an entry, and totals.by_group.G.P an entry of G's map.
    for (const char* map : {"totals.patterns.", "totals.by_group.", "totals.by_source."})
        if (path.starts_with(map)) return true;
    return false;
}

} // namespace

TEST_CASE("state: a saved document round-trips") {
    const auto set = patterns();
    const std::string doc = saved_state(*set);
    auto parsed = core::aggregate::parse_state(doc, *set);
    REQUIRE(parsed.has_value());
    CHECK(parsed->events == 42);
    CHECK(parsed->templates.size() == 2);
    // Written again and read back: the same counts and templates (maps have no order).
    auto again = core::aggregate::parse_state(core::aggregate::serialize_state(*parsed, *set, 1), *set);
    REQUIRE(again.has_value());
    CHECK(again->patterns == std::vector<std::uint64_t>{5, 7});
    CHECK(again->by_source.at("webhook:default") == 2);
    CHECK(again->by_group.at("/aws/lambda/b") == std::vector<std::uint64_t>{0, 7});
    const auto& t = again->templates.at("Task timed out after <NUM> seconds");
    CHECK(t.count == 12);
    REQUIRE(t.details);
    CHECK(t.details->is_new);
    CHECK(t.details->minutes[3] == 12);
    CHECK(t.details->previous_texts == std::vector<std::string>{"Task timed out after 3.00 seconds"});
    CHECK_FALSE(again->templates.at("connection refused").details);
}

TEST_CASE("state: every field removed, and every value of the wrong type, is refused by name") {
    const auto set = patterns();
    const std::string doc = saved_state(*set);
    dom::parser parser;
    dom::element root = parser.parse(doc).value();
    std::vector<std::pair<std::string, dom::element_type>> all;
    paths(root, "", all);
    REQUIRE(all.size() > 40);
    std::size_t removed_refused = 0, retyped_refused = 0;
    for (const auto& [path, type] : all) {
        const auto& path_shown = path; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(path_shown);
        // Removed.
        {
            std::string damaged;
            write(root, "", path, nullptr, damaged);
            const auto r = core::aggregate::parse_state(damaged, *set);
            const bool optional_entry =
                is_map_entry(path) || path.find(".patterns[") != std::string::npos ||
                path.find(".previous[") != std::string::npos || path.find(".minutes[") != std::string::npos ||
                (path.find(".groups[") != std::string::npos && path.find("][") == std::string::npos) ||
                (path.starts_with("templates[") && path.find('.') == std::string::npos);
            if (!optional_entry) {
                CHECK_FALSE(r.has_value());
                if (!r) {
                    CHECK(r.error().message.starts_with("state file: "));
                    ++removed_refused;
                }
            }
        }
        // Replaced by a value of another type.
        {
            const std::string other = type == dom::element_type::STRING ? "17" : "\"text\"";
            if (path == "format") continue; // a string either way: checked by value below
            std::string damaged;
            write(root, "", path, &other, damaged);
            const auto r = core::aggregate::parse_state(damaged, *set);
            CHECK_FALSE(r.has_value());
            if (!r) ++retyped_refused;
        }
    }
    MESSAGE(all.size() << " paths; " << removed_refused << " removals and " << retyped_refused
                       << " type changes refused");
    // Shapes that are not a state document at all.
    for (const char* bad : {"", "[]", "null", "{}", "{\"format\":\"faultline-state\"}",
                            "{\"format\":\"faultline-state\",\"version\":2}", "{\"format\":7}",
                            "{\"format\":\"faultline-state\",\"version\":1,\"saved_ms\":0,\"totals\":[]}"}) {
        CAPTURE(bad);
        CHECK_FALSE(core::aggregate::parse_state(bad, *set).has_value());
    }
}

TEST_CASE("state: values out of the ranges the engine keeps are refused") {
    const auto set = patterns();
    const std::string doc = saved_state(*set);
    auto damaged = [&](std::string_view from, std::string_view to) {
        std::string d = doc;
        const auto at = d.find(from);
        REQUIRE(at != std::string::npos);
        d.replace(at, from.size(), to);
        return core::aggregate::parse_state(d, *set);
    };
    CHECK_FALSE(damaged("\"events\":42", "\"events\":-42").has_value());
    // Found by the state fuzz target: a negative minute indexed the per-minute counts at -5.
    CHECK_FALSE(damaged("\"minute\":28333334", "\"minute\":-5").has_value());
    CHECK_FALSE(damaged("\"minute\":28333334", "\"minute\":9223372036854775807").has_value());
    CHECK_FALSE(damaged("\"first_seen_ms\":1700000000000", "\"first_seen_ms\":-1").has_value());
    CHECK_FALSE(damaged("\"events\":42", "\"events\":4.2").has_value());
    CHECK_FALSE(damaged("\"sample\":\"Task", "\"sample\":\"" + std::string(600, 's')).has_value());
    CHECK_FALSE(
        damaged("\"minutes\":[", "\"minutes\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,").has_value());
    const auto r = damaged("\"count\":12", "\"count\":\"12\"");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.starts_with("state file: templates["));
    CHECK(r.error().message.ends_with("].count: expected a non-negative integer"));
}

TEST_CASE("state: acknowledged delivery ids round-trip; a damaged list is refused by name") {
    const auto set = patterns();
    const auto parsed = core::aggregate::parse_state(saved_state(*set), *set);
    REQUIRE(parsed.has_value());
    const core::aggregate::delivery_ids ids = {{"req-1", 1764201600000},
                                               {"webhook:gh\n\"quoted\"", 1764201600500}};
    const std::string doc = core::aggregate::serialize_state(*parsed, *set, 1, 3, &ids);
    core::aggregate::delivery_ids back;
    std::uint64_t segment = 0;
    REQUIRE(core::aggregate::parse_state(doc, *set, &segment, &back).has_value());
    CHECK(segment == 3);
    CHECK(back == ids);
    // A document without the list (older, or nothing acknowledged) has none.
    REQUIRE(core::aggregate::parse_state(saved_state(*set), *set, nullptr, &back).has_value());
    CHECK(back.empty());
    const std::string head = doc.substr(0, doc.find(",\"delivery_ids\":"));
    const std::string tail = doc.substr(doc.find(",\"totals\":"));
    for (const auto& [list, field] : std::vector<std::pair<std::string, std::string>>{
             {"{}", "delivery_ids: expected an array"},
             {"[\"x\"]", "delivery_ids[0]: expected an array"},
             {"[[\"x\"]]", "delivery_ids[0]: expected [id, acknowledged_ms]"},
             {"[[\"x\",1,2]]", "delivery_ids[0]: expected [id, acknowledged_ms]"},
             {"[[1,1]]", "delivery_ids[0][0]: expected a string"},
             {"[[\"\",1]]", "delivery_ids[0][0]: expected an id of 1 to 512 bytes"},
             {"[[\"" + std::string(513, 'a') + "\",1]]",
              "delivery_ids[0][0]: expected an id of 1 to 512 bytes"},
             {"[[\"x\",-1]]", "delivery_ids[0][1]: expected a non-negative integer"},
             {"[[\"x\",\"1\"]]", "delivery_ids[0][1]: expected a non-negative integer"},
             {"[[\"x\",1],[\"y\",1.5]]", "delivery_ids[1][1]: expected a non-negative integer"},
         }) {
        const auto& list_shown = list; // clang 14: a lambda (CAPTURE) may not name a structured binding
        CAPTURE(list_shown);
        const auto r =
            core::aggregate::parse_state(head + ",\"delivery_ids\":" + list + tail, *set, nullptr, &back);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message == "state file: " + field);
    }
}
