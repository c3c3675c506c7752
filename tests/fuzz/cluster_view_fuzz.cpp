// GET /v1/templates?scope=cluster reads the peers' answers: whatever bytes a peer (or something
// posing as one) sends, the merge gives valid JSON naming every peer, with at most `limit`
// templates, and never a crash. The input is up to four answers separated by "\n--\n"; its first
// byte picks the sort and the limit.
#include "fuzz_support.hpp"

#include "faultline/server/cluster_view.hpp"

#include <simdjson.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    server::template_query q;
    if (!in.empty()) {
        const auto c = static_cast<unsigned char>(in.front());
        q.sort = c % 3 == 0 ? "count" : c % 3 == 1 ? "first_seen" : "last_seen";
        q.limit = 1 + (c >> 2) % 8;
        in.remove_prefix(1);
    }
    std::vector<server::peer_answer> answers;
    while (answers.size() < 4) {
        const std::size_t cut = in.find("\n--\n");
        std::string body(in.substr(0, cut));
        if (body == "-") // a peer that did not answer
            answers.push_back({"p" + std::to_string(answers.size()) + ":1", std::nullopt, "timeout"});
        else
            answers.push_back({"p" + std::to_string(answers.size()) + ":1", std::move(body), {}});
        if (cut == std::string_view::npos) break;
        in.remove_prefix(cut + 4);
    }
    const std::size_t peers = answers.size();
    const std::string out = server::merge_cluster_templates(std::move(answers), q);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    fuzz::require(!parser.parse(out).get(doc));
    simdjson::dom::array templates, listed;
    fuzz::require(!doc["templates"].get_array().get(templates));
    fuzz::require(!doc["peers"].get_array().get(listed));
    fuzz::require(templates.size() <= q.limit);
    fuzz::require(listed.size() == peers);
    return 0;
}
