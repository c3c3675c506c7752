#include "faultline/config/config.hpp"

#include "faultline/config/defaults.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace faultline::config {

std::string_view delivery_id_header(const source_config& s) noexcept {
    if (!s.delivery_id_header.empty()) return s.delivery_id_header;
    switch (s.auth.type) {
    case auth_type::github:
        return "X-GitHub-Delivery";
    case auth_type::standard_webhooks:
        return "webhook-id";
    default:
        return {};
    }
}

std::optional<store_endpoint> parse_store_url(std::string_view url, std::string& error) {
    if (url.starts_with("rediss://")) {
        error = "rediss:// (TLS) is not supported: this build's hiredis has no TLS; use redis://";
        return std::nullopt;
    }
    if (!url.starts_with("redis://")) {
        // Not echoed: the value may hold a password.
        error = "expected redis://[[user]:password@]host[:port][/db]";
        return std::nullopt;
    }
    std::string_view rest = url.substr(8);
    store_endpoint e;
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view creds = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const std::size_t colon = creds.find(':');
        if (colon == std::string_view::npos) {
            e.password = std::string(creds); // redis://password@host (as redis-cli -u reads it)
        } else {
            e.user = std::string(creds.substr(0, colon));
            e.password = std::string(creds.substr(colon + 1));
        }
    }
    std::string_view hostport = rest;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        const std::string_view db = rest.substr(slash + 1);
        if (!db.empty()) {
            const auto r = std::from_chars(db.data(), db.data() + db.size(), e.db);
            if (r.ec != std::errc() || r.ptr != db.data() + db.size() || e.db < 0) {
                error = "the database after '/' must be a number, got '" + std::string(db) + "'";
                return std::nullopt;
            }
        }
    }
    std::string_view host = hostport;
    if (hostport.starts_with('[')) { // [IPv6]:port
        const std::size_t close = hostport.find(']');
        if (close == std::string_view::npos) {
            error = "unterminated '[' in the host";
            return std::nullopt;
        }
        host = hostport.substr(1, close - 1);
        hostport = hostport.substr(close + 1);
        if (!hostport.empty() && !hostport.starts_with(':')) {
            error = "expected ':port' after ']'";
            return std::nullopt;
        }
        hostport = hostport.empty() ? hostport : hostport.substr(1);
        if (!hostport.empty()) {
            const auto r = std::from_chars(hostport.data(), hostport.data() + hostport.size(), e.port);
            if (r.ec != std::errc() || r.ptr != hostport.data() + hostport.size() || e.port < 1 ||
                e.port > 65535) {
                error = "the port must be a number from 1 to 65535";
                return std::nullopt;
            }
        }
    } else if (const std::size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
        host = hostport.substr(0, colon);
        const std::string_view port = hostport.substr(colon + 1);
        const auto r = std::from_chars(port.data(), port.data() + port.size(), e.port);
        if (r.ec != std::errc() || r.ptr != port.data() + port.size() || e.port < 1 || e.port > 65535) {
            error = "the port must be a number from 1 to 65535, got '" + std::string(port) + "'";
            return std::nullopt;
        }
    }
    if (host.empty()) {
        error = "the host is missing";
        return std::nullopt;
    }
    e.host = std::string(host);
    return e;
}

std::string_view auth_type_name(auth_type t) noexcept {
    switch (t) {
    case auth_type::none:
        return "none";
    case auth_type::bearer:
        return "bearer";
    case auth_type::github:
        return "github";
    case auth_type::stripe:
        return "stripe";
    case auth_type::slack:
        return "slack";
    case auth_type::standard_webhooks:
        return "standard-webhooks";
    }
    return "none";
}

std::string problem::to_string() const {
    std::string s = file;
    if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
    s += ": ";
    if (!path.empty()) s += path + ": ";
    s += message;
    return s;
}

std::optional<milliseconds> parse_duration(std::string_view s) {
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p == s.data()) return std::nullopt;
    const std::string_view unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
    std::uint64_t ms;
    if (unit.empty() || unit == "s")
        ms = n * 1000;
    else if (unit == "ms")
        ms = n;
    else if (unit == "m")
        ms = n * 60'000;
    else if (unit == "h")
        ms = n * 3'600'000;
    else
        return std::nullopt;
    return milliseconds(ms);
}

std::optional<std::size_t> parse_size(std::string_view s) {
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p == s.data()) return std::nullopt;
    const std::string_view unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
    std::uint64_t mul;
    if (unit.empty() || unit == "B")
        mul = 1;
    else if (unit == "KiB")
        mul = 1ull << 10;
    else if (unit == "MiB")
        mul = 1ull << 20;
    else if (unit == "GiB")
        mul = 1ull << 30;
    else if (unit == "kB")
        mul = 1000;
    else if (unit == "MB")
        mul = 1000'000;
    else if (unit == "GB")
        mul = 1000'000'000;
    else
        return std::nullopt;
    if (n > std::numeric_limits<std::uint64_t>::max() / mul) return std::nullopt;
    return static_cast<std::size_t>(n * mul);
}

namespace {

/// Walks a YAML tree, converting into the structs and collecting every problem.
class reader {
public:
    reader(std::string_view file, std::vector<problem>& problems)
        : file_(file)
        , problems_(problems) {}

    void fail(const YAML::Node& n, const std::string& path, const std::string& message) {
        const YAML::Mark m = n.Mark();
        problems_.push_back(
            {file_, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1, path, message});
    }

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    /// Iterates a mapping; calls `on(key, value, path)` for known keys, reports unknown ones.
    void mapping(const YAML::Node& n, const std::string& path, const std::set<std::string>& known,
                 const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& on) {
        if (!n.IsMap()) {
            if (!n.IsNull()) fail(n, path, "expected a mapping");
            return;
        }
        std::set<std::string> seen;
        for (auto it = n.begin(); it != n.end(); ++it) {
            const std::string key = it->first.Scalar();
            const std::string p = join(path, key);
            if (!seen.insert(key).second) {
                fail(it->first, p, "duplicate key");
                continue;
            }
            if (!known.empty() && !known.count(key)) {
                std::string list;
                for (const auto& k : known)
                    list += (list.empty() ? "" : ", ") + k;
                fail(it->first, p, "unknown key (expected one of: " + list + ")");
                continue;
            }
            on(key, it->second, p);
        }
    }

    bool scalar(const YAML::Node& n, const std::string& path, std::string& out) {
        if (!n.IsScalar()) {
            fail(n, path, "expected a string");
            return false;
        }
        out = n.Scalar();
        return true;
    }

    void string_value(const YAML::Node& n, const std::string& path, std::string& out) {
        scalar(n, path, out);
    }

    void size_value(const YAML::Node& n, const std::string& path, std::size_t& out) {
        std::string s;
        if (!scalar(n, path, s)) return;
        auto v = parse_size(s);
        if (!v) return fail(n, path, "expected a size such as 65536, 64KiB, 128MiB or 1GiB, got '" + s + "'");
        out = *v;
    }

    void count_value(const YAML::Node& n, const std::string& path, std::size_t& out) {
        std::string s;
        if (!scalar(n, path, s)) return;
        std::size_t v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size())
            return fail(n, path, "expected a non-negative integer, got '" + s + "'");
        out = v;
    }

    void bool_value(const YAML::Node& n, const std::string& path, bool& out) {
        std::string b;
        if (!scalar(n, path, b)) return;
        if (b == "true")
            out = true;
        else if (b == "false")
            out = false;
        else
            fail(n, path, "expected true or false, got '" + b + "'");
    }

    /// A number within [lo, hi] (`open_lo`: above lo).
    void number_value(const YAML::Node& n, const std::string& path, double& out, double lo, double hi,
                      bool open_lo) {
        std::string sv;
        if (!scalar(n, path, sv)) return;
        char* end = nullptr;
        const double d = std::strtod(sv.c_str(), &end);
        if (end == sv.c_str() || *end != '\0' || !((open_lo ? d > lo : d >= lo) && d <= hi))
            return fail(n, path,
                        std::string("expected a number in ") + (open_lo ? "(" : "[") + number_text(lo) +
                            ", " + number_text(hi) + "], got '" + sv + "'");
        out = d;
    }
    static std::string number_text(double d) {
        std::ostringstream o;
        o << d;
        return o.str();
    }

    template <class Duration>
    void duration_value(const YAML::Node& n, const std::string& path, Duration& out) {
        std::string s;
        if (!scalar(n, path, s)) return;
        auto v = parse_duration(s);
        if (!v) return fail(n, path, "expected a duration such as 250ms, 10s, 15m or 1h, got '" + s + "'");
        if (v->count() <= 0) return fail(n, path, "must be positive");
        out = std::chrono::duration_cast<Duration>(*v);
        if (out.count() == 0) fail(n, path, "too short for this setting's unit");
    }

    /// A secret (key, token, HMAC secret) must not be the placeholder check-config prints in
    /// their place: loading that output again must not install "<redacted>" as a credential.
    void refuse_placeholder(const YAML::Node& n, const std::string& path, const std::string& value) {
        if (value == redacted_placeholder)
            fail(n, path,
                 std::string(redacted_placeholder) +
                     " is what check-config prints in place of a secret, not a secret: put the real "
                     "value here");
    }
    void secret_list(const YAML::Node& n, const std::string& path, std::vector<std::string>& out) {
        string_list(n, path, out);
        for (std::size_t i = 0; i < out.size(); ++i)
            refuse_placeholder(n.IsSequence() ? n[i] : n, path + "[" + std::to_string(i) + "]", out[i]);
    }

    void string_list(const YAML::Node& n, const std::string& path, std::vector<std::string>& out) {
        out.clear();
        if (n.IsScalar()) {
            out.push_back(n.Scalar());
            return;
        }
        if (!n.IsSequence()) {
            if (!n.IsNull()) fail(n, path, "expected a list of strings");
            return;
        }
        for (std::size_t i = 0; i < n.size(); ++i) {
            std::string s;
            if (scalar(n[i], path + "[" + std::to_string(i) + "]", s)) out.push_back(std::move(s));
        }
    }

    /// Reads a mapping of the schema (the whole file, or a section such as `limits`): each key
    /// is a setting, or a section of them; every other key is reported.
    void section(const YAML::Node& n, const std::string& path, config& c);

    void auth(const YAML::Node& n, const std::string& path, auth_config& a) {
        if (n.IsScalar()) { // shorthand: `auth: none`
            auth_kind(n, path, a.type);
            if (a.type != auth_type::none)
                fail(n, path, "auth '" + n.Scalar() + "' needs secrets: use {type, secrets}");
            return;
        }
        bool have_type = false;
        mapping(n, path, {"type", "secrets", "tokens", "tolerance"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "type")
                        have_type = auth_kind(v, p, a.type);
                    else if (key == "secrets" || key == "tokens")
                        secret_list(v, p, a.secrets);
                    else if (key == "tolerance")
                        duration_value(v, p, a.tolerance);
                });
        if (!n.IsMap()) return;
        if (!have_type)
            return fail(n, path + ".type",
                        "missing (none, bearer, github, stripe, slack, standard-webhooks)");
        if (a.type != auth_type::none && a.secrets.empty())
            fail(n, path + ".secrets",
                 "at least one secret (token for bearer) is required for auth type '" +
                     std::string(auth_type_name(a.type)) + "'");
        for (const auto& s : a.secrets)
            if (s.empty()) fail(n, path + ".secrets", "a secret is empty");
    }

    bool auth_kind(const YAML::Node& n, const std::string& path, auth_type& t) {
        std::string s;
        if (!scalar(n, path, s)) return false;
        static const std::map<std::string, auth_type> kinds{
            {"none", auth_type::none},     {"bearer", auth_type::bearer},
            {"github", auth_type::github}, {"stripe", auth_type::stripe},
            {"slack", auth_type::slack},   {"standard-webhooks", auth_type::standard_webhooks}};
        auto it = kinds.find(s);
        if (it == kinds.end()) {
            fail(n, path,
                 "unknown auth type '" + s + "' (none, bearer, github, stripe, slack, standard-webhooks)");
            return false;
        }
        t = it->second;
        return true;
    }

    void sources(const YAML::Node& n, const std::string& path, std::map<std::string, source_config>& out) {
        out.clear();
        mapping(n, path, {}, [&](const std::string& name, const YAML::Node& v, const std::string& p) {
            source_config s;
            s.name = name;
            s.group = name;
            bool valid_name = !name.empty();
            for (const char ch : name)
                if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
                    valid_name = false;
            if (!valid_name) fail(n, p, "a source name may only hold letters, digits, '-', '_' and '.'");
            if (v.IsMap() && v["timestamp_field"])
                fail(v["timestamp_field"], p + ".timestamp_field",
                     "is not a setting (event timestamps are not read from webhooks): remove it");
            mapping(
                v, p,
                {"auth", "message_field", "timestamp_field", "group", "group_field", "delivery_id_header"},
                [&](const std::string& key, const YAML::Node& sv, const std::string& sp) {
                    if (key == "auth")
                        auth(sv, sp, s.auth);
                    else if (key == "message_field") {
                        string_list(sv, sp, s.message_fields);
                        if (s.message_fields.empty()) fail(sv, sp, "at least one field is required");
                    } else if (key == "group")
                        string_value(sv, sp, s.group);
                    else if (key == "group_field")
                        string_value(sv, sp, s.group_field);
                    else if (key == "delivery_id_header")
                        string_value(sv, sp, s.delivery_id_header);
                });
            out.emplace(name, std::move(s));
        });
    }

    void patterns(const YAML::Node& n, const std::string& path, std::vector<core::match::pattern>& out) {
        out.clear();
        if (!n.IsSequence()) {
            if (!n.IsNull()) fail(n, path, "expected a list of patterns");
            return;
        }
        for (std::size_t i = 0; i < n.size(); ++i) {
            const YAML::Node& item = n[i];
            const std::string p = path + "[" + std::to_string(i) + "]";
            core::match::pattern pat;
            bool has_name = false, has_regex = false;
            std::string cls = "error";
            mapping(item, p, {"name", "class", "regex", "caseless", "description"},
                    [&](const std::string& key, const YAML::Node& v, const std::string& kp) {
                        if (key == "name")
                            has_name = scalar(v, kp, pat.name);
                        else if (key == "class") {
                            if (scalar(v, kp, cls) && cls != "error" && cls != "warn" && cls != "info")
                                fail(v, kp, "expected error, warn or info, got '" + cls + "'");
                        } else if (key == "regex")
                            has_regex = scalar(v, kp, pat.regex);
                        else if (key == "caseless") {
                            std::string b;
                            if (scalar(v, kp, b)) {
                                if (b == "true")
                                    pat.caseless = true;
                                else if (b == "false")
                                    pat.caseless = false;
                                else
                                    fail(v, kp, "expected true or false");
                            }
                        } else if (key == "description")
                            string_value(v, kp, pat.description);
                    });
            if (!item.IsMap()) continue;
            if (!has_name) fail(item, p + ".name", "missing");
            if (!has_regex) fail(item, p + ".regex", "missing");
            pat.cls = cls == "warn"   ? core::match::pattern_class::warn
                      : cls == "info" ? core::match::pattern_class::info
                                      : core::match::pattern_class::error;
            if (pat.regex.starts_with("(?i)")) {
                pat.caseless = true;
                pat.regex.erase(0, 4);
            }
            const YAML::Mark m = item.Mark();
            pat.origin = file_ + ":" + std::to_string(m.line + 1);
            pattern_nodes.push_back(item);
            out.push_back(std::move(pat));
        }
    }

    std::vector<YAML::Node> pattern_nodes; ///< parallel to config::patterns, for later checks

    std::size_t problems() const noexcept { return problems_.size(); }

private:
    std::string file_;
    std::vector<problem>& problems_;
};

} // namespace

namespace {
parse_result parse_onto(config c, std::string_view yaml, std::string_view file, bool compile_patterns);
} // namespace

namespace {
std::string duration_text(milliseconds ms) {
    const auto n = ms.count();
    if (n % 3'600'000 == 0) return std::to_string(n / 3'600'000) + "h";
    if (n % 60'000 == 0) return std::to_string(n / 60'000) + "m";
    if (n % 1000 == 0) return std::to_string(n / 1000) + "s";
    return std::to_string(n) + "ms";
}
/// A store URL with its password replaced by the placeholder.
std::string redacted_store(const std::string& url) {
    const std::size_t at = url.rfind('@');
    if (at == std::string::npos || !url.starts_with("redis://")) return url;
    const std::size_t colon = url.find(':', 8);
    const std::size_t from = colon != std::string::npos && colon < at ? colon + 1 : 8;
    return url.substr(0, from) + std::string(redacted_placeholder) + url.substr(at);
}
/// Secrets are printed as one placeholder each (how many there are shows; loading it is refused).
std::vector<std::string> redacted(const std::vector<std::string>& secrets) {
    return std::vector<std::string>(secrets.size(), std::string(redacted_placeholder));
}
} // namespace

// --- the schema: every key, read, printed, compared and documented from one table ---------------

namespace {
struct setting {
    setting_info info;
    std::function<void(reader&, const YAML::Node&, const std::string&, config&)> read;
    std::function<void(YAML::Emitter&, const config&)> write;
    std::function<bool(const config&, const config&)> same;
    /// The value's bounds, whatever set it (the file, FAULTLINE_* variables, flags): why not.
    std::function<std::optional<std::string>(const config&)> check;
    /// Whether check-config prints it (null: always).
    std::function<bool(const config&)> shown;
};

// An accessor of one field, for a config and a const config alike.
#define FIELD(expr)                                                                                          \
    [](auto& c) -> auto& {                                                                                   \
        return c.expr;                                                                                       \
    }

constexpr std::string_view reloaded; // applied by a reload

setting_info about(std::string_view path, std::string_view kind, std::string_view restart,
                   std::string_view what) {
    return {path, kind, restart, what};
}

template <class F>
std::function<bool(const config&, const config&)> same_of(F f) {
    return [f](const config& a, const config& b) { return f(a) == f(b); };
}

template <class F>
std::function<std::optional<std::string>(const config&)> bounds(F f, std::size_t min, std::size_t max) {
    if (min == 0 && max == SIZE_MAX) return {};
    return [f, min, max](const config& c) -> std::optional<std::string> {
        const std::size_t v = f(c);
        if (v < min) return "must be at least " + std::to_string(min);
        if (v > max) return "must be at most " + std::to_string(max);
        return std::nullopt;
    };
}

template <class F>
setting string_key(setting_info i, F f) {
    return {
        i,
        [f](reader& r, const YAML::Node& n, const std::string& p, config& c) { r.string_value(n, p, f(c)); },
        [f](YAML::Emitter& e, const config& c) { e << f(c); },
        same_of(f),
        {},
        {}};
}
template <class F>
setting count_key(setting_info i, F f, std::size_t min = 0, std::size_t max = SIZE_MAX) {
    return {
        i,
        [f](reader& r, const YAML::Node& n, const std::string& p, config& c) { r.count_value(n, p, f(c)); },
        [f](YAML::Emitter& e, const config& c) { e << f(c); },
        same_of(f),
        bounds(f, min, max),
        {}};
}
template <class F>
setting size_key(setting_info i, F f, std::size_t min = 0, std::size_t max = SIZE_MAX) {
    return {
        i,
        [f](reader& r, const YAML::Node& n, const std::string& p, config& c) { r.size_value(n, p, f(c)); },
        [f](YAML::Emitter& e, const config& c) { e << f(c); },
        same_of(f),
        bounds(f, min, max),
        {}};
}
template <class F>
setting duration_key(setting_info i, F f) {
    return {i,
            [f](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                r.duration_value(n, p, f(c));
            },
            [f](YAML::Emitter& e, const config& c) {
                e << duration_text(std::chrono::duration_cast<milliseconds>(f(c)));
            },
            same_of(f),
            {},
            {}};
}
/// A number within [lo, hi] (`open_lo`: above lo).
template <class F>
setting number_key(setting_info i, F f, double lo, double hi, bool open_lo) {
    return {i,
            [f, lo, hi, open_lo](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                r.number_value(n, p, f(c), lo, hi, open_lo);
            },
            [f](YAML::Emitter& e, const config& c) { e << f(c); },
            same_of(f),
            {},
            {}};
}
template <class F>
setting list_key(setting_info i, F f) {
    return {
        i,
        [f](reader& r, const YAML::Node& n, const std::string& p, config& c) { r.string_list(n, p, f(c)); },
        [f](YAML::Emitter& e, const config& c) { e << YAML::Flow << f(c); },
        same_of(f),
        {},
        {}};
}

void write_auth(YAML::Emitter& e, const auth_config& a, bool tolerance) {
    e << YAML::BeginMap;
    e << YAML::Key << "type" << YAML::Value << std::string(auth_type_name(a.type));
    if (a.type != auth_type::none) {
        e << YAML::Key << "secrets" << YAML::Value << YAML::Flow << redacted(a.secrets);
        if (tolerance) e << YAML::Key << "tolerance" << YAML::Value << duration_text(a.tolerance);
    }
    e << YAML::EndMap;
}

std::vector<setting> make_schema() {
    std::vector<setting> s;
    const std::size_t max_threads = config::max_threads;
    s.push_back(
        string_key(about("listen", "host:port", "listen", "where the HTTP API and the ingest routes listen"),
                   FIELD(listen)));
    s.push_back(string_key(about("admin_listen", "host:port", "admin_listen",
                                 "a second listener serving only /metrics, /healthz, /readyz (empty: none)"),
                           FIELD(admin_listen)));
    s.push_back(count_key(
        about("io_threads", "count", "io_threads/workers", "HTTP I/O threads (0: one per two cores)"),
        FIELD(io_threads), 0, max_threads));
    s.push_back(count_key(about("workers", "count", "io_threads/workers", "worker threads (0: one per core)"),
                          FIELD(workers), 0, max_threads));
    s.push_back(
        string_key(about("state_dir", "path", "state",
                         "counts, templates and the journal of acknowledged deliveries (\"\": memory only)"),
                   FIELD(state_dir)));
    s.push_back(
        duration_key(about("snapshot_interval", "duration", "state",
                           "how often the state is snapshotted (the journal keeps what came between)"),
                     FIELD(snapshot_interval)));
    {
        setting t = string_key(about("reload_token", "secret", "reload_token",
                                     "POST /-/reload needs it as a bearer token (empty: loopback only)"),
                               FIELD(reload_token));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.string_value(n, p, c.reload_token);
            r.refuse_placeholder(n, p, c.reload_token);
        };
        t.write = [](YAML::Emitter& e, const config&) { e << std::string(redacted_placeholder); };
        t.shown = [](const config& c) { return !c.reload_token.empty(); };
        s.push_back(std::move(t));
    }
    for (const bool cert : {true, false}) {
        setting t{about(cert ? "tls.cert" : "tls.key", "path", "tls",
                        cert ? "PEM certificate chain: HTTPS on `listen` (with tls.key)"
                             : "PEM private key of tls.cert"),
                  [cert](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                      std::string file;
                      if (!r.scalar(n, p, file)) return;
                      if (!file.empty()) {
                          std::FILE* f = std::fopen(file.c_str(), "rb");
                          if (!f) return r.fail(n, p, "cannot read '" + file + "'");
                          std::fclose(f);
                      }
                      (cert ? c.tls.cert : c.tls.key) = file;
                  },
                  [cert](YAML::Emitter& e, const config& c) { e << (cert ? c.tls.cert : c.tls.key); },
                  [cert](const config& a, const config& b) {
                      return cert ? a.tls.cert == b.tls.cert : a.tls.key == b.tls.key;
                  },
                  {},
                  [](const config& c) { return !c.tls.cert.empty(); }};
        s.push_back(std::move(t));
    }
    // A head the HTTP parser can hold (16-bit field sizes).
    s.push_back(size_key(
        about("limits.header_bytes", "size", "limits", "largest request head (and trailer section): 431"),
        FIELD(limits.header_bytes), 1024, limits_config::max_header_bytes));
    s.push_back(size_key(about("limits.body_bytes", "size", "limits", "largest request body: 413"),
                         FIELD(limits.body_bytes), 1024));
    s.push_back(size_key(about("limits.decompressed_bytes", "size", "limits",
                               "most bytes one request may inflate to (gzip, its records)"),
                         FIELD(limits.decompressed_bytes), 1024));
    s.push_back(size_key(about("limits.message_bytes", "size", "limits",
                               "longer messages are counted, matched and masked on this prefix"),
                         FIELD(limits.message_bytes), 256));
    s.push_back(
        duration_key(about("limits.header_timeout", "duration", "limits", "time to send a request head: 408"),
                     FIELD(limits.header_timeout)));
    s.push_back(
        duration_key(about("limits.body_timeout", "duration", "limits", "time to send a request body: 408"),
                     FIELD(limits.body_timeout)));
    s.push_back(duration_key(about("limits.idle_timeout", "duration", "limits",
                                   "an idle keep-alive connection is closed after it"),
                             FIELD(limits.idle_timeout)));
    s.push_back(count_key(
        about("limits.max_connections", "count", "limits",
              "open API connections (the admin listener's do not count against it); beyond, a new one is "
              "closed at once (counted as refused)"),
        FIELD(limits.max_connections), 1));
    s.push_back(size_key(about("limits.inflight_bytes", "size", "limits",
                               "bodies and their decoding in memory at once: beyond, 503 + Retry-After"),
                         FIELD(limits.inflight_bytes), 1024));
    s.push_back(count_key(about("limits.queue_capacity", "count", "limits",
                                "deliveries admitted and not finished: beyond, 429"),
                          FIELD(limits.queue_capacity), 1));
    s.push_back(duration_key(about("limits.queue_wait", "duration", "limits",
                                   "while the oldest queued delivery has waited longer, new ones get 429"),
                             FIELD(limits.queue_wait)));
    s.push_back(duration_key(about("limits.shutdown_grace", "duration", "limits",
                                   "on SIGTERM, how long in-flight requests may finish"),
                             FIELD(limits.shutdown_grace)));
    s.push_back(duration_key(
        about("limits.retry_after", "duration", "limits", "the Retry-After of 429 and 503 answers"),
        FIELD(limits.retry_after)));
    s.push_back(count_key(about("metrics.max_groups", "count", "metrics.max_groups",
                                "distinct `group` label values in /metrics; the rest are \"other\""),
                          FIELD(max_groups), 1));
    {
        setting t = list_key(about("firehose.access_keys", "secrets", reloaded,
                                   "X-Amz-Firehose-Access-Key values accepted (empty: none required)"),
                             FIELD(firehose.access_keys));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.secret_list(n, p, c.firehose.access_keys);
            for (const auto& k : c.firehose.access_keys)
                if (k.empty()) r.fail(n, p, "an access key is empty");
        };
        t.write = [](YAML::Emitter& e, const config& c) {
            e << YAML::Flow << redacted(c.firehose.access_keys);
        };
        s.push_back(std::move(t));
    }
    s.push_back(count_key(about("firehose.dedupe_capacity", "count", "firehose.dedupe",
                                "delivery ids remembered (Firehose request ids, webhook delivery ids)"),
                          FIELD(firehose.dedupe_capacity)));
    s.push_back(duration_key(
        about("firehose.dedupe_ttl", "duration", "firehose.dedupe",
              "how long a delivery id is remembered: a redelivery within it is not counted again"),
        FIELD(firehose.dedupe_ttl)));
    {
        setting t = string_key(
            about("dedupe.store", "redis:// URL", "dedupe",
                  "delivery ids shared by every replica (Redis or Valkey; empty: this process only)"),
            FIELD(dedupe.store));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.string_value(n, p, c.dedupe.store);
            if (c.dedupe.store.empty()) return;
            std::string why;
            const auto e = parse_store_url(c.dedupe.store, why);
            if (!e) return r.fail(n, p, why);
            r.refuse_placeholder(n, p, e->password);
        };
        t.write = [](YAML::Emitter& e, const config& c) { e << redacted_store(c.dedupe.store); };
        s.push_back(std::move(t));
    }
    s.push_back(
        duration_key(about("dedupe.store_timeout", "duration", "dedupe",
                           "the longest a request waits for the store (then the local table, counted)"),
                     FIELD(dedupe.store_timeout)));
    s.push_back(duration_key(about("dedupe.in_flight_ttl", "duration", "dedupe",
                                   "how long a replica's claim on an id outlives it"),
                             FIELD(dedupe.in_flight_ttl)));
    {
        setting t =
            list_key(about("cluster.peers", "host:port list", "cluster",
                           "the replicas GET /v1/templates?scope=cluster asks (a name may resolve to all)"),
                     FIELD(cluster.peers));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.string_list(n, p, c.cluster.peers);
            for (const auto& peer : c.cluster.peers) {
                const std::size_t colon = peer.rfind(':');
                int port = 0;
                const char* end = peer.data() + peer.size();
                if (colon == std::string::npos || colon == 0 ||
                    std::from_chars(peer.data() + colon + 1, end, port).ptr != end || port < 1 ||
                    port > 65535)
                    r.fail(n, p, "'" + peer + "': expected host:port");
            }
        };
        s.push_back(std::move(t));
    }
    s.push_back(duration_key(about("cluster.timeout", "duration", "cluster", "how long each peer is given"),
                             FIELD(cluster.timeout)));
    s.push_back({about("otlp.enabled", "bool", reloaded, "POST /v1/logs (OTLP/HTTP logs) is served"),
                 [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                     r.bool_value(n, p, c.otlp.enabled);
                 },
                 [](YAML::Emitter& e, const config& c) { e << c.otlp.enabled; },
                 same_of(FIELD(otlp.enabled)),
                 {},
                 {}});
    s.push_back({about("otlp.auth", "auth", reloaded, "none, or {type: bearer, tokens: [...]}"),
                 [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                     r.auth(n, p, c.otlp.auth);
                     if (c.otlp.auth.type != auth_type::none && c.otlp.auth.type != auth_type::bearer)
                         r.fail(n, p,
                                "OTLP exporters authenticate with a header: none or bearer, not " +
                                    std::string(auth_type_name(c.otlp.auth.type)));
                 },
                 [](YAML::Emitter& e, const config& c) { write_auth(e, c.otlp.auth, false); },
                 same_of(FIELD(otlp.auth)),
                 {},
                 {}});
    s.push_back(list_key(about("otlp.group_attributes", "list", reloaded,
                               "resource attributes naming a record's group, the first present wins"),
                         FIELD(otlp.group_attributes)));
    {
        setting t = string_key(
            about("otlp.group", "string", reloaded, "the group when none of those attributes is set"),
            FIELD(otlp.group));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.string_value(n, p, c.otlp.group);
            if (c.otlp.group.empty()) r.fail(n, p, "must not be empty");
        };
        s.push_back(std::move(t));
    }
    {
        setting t = list_key(about("otlp.message_field", "list", reloaded,
                                   "keys of a map body holding the message, the first present wins"),
                             FIELD(otlp.message_fields));
        t.read = [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
            r.string_list(n, p, c.otlp.message_fields);
            if (c.otlp.message_fields.empty()) r.fail(n, p, "at least one field is required");
        };
        s.push_back(std::move(t));
    }
    s.push_back(
        {about("sources", "map", reloaded,
               "webhook sources by name (POST /v1/webhook/{name}): auth, message_field, group, "
               "group_field, delivery_id_header"),
         [](reader& r, const YAML::Node& n, const std::string& p, config& c) { r.sources(n, p, c.sources); },
         [](YAML::Emitter& e, const config& c) {
             e << YAML::BeginMap;
             for (const auto& [name, src] : c.sources) {
                 e << YAML::Key << name << YAML::Value << YAML::BeginMap;
                 e << YAML::Key << "auth" << YAML::Value;
                 write_auth(e, src.auth, true);
                 e << YAML::Key << "message_field" << YAML::Value << YAML::Flow << src.message_fields;
                 e << YAML::Key << "group" << YAML::Value << src.group;
                 if (!src.group_field.empty())
                     e << YAML::Key << "group_field" << YAML::Value << src.group_field;
                 if (!src.delivery_id_header.empty())
                     e << YAML::Key << "delivery_id_header" << YAML::Value << src.delivery_id_header;
                 e << YAML::EndMap;
             }
             e << YAML::EndMap;
         },
         same_of(FIELD(sources)),
         {},
         {}});
    s.push_back(
        {about("templates.mode", "drain or exact", "templates",
               "drain: error messages mined into templates; exact: the masked message is the template"),
         [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
             std::string mode;
             if (!r.scalar(n, p, mode)) return;
             if (mode == "drain")
                 c.templates.mine = true;
             else if (mode == "exact")
                 c.templates.mine = false;
             else
                 r.fail(n, p, "expected drain or exact, got '" + mode + "'");
         },
         [](YAML::Emitter& e, const config& c) { e << (c.templates.mine ? "drain" : "exact"); },
         same_of(FIELD(templates.mine)),
         {},
         {}});
    s.push_back(count_key(about("templates.depth", "count", "templates", "Drain: depth of the parse tree"),
                          FIELD(templates.mining.drain.depth), 3));
    s.push_back(number_key(about("templates.similarity", "number", "templates",
                                 "Drain: the least similarity (0, 1] for a message to join a template"),
                           FIELD(templates.mining.drain.similarity), 0.0, 1.0, true));
    s.push_back(number_key(about("templates.variable_weight", "number", "templates",
                                 "Drain: how much a variable token counts in the similarity, [0, 1]"),
                           FIELD(templates.mining.drain.variable_weight), 0.0, 1.0, false));
    s.push_back({about("templates.settled_after", "count", "templates",
                       "Drain: events after which a template no longer takes a new plain word"),
                 [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                     std::size_t k = 0;
                     const std::size_t before = r.problems();
                     r.count_value(n, p, k);
                     if (r.problems() == before) c.templates.mining.drain.settled_after = k;
                 },
                 [](YAML::Emitter& e, const config& c) { e << c.templates.mining.drain.settled_after; },
                 same_of(FIELD(templates.mining.drain.settled_after)),
                 {},
                 {}});
    s.push_back(
        count_key(about("templates.max_children", "count", "templates", "Drain: children of a tree node"),
                  FIELD(templates.mining.drain.max_children), 2));
    s.push_back(count_key(about("templates.max_templates", "count", "templates",
                                "templates kept; the least recently seen are evicted beyond it"),
                          FIELD(templates.mining.drain.max_clusters), 1));
    s.push_back(count_key(about("templates.max_tokens", "count", "templates", "tokens of a message mined"),
                          FIELD(templates.mining.drain.max_tokens), 1));
    s.push_back({about("templates.warmup", "duration", "templates",
                       "templates first seen this long after the start are \"new\" (0: from the start)"),
                 [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
                     std::string sv;
                     if (!r.scalar(n, p, sv)) return;
                     if (sv == "0")
                         c.templates.mining.warmup_ms = 0;
                     else if (auto d = parse_duration(sv))
                         c.templates.mining.warmup_ms = d->count();
                     else
                         r.fail(n, p, "expected a duration such as 10m (0: no warm-up), got '" + sv + "'");
                 },
                 [](YAML::Emitter& e, const config& c) {
                     e << (c.templates.mining.warmup_ms
                               ? duration_text(milliseconds(c.templates.mining.warmup_ms))
                               : std::string("0"));
                 },
                 same_of(FIELD(templates.mining.warmup_ms)),
                 {},
                 {}});
    s.push_back(count_key(about("templates.metrics_top_k", "count", "templates",
                                "templates exported as faultline_template_events_total"),
                          FIELD(templates.metrics_top_k)));
    s.push_back(
        {about("patterns", "list", reloaded,
               "the named error patterns: name, class (error, warn, info), regex, caseless, description"),
         [](reader& r, const YAML::Node& n, const std::string& p, config& c) {
             r.patterns(n, p, c.patterns);
         },
         [](YAML::Emitter& e, const config& c) {
             e << YAML::BeginSeq;
             for (const auto& pat : c.patterns) {
                 e << YAML::BeginMap;
                 e << YAML::Key << "name" << YAML::Value << pat.name;
                 e << YAML::Key << "class" << YAML::Value << std::string(core::match::class_name(pat.cls));
                 e << YAML::Key << "regex" << YAML::Value << YAML::SingleQuoted << pat.regex;
                 if (pat.caseless) e << YAML::Key << "caseless" << YAML::Value << true;
                 if (!pat.description.empty())
                     e << YAML::Key << "description" << YAML::Value << pat.description;
                 e << YAML::EndMap;
             }
             e << YAML::EndSeq;
         },
         same_of(FIELD(patterns)),
         {},
         {}});
    return s;
}
#undef FIELD

const std::vector<setting>& schema_table() {
    static const std::vector<setting> table = make_schema();
    return table;
}

const setting* find_setting(std::string_view path) {
    for (const auto& s : schema_table())
        if (s.info.path == path) return &s;
    return nullptr;
}

/// The key under `section` a schema path starts with ("limits.body_bytes" under "limits":
/// "body_bytes"; under "": "limits"), or nothing.
std::optional<std::string> child_key(std::string_view path, std::string_view section) {
    if (!section.empty()) {
        if (!path.starts_with(section) || path.size() <= section.size() || path[section.size()] != '.')
            return std::nullopt;
        path.remove_prefix(section.size() + 1);
    }
    return std::string(path.substr(0, path.find('.')));
}

} // namespace

void reader::section(const YAML::Node& n, const std::string& path, config& c) {
    std::set<std::string> known;
    for (const auto& s : schema_table())
        if (auto k = child_key(s.info.path, path)) known.insert(std::move(*k));
    mapping(n, path, known, [&](const std::string&, const YAML::Node& v, const std::string& p) {
        if (const setting* s = find_setting(p))
            s->read(*this, v, p, c); // its type; its bounds are validate()'s
        else
            section(v, p, c);
    });
}

std::vector<setting_info> schema() {
    std::vector<setting_info> out;
    for (const auto& s : schema_table())
        out.push_back(s.info);
    return out;
}

std::vector<std::string> needs_restart(const config& now, const config& next) {
    std::vector<std::string> out;
    for (const auto& s : schema_table())
        if (!s.info.restart.empty() && !s.same(now, next) &&
            std::find(out.begin(), out.end(), s.info.restart) == out.end())
            out.emplace_back(s.info.restart);
    return out;
}

std::string schema_markdown() {
    const config d = default_config();
    std::string out = "| key | type | default | a reload | what it does |\n|---|---|---|---|---|\n";
    for (const auto& s : schema_table()) {
        std::string value;
        if (s.info.kind == "map" || s.info.path == "patterns") {
            value = "see `config/default.yaml`";
        } else if (s.shown && !s.shown(d)) {
            value = "(none)";
        } else {
            YAML::Emitter e; // one line: maps and lists in flow style, numbers as written
            e.SetMapFormat(YAML::Flow);
            e.SetSeqFormat(YAML::Flow);
            e.SetDoublePrecision(15);
            s.write(e, d);
            value = "`" + std::string(e.c_str()) + "`";
            if (value == "``") value = "`\"\"`";
        }
        auto cell = [](std::string_view text) { // a '|' would end the cell
            std::string c;
            for (const char ch : text)
                c += ch == '|' ? std::string("\\|") : std::string(1, ch);
            return c;
        };
        out += "| `" + std::string(s.info.path) + "` | " + cell(s.info.kind) + " | " + cell(value) + " | " +
               (s.info.restart.empty() ? "applies it" : "needs a restart") + " | " + cell(s.info.what) +
               " |\n";
    }
    return out;
}

std::string dump(const config& c) {
    YAML::Emitter e;
    e << YAML::BeginMap;
    std::vector<std::string> open; // the sections being printed, outermost first
    for (const auto& s : schema_table()) {
        if (s.shown && !s.shown(c)) continue;
        std::vector<std::string> parts;
        for (std::string_view rest = s.info.path;;) {
            const std::size_t dot = rest.find('.');
            parts.emplace_back(rest.substr(0, dot));
            if (dot == std::string_view::npos) break;
            rest.remove_prefix(dot + 1);
        }
        std::size_t shared = 0;
        while (shared < open.size() && shared + 1 < parts.size() && open[shared] == parts[shared])
            ++shared;
        for (; open.size() > shared; open.pop_back())
            e << YAML::EndMap;
        for (; open.size() + 1 < parts.size(); open.push_back(parts[open.size()]))
            e << YAML::Key << parts[open.size()] << YAML::Value << YAML::BeginMap;
        e << YAML::Key << parts.back() << YAML::Value;
        s.write(e, c);
    }
    for (; !open.empty(); open.pop_back())
        e << YAML::EndMap;
    e << YAML::EndMap;
    return std::string(e.c_str()) + "\n";
}

std::vector<problem> validate(const config& c) {
    std::vector<problem> out;
    auto no = [&out](std::string path, std::string message) {
        out.push_back({"", 0, 0, std::move(path), std::move(message)});
    };
    for (const auto& s : schema_table())
        if (s.check)
            if (auto why = s.check(c)) no(std::string(s.info.path), std::move(*why));
    if (c.tls.cert.empty() != c.tls.key.empty()) no("tls", "cert and key go together (both, or neither)");
    if (c.limits.decompressed_bytes < c.limits.message_bytes)
        no("limits.decompressed_bytes", "must be at least limits.message_bytes");
    // Lists a delivery's journal record carries (it refuses more than 1024 entries on replay).
    constexpr std::size_t max_list = 1024;
    if (c.otlp.group_attributes.size() > max_list) no("otlp.group_attributes", "at most 1024 entries");
    if (c.otlp.message_fields.size() > max_list) no("otlp.message_field", "at most 1024 entries");
    for (const auto& [name, src] : c.sources)
        if (src.message_fields.size() > max_list)
            no("sources." + name + ".message_field", "at most 1024 entries");
    return out;
}

parse_result parse(std::string_view yaml, std::string_view file, bool compile_patterns) {
    return parse_onto(default_config(), yaml, file, compile_patterns);
}

namespace {
parse_result parse_onto(config c, std::string_view yaml, std::string_view file, bool compile_patterns) {
    parse_result r;
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        r.problems.push_back({std::string(file), e.mark.is_null() ? 0 : e.mark.line + 1,
                              e.mark.is_null() ? 0 : e.mark.column + 1, "", "invalid YAML: " + e.msg});
        return r;
    }
    reader rd(file, r.problems);
    if (!root.IsNull() && !root.IsMap()) {
        rd.fail(root, "", "the configuration must be a mapping");
        return r;
    }
    rd.section(root, "", c);
    // The rules on values (bounds, keys that go together), whatever set them, reported at the
    // place of the key in the file; a key whose value did not read is not reported twice.
    for (auto& p : validate(c)) {
        if (std::any_of(r.problems.begin(), r.problems.end(),
                        [&](const problem& q) { return q.path == p.path; }))
            continue;
        YAML::Node at = root; // reset(), not =: a Node's assignment writes into the tree
        for (std::string_view rest = p.path; at && !rest.empty();) {
            const std::size_t dot = rest.find('.');
            const std::string key(rest.substr(0, dot));
            at.reset(at.IsMap() ? static_cast<const YAML::Node&>(at)[key] : YAML::Node());
            rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
        }
        p.file = std::string(file);
        if (at && !at.Mark().is_null()) {
            p.line = at.Mark().line + 1;
            p.column = at.Mark().column + 1;
        }
        r.problems.push_back(std::move(p));
    }
    core::result<std::shared_ptr<const core::match::pattern_set>> compiled =
        std::shared_ptr<const core::match::pattern_set>();
    if (compile_patterns && r.problems.empty()) compiled = core::match::pattern_set::compile(c.patterns);
    if (compile_patterns && r.problems.empty() && !compiled) {
        // Report every pattern that does not compile on its own, at its place in the file, and
        // duplicate names; if each compiles alone, report the set's error as it is.
        const std::size_t before = r.problems.size();
        std::set<std::string> names;
        for (std::size_t i = 0; i < c.patterns.size(); ++i) {
            const auto& p = c.patterns[i];
            const std::string path = "patterns[" + std::to_string(i) + "]";
            if (!names.insert(p.name).second)
                rd.fail(rd.pattern_nodes[i], path + ".name", "duplicate pattern name '" + p.name + "'");
            auto one = core::match::pattern_set::compile({p});
            if (!one) {
                std::string why = one.error().message;
                if (auto k = why.find("regex rejected: "); k != std::string::npos) why = why.substr(k + 16);
                rd.fail(rd.pattern_nodes[i]["regex"], path + ".regex",
                        "pattern '" + p.name + "' rejected by Vectorscan: " + why);
            }
        }
        if (r.problems.size() == before) {
            r.problems.push_back({std::string(file), 0, 0, "patterns", compiled.error().message});
        }
    }
    if (r.problems.empty()) {
        r.value = std::move(c);
        if (compiled) r.compiled = *compiled;
    }
    return r;
}

} // namespace

std::string_view default_yaml() {
    return default_config_yaml();
}

config default_config() {
    static const config parsed = [] {
        auto r = parse_onto(config{}, default_yaml(), "<embedded default.yaml>", false);
        if (!r)
            throw std::logic_error("the embedded default configuration is invalid: " +
                                   r.problems.front().to_string());
        return std::move(*r.value);
    }();
    return parsed;
}

} // namespace faultline::config
