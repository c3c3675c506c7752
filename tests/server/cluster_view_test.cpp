// GET /v1/templates?scope=cluster: merging the replicas' answers (I/O-free). Hostile answers first.
#include "faultline/server/cluster_view.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

using namespace faultline::server;

namespace {

std::string one(std::string_view id, std::string_view text, int count, std::string_view first,
                std::string_view last, std::string_view sample, bool is_new, std::string_view extra = "") {
    std::string t = "{\"id\":\"" + std::string(id) + "\",\"template\":\"" + std::string(text) +
                    "\",\"count\":" + std::to_string(count) + ",\"first_seen\":\"" + std::string(first) +
                    "\",\"last_seen\":\"" + std::string(last) + "\",\"sample\":\"" + std::string(sample) +
                    "\",\"new\":" + (is_new ? "true" : "false");
    return t + std::string(extra) + "}";
}

std::string view(std::initializer_list<std::string> templates) {
    std::string out = "{\"templates\":[";
    bool first = true;
    for (const auto& t : templates) {
        if (!first) out += ',';
        first = false;
        out += t;
    }
    return out + "]}";
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& json) {
    simdjson::dom::element doc;
    REQUIRE_MESSAGE(!p.parse(json).get(doc), json);
    return doc;
}

} // namespace

TEST_CASE("cluster view: unreadable answers are marked per peer and count nothing") {
    template_query q;
    std::vector<peer_answer> answers;
    answers.push_back(
        {"a:1",
         view({one("id1", "T one", 5, "2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z", "s1", false)}),
         {}});
    answers.push_back({"b:1", std::string("{not json"), {}});
    // Valid JSON whose second template lacks its count: nothing of this peer is taken (not half).
    answers.push_back(
        {"c:1",
         view({one("id1", "T one", 100, "2025-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z", "x", true),
               "{\"id\":\"id2\",\"template\":\"T two\"}"}),
         {}});
    answers.push_back({"d:1", std::string("{\"templates\":7}"), {}});
    answers.push_back({"e:1", std::nullopt, "connect: Connection refused"});
    simdjson::dom::parser p;
    const std::string out = merge_cluster_templates(std::move(answers), q);
    auto doc = parse(p, out);
    auto templates = doc["templates"].get_array().value();
    REQUIRE(templates.size() == 1);
    CHECK(templates.at(0)["count"].get_uint64().value() == 5);
    CHECK(std::string_view(templates.at(0)["sample"].get_string().value()) == "s1");
    auto peers = doc["peers"].get_array().value();
    REQUIRE(peers.size() == 5);
    CHECK(peers.at(0)["ok"].get_bool().value());
    CHECK(peers.at(0)["templates"].get_uint64().value() == 1);
    for (std::size_t i = 1; i < 5; ++i) {
        CHECK_FALSE(peers.at(i)["ok"].get_bool().value());
        CHECK_FALSE(std::string_view(peers.at(i)["error"].get_string().value()).empty());
    }
    CHECK(std::string_view(peers.at(4)["error"].get_string().value()) == "connect: Connection refused");
    CHECK(std::string_view(peers.at(1)["error"].get_string().value()).starts_with("unreadable answer"));
}

TEST_CASE("cluster view: counts add up, first and last seen span the replicas, the first replica speaks") {
    template_query q;
    std::vector<peer_answer> answers;
    answers.push_back(
        {"a:1",
         view({one("id1", "T one", 5, "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z", "late sample",
                   true,
                   ",\"rate_1m\":1.5,\"trend\":[0,0,0,0,0,0,0,0,0,0,0,0,0,1,4],\"groups\":[{\"group\":\"g1\","
                   "\"count\":5}],\"patterns\":[\"error_level\"],\"previous_ids\":[\"old1\"],\"severity\":"
                   "\"warn\""),
               one("id2", "T two", 2, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", "two", false)}),
         {}});
    answers.push_back(
        {"b:1",
         view({one("id1", "T one", 7, "2026-01-01T00:00:00.000Z", "2026-01-02T12:00:00.000Z", "early sample",
                   false,
                   ",\"rate_1m\":0.5,\"trend\":[0,0,0,0,0,0,0,0,0,0,0,0,0,2,5],\"groups\":[{\"group\":\"g1\","
                   "\"count\":3},{\"group\":\"g2\",\"count\":4}],\"patterns\":[\"error_level\",\"retry\"],"
                   "\"previous_ids\":[\"old2\",\"old1\"],\"severity\":\"error\"")}),
         {}});
    simdjson::dom::parser p;
    auto doc = parse(p, merge_cluster_templates(std::move(answers), q));
    CHECK(std::string_view(doc["scope"].get_string().value()) == "cluster");
    auto templates = doc["templates"].get_array().value();
    REQUIRE(templates.size() == 2);
    auto t = templates.at(0); // ranked by count: 12 before 2
    CHECK(std::string_view(t["id"].get_string().value()) == "id1");
    CHECK(t["count"].get_uint64().value() == 12);
    CHECK(std::string_view(t["first_seen"].get_string().value()) == "2026-01-01T00:00:00.000Z");
    CHECK(std::string_view(t["last_seen"].get_string().value()) == "2026-01-03T00:00:00.000Z");
    // The replica that saw it first speaks for the sample and "new": it was not new there.
    CHECK(std::string_view(t["sample"].get_string().value()) == "early sample");
    CHECK_FALSE(t["new"].get_bool().value());
    CHECK(t["rate_1m"].get_double().value() == doctest::Approx(2.0));
    auto trend = t["trend"].get_array().value();
    CHECK(trend.size() == 15);
    CHECK(trend.at(13).get_uint64().value() == 3);
    CHECK(trend.at(14).get_uint64().value() == 9);
    auto groups = t["groups"].get_array().value();
    REQUIRE(groups.size() == 2);
    CHECK(std::string_view(groups.at(0)["group"].get_string().value()) == "g1");
    CHECK(groups.at(0)["count"].get_uint64().value() == 8);
    CHECK(groups.at(1)["count"].get_uint64().value() == 4);
    CHECK(t["patterns"].get_array().value().size() == 2);
    CHECK(t["previous_ids"].get_array().value().size() == 2);
    CHECK(std::string_view(t["severity"].get_string().value()) == "error");

    SUBCASE("sorted by first_seen, cut at the limit") {
        template_query q2;
        q2.sort = "first_seen";
        q2.limit = 1;
        std::vector<peer_answer> again;
        again.push_back(
            {"a:1",
             view({one("id1", "T one", 5, "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z", "s", false),
                   one("id2", "T two", 2, "2026-01-05T00:00:00.000Z", "2026-01-05T00:00:00.000Z", "s",
                       false)}),
             {}});
        auto d2 = parse(p, merge_cluster_templates(std::move(again), q2));
        auto t2 = d2["templates"].get_array().value();
        REQUIRE(t2.size() == 1);
        CHECK(std::string_view(t2.at(0)["id"].get_string().value()) == "id2"); // newest first
    }
}

TEST_CASE("cluster view: rates that would sum past a JSON number are not taken") {
    template_query q;
    std::vector<peer_answer> answers;
    for (int i = 0; i < 2; ++i)
        answers.push_back({"p:1",
                           view({one("id1", "T", 1, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z",
                                     "s", false, ",\"rate_1m\":1e308,\"rate_15m\":-5")}),
                           {}});
    simdjson::dom::parser p;
    auto doc = parse(p, merge_cluster_templates(std::move(answers), q)); // valid JSON (no inf)
    auto t = doc["templates"].get_array().value().at(0);
    CHECK(t["rate_1m"].get_double().value() == 0);
    CHECK(t["rate_15m"].get_double().value() == 0);
    CHECK(t["count"].get_uint64().value() == 2);
}

TEST_CASE("cluster view: what the peers are asked keeps the filters, escaped") {
    template_query q;
    q.group = "/aws/lambda/pay & go";
    q.cls = "error";
    q.sort = "last_seen";
    CHECK(peer_templates_target(q) == "/v1/"
                                      "templates?scope=local&limit=10000&sort=last_seen&group=%2Faws%"
                                      "2Flambda%2Fpay%20%26%20go&class=error");
}
