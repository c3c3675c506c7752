#include "faultline/config/config.hpp"

#include "faultline/config/defaults.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
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

    void size_value(const YAML::Node& n, const std::string& path, std::size_t& out, std::size_t min = 0,
                    std::size_t max = SIZE_MAX) {
        std::string s;
        if (!scalar(n, path, s)) return;
        auto v = parse_size(s);
        if (!v) return fail(n, path, "expected a size such as 65536, 64KiB, 128MiB or 1GiB, got '" + s + "'");
        if (*v < min) return fail(n, path, "must be at least " + std::to_string(min));
        if (*v > max) return fail(n, path, "must be at most " + std::to_string(max));
        out = *v;
    }

    void count_value(const YAML::Node& n, const std::string& path, std::size_t& out, std::size_t min = 0) {
        std::string s;
        if (!scalar(n, path, s)) return;
        std::size_t v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size())
            return fail(n, path, "expected a non-negative integer, got '" + s + "'");
        if (v < min) return fail(n, path, "must be at least " + std::to_string(min));
        out = v;
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

    void read(const YAML::Node& root, config& c) {
        mapping(root, "",
                {"listen", "admin_listen", "io_threads", "workers", "state_dir", "snapshot_interval",
                 "limits", "metrics", "firehose", "dedupe", "cluster", "otlp", "sources", "patterns",
                 "templates", "tls", "reload_token"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "listen")
                        string_value(v, p, c.listen);
                    else if (key == "admin_listen")
                        string_value(v, p, c.admin_listen);
                    else if (key == "io_threads")
                        count_value(v, p, c.io_threads);
                    else if (key == "workers")
                        count_value(v, p, c.workers);
                    else if (key == "state_dir")
                        string_value(v, p, c.state_dir);
                    else if (key == "snapshot_interval")
                        duration_value(v, p, c.snapshot_interval);
                    else if (key == "templates")
                        templates(v, p, c.templates);
                    else if (key == "tls")
                        tls(v, p, c.tls);
                    else if (key == "reload_token") {
                        string_value(v, p, c.reload_token);
                        refuse_placeholder(v, p, c.reload_token);
                    } else if (key == "limits")
                        limits(v, p, c.limits);
                    else if (key == "metrics")
                        mapping(v, p, {"max_groups"},
                                [&](const std::string&, const YAML::Node& m, const std::string& mp) {
                                    count_value(m, mp, c.max_groups, 1);
                                });
                    else if (key == "firehose")
                        firehose(v, p, c.firehose);
                    else if (key == "dedupe")
                        dedupe(v, p, c.dedupe);
                    else if (key == "cluster")
                        cluster(v, p, c.cluster);
                    else if (key == "otlp")
                        otlp(v, p, c.otlp);
                    else if (key == "sources")
                        sources(v, p, c.sources);
                    else if (key == "patterns")
                        patterns(v, p, c.patterns);
                });
    }

    void limits(const YAML::Node& n, const std::string& path, limits_config& l) {
        mapping(n, path,
                {"header_bytes", "body_bytes", "decompressed_bytes", "message_bytes", "header_timeout",
                 "body_timeout", "idle_timeout", "max_connections", "inflight_bytes", "queue_capacity",
                 "queue_wait", "shutdown_grace", "retry_after"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "header_bytes") // a head the HTTP parser can hold (16-bit field sizes)
                        size_value(v, p, l.header_bytes, 1024, limits_config::max_header_bytes);
                    else if (key == "body_bytes")
                        size_value(v, p, l.body_bytes, 1024);
                    else if (key == "decompressed_bytes")
                        size_value(v, p, l.decompressed_bytes, 1024);
                    else if (key == "message_bytes")
                        size_value(v, p, l.message_bytes, 256);
                    else if (key == "header_timeout")
                        duration_value(v, p, l.header_timeout);
                    else if (key == "body_timeout")
                        duration_value(v, p, l.body_timeout);
                    else if (key == "idle_timeout")
                        duration_value(v, p, l.idle_timeout);
                    else if (key == "max_connections")
                        count_value(v, p, l.max_connections, 1);
                    else if (key == "inflight_bytes")
                        size_value(v, p, l.inflight_bytes, 1024);
                    else if (key == "queue_capacity")
                        count_value(v, p, l.queue_capacity, 1);
                    else if (key == "queue_wait")
                        duration_value(v, p, l.queue_wait);
                    else if (key == "shutdown_grace")
                        duration_value(v, p, l.shutdown_grace);
                    else if (key == "retry_after")
                        duration_value(v, p, l.retry_after);
                });
    }

    void templates(const YAML::Node& n, const std::string& path, templates_config& t) {
        auto& m = t.mining;
        mapping(n, path,
                {"mode", "depth", "similarity", "variable_weight", "settled_after", "max_children",
                 "max_templates", "max_tokens", "warmup", "metrics_top_k"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "mode") {
                        std::string mode;
                        if (scalar(v, p, mode)) {
                            if (mode == "drain")
                                t.mine = true;
                            else if (mode == "exact")
                                t.mine = false;
                            else
                                fail(v, p, "expected drain or exact, got '" + mode + "'");
                        }
                    } else if (key == "depth")
                        count_value(v, p, m.drain.depth, 3);
                    else if (key == "similarity") {
                        std::string sv;
                        if (!scalar(v, p, sv)) return;
                        char* end = nullptr;
                        const double d = std::strtod(sv.c_str(), &end);
                        if (end == sv.c_str() || *end != '\0' || !(d > 0.0 && d <= 1.0))
                            fail(v, p, "expected a number in (0, 1], got '" + sv + "'");
                        else
                            m.drain.similarity = d;
                    } else if (key == "variable_weight") {
                        std::string sv;
                        if (!scalar(v, p, sv)) return;
                        char* end = nullptr;
                        const double d = std::strtod(sv.c_str(), &end);
                        if (end == sv.c_str() || *end != '\0' || !(d >= 0.0 && d <= 1.0))
                            fail(v, p, "expected a number in [0, 1], got '" + sv + "'");
                        else
                            m.drain.variable_weight = d;
                    } else if (key == "settled_after") {
                        std::size_t k = 0;
                        count_value(v, p, k);
                        m.drain.settled_after = k;
                    } else if (key == "max_children")
                        count_value(v, p, m.drain.max_children, 2);
                    else if (key == "max_templates")
                        count_value(v, p, m.drain.max_clusters, 1);
                    else if (key == "max_tokens")
                        count_value(v, p, m.drain.max_tokens, 1);
                    else if (key == "warmup") {
                        std::string sv;
                        if (!scalar(v, p, sv)) return;
                        if (sv == "0")
                            m.warmup_ms = 0;
                        else if (auto d = parse_duration(sv))
                            m.warmup_ms = d->count();
                        else
                            fail(v, p, "expected a duration such as 10m (0: no warm-up), got '" + sv + "'");
                    } else if (key == "metrics_top_k")
                        count_value(v, p, t.metrics_top_k);
                });
    }

    void tls(const YAML::Node& n, const std::string& path, tls_config& t) {
        mapping(n, path, {"cert", "key"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    std::string file;
                    if (!scalar(v, p, file)) return;
                    if (!file.empty()) {
                        std::FILE* f = std::fopen(file.c_str(), "rb");
                        if (!f) return fail(v, p, "cannot read '" + file + "'");
                        std::fclose(f);
                    }
                    (key == "cert" ? t.cert : t.key) = file;
                });
        if (n.IsMap() && t.cert.empty() != t.key.empty())
            fail(n, path, "cert and key go together (both, or neither)");
    }

    void firehose(const YAML::Node& n, const std::string& path, firehose_config& f) {
        mapping(n, path, {"access_keys", "dedupe_capacity", "dedupe_ttl"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "access_keys") {
                        secret_list(v, p, f.access_keys);
                        for (const auto& k : f.access_keys)
                            if (k.empty()) fail(v, p, "an access key is empty");
                    } else if (key == "dedupe_capacity")
                        count_value(v, p, f.dedupe_capacity);
                    else if (key == "dedupe_ttl")
                        duration_value(v, p, f.dedupe_ttl);
                });
    }

    void dedupe(const YAML::Node& n, const std::string& path, dedupe_config& d) {
        mapping(n, path, {"store", "store_timeout", "in_flight_ttl"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "store") {
                        string_value(v, p, d.store);
                        if (d.store.empty()) return;
                        std::string why;
                        const auto e = parse_store_url(d.store, why);
                        if (!e) return fail(v, p, why);
                        refuse_placeholder(v, p, e->password);
                    } else if (key == "store_timeout")
                        duration_value(v, p, d.store_timeout);
                    else if (key == "in_flight_ttl")
                        duration_value(v, p, d.in_flight_ttl);
                });
    }

    void cluster(const YAML::Node& n, const std::string& path, cluster_config& c) {
        mapping(n, path, {"peers", "timeout"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "peers") {
                        string_list(v, p, c.peers);
                        for (const auto& peer : c.peers) {
                            const std::size_t colon = peer.rfind(':');
                            int port = 0;
                            const char* end = peer.data() + peer.size();
                            if (colon == std::string::npos || colon == 0 ||
                                std::from_chars(peer.data() + colon + 1, end, port).ptr != end || port < 1 ||
                                port > 65535)
                                fail(v, p, "'" + peer + "': expected host:port");
                        }
                    } else if (key == "timeout")
                        duration_value(v, p, c.timeout);
                });
    }

    void otlp(const YAML::Node& n, const std::string& path, otlp_config& o) {
        mapping(n, path, {"enabled", "auth", "group_attributes", "group", "message_field"},
                [&](const std::string& key, const YAML::Node& v, const std::string& p) {
                    if (key == "enabled") {
                        std::string b;
                        if (!scalar(v, p, b)) return;
                        if (b == "true")
                            o.enabled = true;
                        else if (b == "false")
                            o.enabled = false;
                        else
                            fail(v, p, "expected true or false, got '" + b + "'");
                    } else if (key == "auth") {
                        auth(v, p, o.auth);
                        if (o.auth.type != auth_type::none && o.auth.type != auth_type::bearer)
                            fail(v, p,
                                 "OTLP exporters authenticate with a header: none or bearer, not " +
                                     std::string(auth_type_name(o.auth.type)));
                    } else if (key == "group_attributes")
                        string_list(v, p, o.group_attributes);
                    else if (key == "group") {
                        string_value(v, p, o.group);
                        if (o.group.empty()) fail(v, p, "must not be empty");
                    } else if (key == "message_field") {
                        string_list(v, p, o.message_fields);
                        if (o.message_fields.empty()) fail(v, p, "at least one field is required");
                    }
                });
    }

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

private:
    std::string file_;
    std::vector<problem>& problems_;
};

} // namespace

namespace {
parse_result parse_onto(config c, std::string_view yaml, std::string_view file, bool compile_patterns);
} // namespace

std::vector<problem> validate(const config& c) {
    std::vector<problem> out;
    auto no = [&out](std::string path, std::string message) {
        out.push_back({"", 0, 0, std::move(path), std::move(message)});
    };
    const std::string max = std::to_string(config::max_threads);
    if (c.io_threads > config::max_threads) no("io_threads", "must be at most " + max);
    if (c.workers > config::max_threads) no("workers", "must be at most " + max);
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
    rd.read(root, c);
    if (r.problems.empty())
        for (auto& p : validate(c)) {
            p.file = std::string(file);
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

std::string dump(const config& c) {
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "listen" << YAML::Value << c.listen;
    e << YAML::Key << "admin_listen" << YAML::Value << c.admin_listen;
    e << YAML::Key << "io_threads" << YAML::Value << c.io_threads;
    e << YAML::Key << "workers" << YAML::Value << c.workers;
    e << YAML::Key << "state_dir" << YAML::Value << c.state_dir;
    e << YAML::Key << "snapshot_interval" << YAML::Value << duration_text(c.snapshot_interval);
    if (!c.reload_token.empty())
        e << YAML::Key << "reload_token" << YAML::Value << std::string(redacted_placeholder);
    if (!c.tls.cert.empty())
        e << YAML::Key << "tls" << YAML::Value << YAML::BeginMap << YAML::Key << "cert" << YAML::Value
          << c.tls.cert << YAML::Key << "key" << YAML::Value << c.tls.key << YAML::EndMap;
    e << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
    const auto& l = c.limits;
    e << YAML::Key << "header_bytes" << YAML::Value << l.header_bytes;
    e << YAML::Key << "body_bytes" << YAML::Value << l.body_bytes;
    e << YAML::Key << "decompressed_bytes" << YAML::Value << l.decompressed_bytes;
    e << YAML::Key << "message_bytes" << YAML::Value << l.message_bytes;
    e << YAML::Key << "header_timeout" << YAML::Value << duration_text(l.header_timeout);
    e << YAML::Key << "body_timeout" << YAML::Value << duration_text(l.body_timeout);
    e << YAML::Key << "idle_timeout" << YAML::Value << duration_text(l.idle_timeout);
    e << YAML::Key << "max_connections" << YAML::Value << l.max_connections;
    e << YAML::Key << "inflight_bytes" << YAML::Value << l.inflight_bytes;
    e << YAML::Key << "queue_capacity" << YAML::Value << l.queue_capacity;
    e << YAML::Key << "queue_wait" << YAML::Value << duration_text(l.queue_wait);
    e << YAML::Key << "shutdown_grace" << YAML::Value << duration_text(l.shutdown_grace);
    e << YAML::Key << "retry_after" << YAML::Value << duration_text(l.retry_after);
    e << YAML::EndMap;
    e << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap << YAML::Key << "max_groups" << YAML::Value
      << c.max_groups << YAML::EndMap;
    e << YAML::Key << "firehose" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "access_keys" << YAML::Value << YAML::Flow << redacted(c.firehose.access_keys);
    e << YAML::Key << "dedupe_capacity" << YAML::Value << c.firehose.dedupe_capacity;
    e << YAML::Key << "dedupe_ttl" << YAML::Value << duration_text(c.firehose.dedupe_ttl);
    e << YAML::EndMap;
    e << YAML::Key << "dedupe" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "store" << YAML::Value << redacted_store(c.dedupe.store);
    e << YAML::Key << "store_timeout" << YAML::Value << duration_text(c.dedupe.store_timeout);
    e << YAML::Key << "in_flight_ttl" << YAML::Value << duration_text(c.dedupe.in_flight_ttl);
    e << YAML::EndMap;
    e << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "peers" << YAML::Value << YAML::Flow << c.cluster.peers;
    e << YAML::Key << "timeout" << YAML::Value << duration_text(c.cluster.timeout);
    e << YAML::EndMap;
    e << YAML::Key << "otlp" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "enabled" << YAML::Value << c.otlp.enabled;
    e << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "type" << YAML::Value << std::string(auth_type_name(c.otlp.auth.type));
    if (c.otlp.auth.type != auth_type::none)
        e << YAML::Key << "secrets" << YAML::Value << YAML::Flow << redacted(c.otlp.auth.secrets);
    e << YAML::EndMap;
    e << YAML::Key << "group_attributes" << YAML::Value << YAML::Flow << c.otlp.group_attributes;
    e << YAML::Key << "group" << YAML::Value << c.otlp.group;
    e << YAML::Key << "message_field" << YAML::Value << YAML::Flow << c.otlp.message_fields;
    e << YAML::EndMap;
    e << YAML::Key << "sources" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, s] : c.sources) {
        e << YAML::Key << name << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "type" << YAML::Value << std::string(auth_type_name(s.auth.type));
        if (s.auth.type != auth_type::none) {
            e << YAML::Key << "secrets" << YAML::Value << YAML::Flow << redacted(s.auth.secrets);
            e << YAML::Key << "tolerance" << YAML::Value << duration_text(s.auth.tolerance);
        }
        e << YAML::EndMap;
        e << YAML::Key << "message_field" << YAML::Value << YAML::Flow << s.message_fields;
        e << YAML::Key << "group" << YAML::Value << s.group;
        if (!s.group_field.empty()) e << YAML::Key << "group_field" << YAML::Value << s.group_field;
        if (!s.delivery_id_header.empty())
            e << YAML::Key << "delivery_id_header" << YAML::Value << s.delivery_id_header;
        e << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::Key << "templates" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "mode" << YAML::Value << (c.templates.mine ? "drain" : "exact");
    e << YAML::Key << "depth" << YAML::Value << c.templates.mining.drain.depth;
    e << YAML::Key << "similarity" << YAML::Value << c.templates.mining.drain.similarity;
    e << YAML::Key << "variable_weight" << YAML::Value << c.templates.mining.drain.variable_weight;
    e << YAML::Key << "settled_after" << YAML::Value << c.templates.mining.drain.settled_after;
    e << YAML::Key << "max_children" << YAML::Value << c.templates.mining.drain.max_children;
    e << YAML::Key << "max_templates" << YAML::Value << c.templates.mining.drain.max_clusters;
    e << YAML::Key << "max_tokens" << YAML::Value << c.templates.mining.drain.max_tokens;
    e << YAML::Key << "warmup" << YAML::Value
      << (c.templates.mining.warmup_ms ? duration_text(milliseconds(c.templates.mining.warmup_ms))
                                       : std::string("0"));
    e << YAML::Key << "metrics_top_k" << YAML::Value << c.templates.metrics_top_k;
    e << YAML::EndMap;
    e << YAML::Key << "patterns" << YAML::Value << YAML::BeginSeq;
    for (const auto& p : c.patterns) {
        e << YAML::BeginMap;
        e << YAML::Key << "name" << YAML::Value << p.name;
        e << YAML::Key << "class" << YAML::Value << std::string(core::match::class_name(p.cls));
        e << YAML::Key << "regex" << YAML::Value << YAML::SingleQuoted << p.regex;
        if (p.caseless) e << YAML::Key << "caseless" << YAML::Value << true;
        if (!p.description.empty()) e << YAML::Key << "description" << YAML::Value << p.description;
        e << YAML::EndMap;
    }
    e << YAML::EndSeq;
    e << YAML::EndMap;
    return std::string(e.c_str()) + "\n";
}

} // namespace faultline::config
