// Webhook authentication: every scheme's header parsing (Authorization, X-Hub-Signature-256,
// Stripe-Signature, X-Slack-Signature + timestamp, webhook-id/-timestamp/-signature).
// Input: one byte picking the scheme, then "Name: value" header lines, a blank line, the body.
// A forged request never passes: the HMAC schemes never without the secret, bearer never without
// one of the tokens (and always with "Bearer <token>").
#include "fuzz_support.hpp"

#include "faultline/server/webhook_auth.hpp"

#include <chrono>
#include <map>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace faultline;
    if (size == 0) return 0;
    config::auth_config auth;
    static constexpr config::auth_type schemes[] = {config::auth_type::bearer, config::auth_type::github,
                                                    config::auth_type::stripe, config::auth_type::slack,
                                                    config::auth_type::standard_webhooks};
    auth.type = schemes[data[0] % 5];
    auth.secrets = auth.type == config::auth_type::standard_webhooks
                       ? std::vector<std::string>{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                                  "whsec_c2Vjb25kLXNlY3JldC1mb3ItZnV6eg=="}
                       : std::vector<std::string>{"a-long-secret-nobody-guesses-0123456789",
                                                  "second-secret-for-rotation-9876543210"};
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    std::map<std::string, std::string, std::less<>> headers;
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        if (line.empty()) break;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name(line.substr(0, colon));
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        headers[name] = std::string(value);
    }
    server::header_lookup lookup = [&headers](std::string_view name) -> std::string_view {
        std::string key(name);
        for (auto& c : key)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto it = headers.find(key);
        return it == headers.end() ? std::string_view{} : std::string_view(it->second);
    };
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    const auto outcome = server::verify_webhook(auth, lookup, rest, now);
    if (auth.type == config::auth_type::bearer) {
        // Passes only with a listed token (the scheme's case and blanks around are tolerated).
        const std::string_view given = lookup("Authorization");
        bool listed = false;
        for (const auto& token : auth.secrets)
            listed |= given.find(token) != std::string_view::npos;
        if (outcome.ok) fuzz::require(listed);
        if (given == "Bearer " + auth.secrets[0]) fuzz::require(outcome.ok);
    } else {
        fuzz::require(!outcome.ok);
    }
    fuzz::require(outcome.ok || !outcome.reason.empty());
    return 0;
}
