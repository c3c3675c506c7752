#include "faultline/server/webhook_auth.hpp"

#include "faultline/core/decode/base64.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace faultline::server {
namespace {

using config::auth_config;
using config::auth_type;

// ---- HMAC-SHA256 -----------------------------------------------------------------------------

constexpr std::size_t mac_size = 32;
using mac_bytes = std::array<unsigned char, mac_size>;

std::string_view as_view(const mac_bytes& m) noexcept {
    return {reinterpret_cast<const char*>(m.data()), m.size()};
}

struct mac_ctx_free {
    void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};

/// HMAC-SHA256 keyed by `key` over the concatenation of `parts` (streamed: the body is not
/// copied). Throws std::runtime_error only if OpenSSL itself fails (an internal error, not a
/// verdict on the request).
mac_bytes hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts) {
    // Fetched once and shared: an EVP_MAC may be used from several threads at once.
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) throw std::runtime_error("OpenSSL: HMAC is not available");
    std::unique_ptr<EVP_MAC_CTX, mac_ctx_free> ctx(EVP_MAC_CTX_new(mac));
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    // A null key pointer means "keep the previous key" to OpenSSL; an empty key must not be null.
    static constexpr unsigned char no_key = 0;
    const auto* key_bytes = key.empty() ? &no_key : reinterpret_cast<const unsigned char*>(key.data());
    if (!ctx || EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1)
        throw std::runtime_error("OpenSSL: cannot initialise HMAC-SHA256");
    for (std::string_view p : parts)
        if (!p.empty() &&
            EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(p.data()), p.size()) != 1)
            throw std::runtime_error("OpenSSL: HMAC-SHA256 update failed");
    mac_bytes out{};
    std::size_t len = 0;
    if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size())
        throw std::runtime_error("OpenSSL: HMAC-SHA256 final failed");
    return out;
}

// ---- parsing helpers -------------------------------------------------------------------------

bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Exactly 64 hex digits (either case) → the 32 bytes they spell.
std::optional<mac_bytes> parse_hex_mac(std::string_view hex) noexcept {
    if (hex.size() != 2 * mac_size) return std::nullopt;
    mac_bytes out{};
    for (std::size_t i = 0; i < mac_size; ++i) {
        const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<unsigned char>((hi << 4) | lo);
    }
    return out;
}

/// Unix seconds: one or more ASCII digits, nothing else, fitting in int64.
std::optional<std::int64_t> parse_unix(std::string_view s) noexcept {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

/// |now - t| <= tolerance, in whole seconds (now rounded down), without overflow.
bool within_tolerance(std::int64_t t, std::chrono::system_clock::time_point now,
                      config::seconds tolerance) noexcept {
    const std::int64_t now_s = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    // The distance of two int64 values always fits in uint64; unsigned wrap-around computes it exactly.
    const std::uint64_t distance = t > now_s
                                       ? static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(now_s)
                                       : static_cast<std::uint64_t>(now_s) - static_cast<std::uint64_t>(t);
    const std::int64_t tol = std::max<std::int64_t>(0, tolerance.count());
    return distance <= static_cast<std::uint64_t>(tol);
}

/// Splits `s` at every `sep` (empty pieces kept).
std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + 1);
    }
}

// ---- outcomes --------------------------------------------------------------------------------

auth_outcome pass() {
    return {true, {}};
}
auth_outcome fail(std::string reason) {
    return {false, std::move(reason)};
}

auth_outcome missing(std::string_view header) {
    return fail(std::string(header) + " is missing");
}
auth_outcome malformed(std::string_view header, std::string_view what) {
    return fail(std::string(header) + " is malformed: " + std::string(what));
}
auth_outcome mismatch(std::string_view header) {
    return fail(std::string(header) + ": signature mismatch");
}
auth_outcome stale(std::string_view header, config::seconds tolerance) {
    return fail(std::string(header) + ": timestamp outside the tolerance of " +
                std::to_string(tolerance.count()) + " s");
}

std::string_view get(const header_lookup& headers, std::string_view name) {
    return trim(headers(name));
}

// ---- schemes ---------------------------------------------------------------------------------

auth_outcome verify_bearer(const auth_config& auth, const header_lookup& headers) {
    constexpr std::string_view h = "Authorization";
    const std::string_view value = get(headers, h);
    if (value.empty()) return missing(h);
    const auto space = std::find_if(value.begin(), value.end(), is_ows);
    if (!iequals(std::string_view(value.begin(), space), "Bearer"))
        return fail(std::string(h) + ": scheme is not Bearer");
    const std::string_view token = trim(std::string_view(space, value.end()));
    if (token.empty()) return malformed(h, "no token after Bearer");
    bool ok = false;
    for (const auto& secret : auth.secrets)
        ok |= constant_time_equal(token, secret); // no early exit
    return ok ? pass() : fail(std::string(h) + ": token not accepted");
}

auth_outcome verify_github(const auth_config& auth, const header_lookup& headers, std::string_view body) {
    constexpr std::string_view h = "X-Hub-Signature-256", prefix = "sha256=";
    const std::string_view value = get(headers, h);
    if (value.empty()) return missing(h);
    const auto sig = value.starts_with(prefix) ? parse_hex_mac(value.substr(prefix.size())) : std::nullopt;
    if (!sig) return malformed(h, "expected sha256=<64 hex digits>");
    for (const auto& secret : auth.secrets)
        if (constant_time_equal(as_view(hmac_sha256(secret, {body})), as_view(*sig))) return pass();
    return mismatch(h);
}

auth_outcome verify_stripe(const auth_config& auth, const header_lookup& headers, std::string_view body,
                           std::chrono::system_clock::time_point now) {
    constexpr std::string_view h = "Stripe-Signature";
    const std::string_view value = get(headers, h);
    if (value.empty()) return missing(h);
    std::optional<std::string_view> t_text;
    std::vector<mac_bytes> v1;
    for (std::string_view item : split(value, ',')) {
        item = trim(item);
        const auto eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return malformed(h, "expected comma-separated key=value elements");
        const std::string_view key = item.substr(0, eq), val = item.substr(eq + 1);
        if (key == "t") {
            if (t_text) return malformed(h, "more than one t= element");
            t_text = val;
        } else if (key == "v1") {
            const auto sig = parse_hex_mac(val);
            if (!sig) return malformed(h, "v1= is not 64 hex digits");
            v1.push_back(*sig);
        } // v0= (test mode) and unknown schemes are ignored, as Stripe's own libraries do
    }
    if (!t_text) return malformed(h, "no t= timestamp");
    const auto t = parse_unix(*t_text);
    if (!t) return malformed(h, "t= is not a unix timestamp");
    if (v1.empty()) return malformed(h, "no v1= signature");
    if (!within_tolerance(*t, now, auth.tolerance)) return stale(h, auth.tolerance);
    for (const auto& secret : auth.secrets) {
        const mac_bytes expected = hmac_sha256(secret, {*t_text, ".", body});
        for (const auto& sig : v1)
            if (constant_time_equal(as_view(expected), as_view(sig))) return pass();
    }
    return mismatch(h);
}

auth_outcome verify_slack(const auth_config& auth, const header_lookup& headers, std::string_view body,
                          std::chrono::system_clock::time_point now) {
    constexpr std::string_view ts_h = "X-Slack-Request-Timestamp", sig_h = "X-Slack-Signature",
                               prefix = "v0=";
    const std::string_view ts = get(headers, ts_h);
    if (ts.empty()) return missing(ts_h);
    const auto t = parse_unix(ts);
    if (!t) return malformed(ts_h, "not a unix timestamp");
    const std::string_view value = get(headers, sig_h);
    if (value.empty()) return missing(sig_h);
    const auto sig = value.starts_with(prefix) ? parse_hex_mac(value.substr(prefix.size())) : std::nullopt;
    if (!sig) return malformed(sig_h, "expected v0=<64 hex digits>");
    if (!within_tolerance(*t, now, auth.tolerance)) return stale(ts_h, auth.tolerance);
    for (const auto& secret : auth.secrets)
        if (constant_time_equal(as_view(hmac_sha256(secret, {"v0:", ts, ":", body})), as_view(*sig)))
            return pass();
    return mismatch(sig_h);
}

auth_outcome verify_standard(const auth_config& auth, const header_lookup& headers, std::string_view body,
                             std::chrono::system_clock::time_point now) {
    constexpr std::string_view id_h = "webhook-id", ts_h = "webhook-timestamp", sig_h = "webhook-signature";
    constexpr std::string_view secret_prefix = "whsec_";
    const std::string_view id = get(headers, id_h);
    if (id.empty()) return missing(id_h);
    const std::string_view ts = get(headers, ts_h);
    if (ts.empty()) return missing(ts_h);
    const auto t = parse_unix(ts);
    if (!t) return malformed(ts_h, "not a unix timestamp");
    const std::string_view value = get(headers, sig_h);
    if (value.empty()) return missing(sig_h);
    std::vector<std::string_view> v1;
    for (const std::string_view entry : split(value, ' ')) {
        if (entry.empty()) continue; // several spaces in a row
        const auto comma = entry.find(',');
        if (comma == std::string_view::npos)
            return malformed(sig_h, "expected space-separated v1,<base64> entries");
        if (entry.substr(0, comma) == "v1") v1.push_back(entry.substr(comma + 1));
        // other versions (v1a: asymmetric) cannot be checked with a shared secret: ignored
    }
    if (v1.empty()) return malformed(sig_h, "no v1 signature");
    if (!within_tolerance(*t, now, auth.tolerance)) return stale(ts_h, auth.tolerance);
    std::string key;
    for (const auto& secret : auth.secrets) {
        if (secret.starts_with(secret_prefix)) {
            if (!core::decode::base64_decode(std::string_view(secret).substr(secret_prefix.size()), key))
                continue; // not valid base64: can match nothing (configuration checks should catch it)
        } else {
            key = secret;
        }
        const std::string expected =
            core::decode::base64_encode(as_view(hmac_sha256(key, {id, ".", ts, ".", body})));
        for (const std::string_view sig : v1)
            if (constant_time_equal(sig, expected)) return pass();
    }
    return mismatch(sig_h);
}

} // namespace

auth_outcome verify_webhook(const config::auth_config& auth, const header_lookup& headers,
                            std::string_view body, std::chrono::system_clock::time_point now) {
    switch (auth.type) {
    case auth_type::none:
        return pass();
    case auth_type::bearer:
        return verify_bearer(auth, headers);
    case auth_type::github:
        return verify_github(auth, headers, body);
    case auth_type::stripe:
        return verify_stripe(auth, headers, body, now);
    case auth_type::slack:
        return verify_slack(auth, headers, body, now);
    case auth_type::standard_webhooks:
        return verify_standard(auth, headers, body, now);
    }
    return fail("unknown auth type");
}

} // namespace faultline::server
