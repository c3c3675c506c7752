#include "faultline/server/webhook_auth.hpp"

#include "faultline/core/decode/base64.hpp"

#include "../support/helpers.hpp"

#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using faultline::config::auth_config;
using faultline::config::auth_type;
using faultline::server::auth_outcome;
using faultline::server::constant_time_equal;
using faultline::server::header_lookup;
using faultline::server::verify_webhook;
using faultline::test::contains;

namespace {

// ---- a minimal JSON reader, enough for fixtures/webhooks/signature_vectors.json ----------------

struct json {
    enum class kind { null, boolean, number, string, array, object };
    kind k = kind::null;
    std::string text; ///< string value, or the number/boolean literal
    std::vector<json> items;
    std::vector<std::pair<std::string, json>> members;

    // Declared here, defined below: with libstdc++'s pair, clang otherwise needs json complete
    // to instantiate pair<string, json> while json is being defined.
    json();
    ~json();
    json(const json&);
    json(json&&) noexcept;
    json& operator=(const json&);
    json& operator=(json&&) noexcept;
    const json& operator[](std::string_view key) const;
    bool has(std::string_view key) const;
};

json::json() = default;
json::~json() = default;
json::json(const json&) = default;
json::json(json&&) noexcept = default;
json& json::operator=(const json&) = default;
json& json::operator=(json&&) noexcept = default;

const json& json::operator[](std::string_view key) const {
    for (const auto& [name, value] : members)
        if (name == key) return value;
    throw std::runtime_error("no member " + std::string(key));
}

bool json::has(std::string_view key) const {
    for (const auto& m : members)
        if (m.first == key) return true;
    return false;
}

class json_reader {
public:
    explicit json_reader(std::string_view s)
        : s_(s) {}

    json document() {
        json v = value();
        ws();
        if (i_ != s_.size()) error("trailing data");
        return v;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(i_));
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
            ++i_;
    }
    char peek() {
        ws();
        if (i_ >= s_.size()) error("unexpected end");
        return s_[i_];
    }
    void expect(char c) {
        if (peek() != c) error(std::string("expected '") + c + "'");
        ++i_;
    }
    json value() {
        json v;
        const char c = peek();
        if (c == '{') {
            v.k = json::kind::object;
            ++i_;
            if (peek() == '}') {
                ++i_;
                return v;
            }
            for (;;) {
                std::string name = string();
                expect(':');
                v.members.emplace_back(std::move(name), value());
                if (peek() == '}') {
                    ++i_;
                    return v;
                }
                expect(',');
            }
        }
        if (c == '[') {
            v.k = json::kind::array;
            ++i_;
            if (peek() == ']') {
                ++i_;
                return v;
            }
            for (;;) {
                v.items.push_back(value());
                if (peek() == ']') {
                    ++i_;
                    return v;
                }
                expect(',');
            }
        }
        if (c == '"') {
            v.k = json::kind::string;
            v.text = string();
            return v;
        }
        const std::size_t start = i_;
        while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                                  s_[i_] == '+' || s_[i_] == '.'))
            ++i_;
        v.text = std::string(s_.substr(start, i_ - start));
        if (v.text == "null")
            v.k = json::kind::null;
        else if (v.text == "true" || v.text == "false")
            v.k = json::kind::boolean;
        else if (!v.text.empty())
            v.k = json::kind::number;
        else
            error("unexpected character");
        return v;
    }
    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (i_ >= s_.size()) error("unterminated string");
            const char c = s_[i_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) error("unterminated escape");
            switch (const char e = s_[i_++]) {
            case '"':
            case '\\':
            case '/':
                out += e;
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': { // BMP only (no surrogate pairs): enough for these fixtures
                if (i_ + 4 > s_.size()) error("short \\u escape");
                const unsigned cp =
                    static_cast<unsigned>(std::stoul(std::string(s_.substr(i_, 4)), nullptr, 16));
                i_ += 4;
                if (cp < 0x80) {
                    out += static_cast<char>(cp);
                } else if (cp < 0x800) {
                    out += static_cast<char>(0xC0 | (cp >> 6));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                } else {
                    out += static_cast<char>(0xE0 | (cp >> 12));
                    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                }
                break;
            }
            default:
                error("bad escape");
            }
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

// ---- request helpers -------------------------------------------------------------------------

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

using header_map = std::map<std::string, std::string>;

/// A case-insensitive lookup over a copy of `h`, as the server's request adapter provides.
header_lookup lookup(const header_map& h) {
    header_map folded;
    for (const auto& [name, value] : h)
        folded[lower(name)] = value;
    return [folded = std::move(folded)](std::string_view name) -> std::string_view {
        const auto it = folded.find(lower(name));
        return it == folded.end() ? std::string_view() : std::string_view(it->second);
    };
}

std::chrono::system_clock::time_point at(std::int64_t unix_seconds) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

auth_config make_auth(auth_type type, std::vector<std::string> secrets, std::int64_t tolerance_s = 300) {
    auth_config a;
    a.type = type;
    a.secrets = std::move(secrets);
    a.tolerance = std::chrono::seconds(tolerance_s);
    return a;
}

struct vector_case {
    auth_type type{};
    std::string secret;
    std::string body;
    header_map headers;
    std::int64_t now = 0; ///< now_unix; 0 when the vector has none (github: no timestamp)
};

auth_type scheme_of(const std::string& name) {
    if (name == "github") return auth_type::github;
    if (name == "stripe") return auth_type::stripe;
    if (name == "slack") return auth_type::slack;
    if (name == "standard-webhooks") return auth_type::standard_webhooks;
    throw std::runtime_error("unknown scheme in vectors: " + name);
}

/// The published vectors (tests/data/fixtures/webhooks/signature_vectors.json, a byte-identical
/// copy of shared/fixtures/webhooks/signature_vectors.json), by scheme name.
const std::map<std::string, vector_case>& vectors() {
    static const std::map<std::string, vector_case> all = [] {
        const json doc =
            json_reader(faultline::test::read_data("fixtures/webhooks/signature_vectors.json")).document();
        std::map<std::string, vector_case> out;
        for (const json& v : doc.items) {
            vector_case c;
            c.type = scheme_of(v["scheme"].text);
            c.secret = v["secret"].text;
            c.body = v["body"].text;
            for (const auto& [name, value] : v["headers"].members)
                c.headers[name] = value.text;
            if (v.has("now_unix")) c.now = std::stoll(v["now_unix"].text);
            out.emplace(v["scheme"].text, std::move(c));
        }
        return out;
    }();
    return all;
}

const vector_case& vec(const std::string& scheme) {
    const auto it = vectors().find(scheme);
    REQUIRE_MESSAGE(it != vectors().end(), "no vector for " << scheme);
    return it->second;
}

auth_outcome run(const vector_case& v, std::vector<std::string> secrets, const header_map& headers,
                 std::string_view body, std::int64_t now, std::int64_t tolerance = 300) {
    return verify_webhook(make_auth(v.type, std::move(secrets), tolerance), lookup(headers), body, at(now));
}
auth_outcome run(const vector_case& v) {
    return run(v, {v.secret}, v.headers, v.body, v.now);
}

std::string tampered(std::string body) {
    REQUIRE(!body.empty());
    body[body.size() / 2] ^= 0x01; // one byte changed
    return body;
}

header_map without(header_map h, const std::string& name) {
    REQUIRE(h.erase(name) == 1);
    return h;
}
header_map with(header_map h, const std::string& name, std::string_view value) {
    h[name] = std::string(value);
    return h;
}

/// The signature of a vector's header, as bare hex / base64 (prefix stripped).
std::string hex_of(const vector_case& v) {
    if (v.type == auth_type::github) return v.headers.at("X-Hub-Signature-256").substr(7);
    if (v.type == auth_type::slack) return v.headers.at("X-Slack-Signature").substr(3);
    const std::string& s = v.headers.at("Stripe-Signature"); // t=...,v1=<hex>,v0=...
    const auto from = s.find("v1=") + 3;
    return s.substr(from, 64);
}

#define CHECK_OK(expr)                                                                                       \
    do {                                                                                                     \
        const auth_outcome o_ = (expr);                                                                      \
        CHECK_MESSAGE(o_.ok, o_.reason);                                                                     \
    } while (false)

/// Fails with a reason that contains `needle` (e.g. the header's name).
#define CHECK_FAILS(expr, needle)                                                                            \
    do {                                                                                                     \
        const auth_outcome o_ = (expr);                                                                      \
        CHECK_FALSE(o_.ok);                                                                                  \
        CHECK_MESSAGE(contains(o_.reason, needle), "reason: " << o_.reason);                                 \
    } while (false)

} // namespace

TEST_SUITE("webhook_auth") {

    TEST_CASE("webhook auth: the published vectors verify") {
        REQUIRE(vectors().size() == 4);
        for (const auto& entry : vectors()) {
            const std::string& scheme = entry.first;
            const vector_case& v = entry.second;
            CAPTURE(scheme);
            CHECK_OK(run(v));
        }
    }

    TEST_CASE("webhook auth: none accepts anything") {
        const auto a = make_auth(auth_type::none, {});
        CHECK(verify_webhook(a, lookup({}), "", at(0)).ok);
        CHECK(verify_webhook(a, lookup({{"Authorization", "Basic eA=="}}), "body", at(1)).ok);
    }

    TEST_CASE("webhook auth: bearer") {
        const auto a = make_auth(auth_type::bearer, {"tok-old", "tok-new"});
        auto check = [&](header_map h) { return verify_webhook(a, lookup(h), "body", at(0)); };
        CHECK_OK(check({{"Authorization", "Bearer tok-old"}}));
        CHECK_OK(check({{"Authorization", "Bearer tok-new"}})); // rotation: second secret
        CHECK_OK(check({{"Authorization", "bearer tok-new"}})); // scheme is case-insensitive
        CHECK_OK(check({{"Authorization", "BEARER  tok-new "}}));
        CHECK_OK(check({{"authorization", "Bearer tok-new"}})); // header names are case-insensitive
        CHECK_FAILS(check({{"Authorization", "Bearer tok-wrong"}}), "Authorization");
        CHECK_FAILS(check({{"Authorization", "Bearer tok-ol"}}), "Authorization"); // prefix of a token
        CHECK_FAILS(check({{"Authorization", "Bearer TOK-OLD"}}),
                    "Authorization"); // the token is case-sensitive
        CHECK_FAILS(check({{"Authorization", "Bearer tok-old tok-new"}}), "Authorization");
        CHECK_FAILS(check({}), "Authorization is missing");
        CHECK_FAILS(check({{"Authorization", ""}}), "Authorization is missing");
        CHECK_FAILS(check({{"Authorization", "Basic dG9rLW9sZDp4"}}), "Authorization");
        CHECK_FAILS(check({{"Authorization", "Basic tok-old"}}), "Authorization");
        CHECK_FAILS(check({{"Authorization", "tok-old"}}), "Authorization");
        CHECK_FAILS(check({{"Authorization", "Bearer"}}), "Authorization is malformed");
        CHECK_FAILS(check({{"Authorization", "Bearer   "}}), "Authorization");
        CHECK_FAILS(check({{"Authorization", "Bearertok-old"}}), "Authorization");
    }

    TEST_CASE("webhook auth: github") {
        const auto& v = vec("github");
        const std::string h = "X-Hub-Signature-256";

        SUBCASE("upper-case hex is accepted") {
            std::string upper = hex_of(v);
            for (auto& c : upper)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            CHECK_OK(run(v, {v.secret}, with(v.headers, h, "sha256=" + upper), v.body, 0));
        }
        SUBCASE("no timestamp: any now") {
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, 4'000'000'000));
        }
        SUBCASE("wrong secret") {
            CHECK_FAILS(run(v, {"It's a Secret to Everybody!"}, v.headers, v.body, 0), "signature mismatch");
        }
        SUBCASE("tampered body") {
            CHECK_FAILS(run(v, {v.secret}, v.headers, tampered(v.body), 0), "signature mismatch");
        }
        SUBCASE("body with a trailing newline") {
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body + "\n", 0), "signature mismatch");
        }
        SUBCASE("missing header") {
            CHECK_FAILS(run(v, {v.secret}, without(v.headers, h), v.body, 0), h + " is missing");
        }
        SUBCASE("malformed header") {
            const std::string hex = hex_of(v);
            for (const std::string& bad :
                 {hex, "sha1=" + hex, "sha256=" + hex.substr(1), "sha256=" + hex + "0",
                  "sha256=" + hex.substr(0, 63) + "g", "sha256= " + hex.substr(1), std::string("sha256=")}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, h, bad), v.body, 0), h + " is malformed");
            }
        }
        SUBCASE("rotation: the right secret second") {
            CHECK_OK(run(v, {"old secret", v.secret}, v.headers, v.body, 0));
        }
    }

    TEST_CASE("webhook auth: stripe") {
        const auto& v = vec("stripe");
        const std::string h = "Stripe-Signature";
        const std::string t = "1700000000";
        REQUIRE(v.now == 1700000000);
        const std::string hex = hex_of(v);

        SUBCASE("wrong secret") {
            CHECK_FAILS(run(v, {"whsec_other"}, v.headers, v.body, v.now), "signature mismatch");
        }
        SUBCASE("tampered body") {
            CHECK_FAILS(run(v, {v.secret}, v.headers, tampered(v.body), v.now), "signature mismatch");
        }
        SUBCASE("missing header") {
            CHECK_FAILS(run(v, {v.secret}, without(v.headers, h), v.body, v.now), h + " is missing");
        }
        SUBCASE("malformed header") {
            for (const std::string& bad :
                 {"t=abc,v1=" + hex, "t=,v1=" + hex, "t=-1,v1=" + hex, "t=17e8,v1=" + hex, "v1=" + hex,
                  "t=" + t, "t=" + t + ",v0=" + hex, "t=" + t + ",v1=" + hex.substr(2),
                  "t=" + t + ",v1=" + hex + ",", "t=" + t + "," + hex, "t=" + t + ",t=" + t + ",v1=" + hex,
                  "t=99999999999999999999,v1=" + hex, std::string("garbage")}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, h, bad), v.body, v.now), h + " is malformed");
            }
        }
        SUBCASE("a changed timestamp breaks the signature") {
            CHECK_FAILS(run(v, {v.secret}, with(v.headers, h, "t=1700000001,v1=" + hex), v.body, v.now),
                        "signature mismatch");
        }
        SUBCASE("stale and future timestamps") {
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now + 300));
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now - 300));
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now + 301),
                        "timestamp outside the tolerance of 300 s");
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now - 301),
                        "timestamp outside the tolerance of 300 s");
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now + 60, 60));
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now + 61, 60), "tolerance of 60 s");
            // sub-second `now`: rounded down to whole seconds
            const auto a = make_auth(v.type, {v.secret});
            CHECK(
                verify_webhook(a, lookup(v.headers), v.body, at(v.now + 300) + std::chrono::milliseconds(999))
                    .ok);
        }
        SUBCASE("rotation: the right secret second") {
            CHECK_OK(run(v, {"whsec_old", v.secret}, v.headers, v.body, v.now));
        }
        SUBCASE("several v1 signatures: any may match; v0 is ignored") {
            const std::string zeros(64, '0');
            CHECK_OK(run(v, {v.secret}, with(v.headers, h, "t=" + t + ",v1=" + zeros + ",v1=" + hex), v.body,
                         v.now));
            CHECK_OK(run(v, {v.secret}, with(v.headers, h, "v1=" + hex + ",t=" + t), v.body,
                         v.now)); // order is free
            CHECK_FAILS(run(v, {v.secret}, with(v.headers, h, "t=" + t + ",v1=" + zeros + ",v0=" + hex),
                            v.body, v.now),
                        "signature mismatch");
        }
    }

    TEST_CASE("webhook auth: slack") {
        const auto& v = vec("slack");
        const std::string ts_h = "X-Slack-Request-Timestamp", sig_h = "X-Slack-Signature";
        const std::string hex = hex_of(v);

        SUBCASE("wrong secret") {
            CHECK_FAILS(run(v, {"8f742231b10e8888abcd99yyyzzz85a6"}, v.headers, v.body, v.now),
                        "signature mismatch");
        }
        SUBCASE("tampered body") {
            CHECK_FAILS(run(v, {v.secret}, v.headers, tampered(v.body), v.now), "signature mismatch");
        }
        SUBCASE("missing headers") {
            CHECK_FAILS(run(v, {v.secret}, without(v.headers, ts_h), v.body, v.now), ts_h + " is missing");
            CHECK_FAILS(run(v, {v.secret}, without(v.headers, sig_h), v.body, v.now), sig_h + " is missing");
        }
        SUBCASE("malformed headers") {
            for (const std::string_view bad :
                 {"abc", "1531420618.5", "-1531420618", "1531420618x", "99999999999999999999"}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, ts_h, bad), v.body, v.now),
                            ts_h + " is malformed");
            }
            for (const std::string& bad :
                 {hex, "v1=" + hex, "v0=" + hex.substr(1), "v0=" + hex + "00", "v0:" + hex}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, sig_h, bad), v.body, v.now),
                            sig_h + " is malformed");
            }
        }
        SUBCASE("a changed timestamp breaks the signature") {
            CHECK_FAILS(run(v, {v.secret}, with(v.headers, ts_h, "1531420619"), v.body, v.now),
                        "signature mismatch");
        }
        SUBCASE("stale timestamp") {
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now + 300));
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now + 301),
                        ts_h + ": timestamp outside the tolerance of 300 s");
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now - 301), "tolerance");
        }
        SUBCASE("rotation: the right secret second") {
            CHECK_OK(run(v, {"previous-secret", v.secret}, v.headers, v.body, v.now));
        }
    }

    TEST_CASE("webhook auth: standard-webhooks") {
        const auto& v = vec("standard-webhooks");
        const std::string id_h = "webhook-id", ts_h = "webhook-timestamp", sig_h = "webhook-signature";
        const std::string sig = v.headers.at(sig_h); // "v1,<base64>"

        SUBCASE("wrong secret") {
            CHECK_FAILS(run(v, {"whsec_" + faultline::core::decode::base64_encode("another key")}, v.headers,
                            v.body, v.now),
                        "signature mismatch");
            CHECK_FAILS(run(v, {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, v.headers, v.body,
                            v.now), // prefix missing: raw bytes
                        "signature mismatch");
        }
        SUBCASE("a secret without the whsec_ prefix is the raw key") {
            std::string raw;
            REQUIRE(faultline::core::decode::base64_decode(std::string_view(v.secret).substr(6), raw)
                        .has_value());
            CHECK_OK(run(v, {raw}, v.headers, v.body, v.now));
        }
        SUBCASE("an undecodable whsec_ secret matches nothing, the next one is tried") {
            CHECK_FAILS(run(v, {"whsec_not base64!"}, v.headers, v.body, v.now), "signature mismatch");
            CHECK_OK(run(v, {"whsec_not base64!", v.secret}, v.headers, v.body, v.now));
        }
        SUBCASE("tampered body") {
            CHECK_FAILS(run(v, {v.secret}, v.headers, tampered(v.body), v.now), "signature mismatch");
        }
        SUBCASE("id and timestamp are signed") {
            CHECK_FAILS(run(v, {v.secret}, with(v.headers, id_h, "msg_other"), v.body, v.now),
                        "signature mismatch");
            CHECK_FAILS(run(v, {v.secret}, with(v.headers, ts_h, "1614265331"), v.body, v.now),
                        "signature mismatch");
        }
        SUBCASE("missing headers") {
            for (const auto& h : {id_h, ts_h, sig_h}) {
                CAPTURE(h);
                CHECK_FAILS(run(v, {v.secret}, without(v.headers, h), v.body, v.now), h + " is missing");
            }
        }
        SUBCASE("malformed headers") {
            for (const std::string_view bad :
                 {"abc", "1614265330.0", "+1614265330", "99999999999999999999"}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, ts_h, bad), v.body, v.now),
                            ts_h + " is malformed");
            }
            for (const std::string& bad :
                 {sig.substr(3), "v1=" + sig.substr(3), "v2," + sig.substr(3), sig + " garbage"}) {
                CAPTURE(bad);
                CHECK_FAILS(run(v, {v.secret}, with(v.headers, sig_h, bad), v.body, v.now),
                            sig_h + " is malformed");
            }
        }
        SUBCASE("stale and future timestamps") {
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now + 300));
            CHECK_OK(run(v, {v.secret}, v.headers, v.body, v.now - 300));
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now + 301),
                        ts_h + ": timestamp outside the tolerance of 300 s");
            CHECK_FAILS(run(v, {v.secret}, v.headers, v.body, v.now - 301), "tolerance");
        }
        SUBCASE("rotation: the right secret second") {
            CHECK_OK(run(v, {"whsec_" + faultline::core::decode::base64_encode("old key"), v.secret},
                         v.headers, v.body, v.now));
        }
        SUBCASE("several signatures: any v1 may match, other versions are ignored") {
            const std::string bogus = "v1," + faultline::core::decode::base64_encode(std::string(32, 'x'));
            CHECK_OK(run(v, {v.secret}, with(v.headers, sig_h, bogus + " " + sig), v.body, v.now));
            CHECK_OK(run(v, {v.secret}, with(v.headers, sig_h, "v1a,abcd " + sig), v.body, v.now));
            CHECK_FAILS(
                run(v, {v.secret}, with(v.headers, sig_h, bogus + " v1a," + sig.substr(3)), v.body, v.now),
                "signature mismatch");
        }
    }

    TEST_CASE("webhook auth: constant_time_equal") {
        CHECK(constant_time_equal("", ""));
        CHECK(constant_time_equal("abc", "abc"));
        CHECK(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
        CHECK_FALSE(constant_time_equal("abc", "abd"));
        CHECK_FALSE(constant_time_equal("abc", "Abc"));
        CHECK_FALSE(constant_time_equal("abc", "ab"));
        CHECK_FALSE(constant_time_equal("", "a"));
        CHECK_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
    }

} // TEST_SUITE
