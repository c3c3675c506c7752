// Authentication of POST /v1/webhook/{source} requests (SPEC §2): bearer tokens and the HMAC
// signature schemes of GitHub, Stripe, Slack and Standard Webhooks. Pure functions: no I/O, no
// networking; the caller supplies the headers, the exact body bytes and the current time.
#pragma once

#include "faultline/config/config.hpp"
#include "faultline/core/constant_time.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace faultline::server {

/// Looks a request header up by name, case-insensitively; empty when absent.
using header_lookup = std::function<std::string_view(std::string_view name)>;

struct auth_outcome {
    bool ok = false;
    std::string reason; ///< why not, naming the header: e.g. "X-Hub-Signature-256 is missing", "signature
                        ///< mismatch", "timestamp outside the tolerance of 300 s"
};

/// Checks a webhook request against its source's auth settings. HMACs are computed over the exact
/// body bytes with OpenSSL (HMAC-SHA256), compared in constant time; every configured secret is
/// tried (rotation). `now` is injected for the timestamp tolerance checks.
auth_outcome verify_webhook(const config::auth_config& auth, const header_lookup& headers,
                            std::string_view body, std::chrono::system_clock::time_point now);

/// Constant-time equality (length leaks, contents do not): one home, in core.
using core::constant_time_equal;

} // namespace faultline::server
