// GET /v1/templates?scope=cluster: the replicas' template views merged by template id. I/O-free:
// the server fetches each peer's `scope=local` answer and hands the bodies here.
//
// Merge rule (one template id is one template text on every replica: XXH3 of the text):
// counts, per-group counts, rates and the 15-minute trend are summed; first_seen is the minimum,
// last_seen the maximum; the sample and the "new" mark come from the replica that saw it first
// (new in the cluster means new where it first appeared); patterns and previous_ids are joined;
// severity is the highest. Peers that did not answer are listed with why, not waited for.
#pragma once

#include "faultline/server/service.hpp"

#include <optional>
#include <string>
#include <vector>

namespace faultline::server {

struct peer_answer {
    std::string peer;                ///< host:port as asked
    std::optional<std::string> body; ///< the peer's /v1/templates JSON; nullopt: no answer
    std::string error;               ///< why there is no body (or why it could not be read)
};

/// The merged view: {"scope":"cluster","templates":[...],"peers":[{"peer","ok",...}]}, ranked
/// and cut as `q` says (the peers were asked with the same filters).
std::string merge_cluster_templates(std::vector<peer_answer> answers, const template_query& q);

/// What each peer is asked for: its local view with the same filters and the most templates,
/// so a template ranked low on every replica but high in the sum is not cut off.
std::string peer_templates_target(const template_query& q);

} // namespace faultline::server
