// faultline's configuration: plain structs (compared with ==), parsed from YAML (strict: unknown keys
// rejected, every problem reported at once with file:line:col and key path), with an embedded default.
#pragma once

#include "faultline/core/match/pattern_set.hpp"
#include "faultline/core/mine/template_miner.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::config {

/// What check-config prints in place of each secret (access keys, webhook secrets, the reload
/// token); loading it back is refused, so a printed configuration never installs it as a key.
inline constexpr std::string_view redacted_placeholder = "<redacted>";

using seconds = std::chrono::seconds;
using milliseconds = std::chrono::milliseconds;

enum class auth_type { none, bearer, github, stripe, slack, standard_webhooks };
std::string_view auth_type_name(auth_type t) noexcept;

struct auth_config {
    auth_type type = auth_type::none;
    std::vector<std::string> secrets; ///< bearer tokens, or HMAC secrets (rotation: any matches)
    seconds tolerance{300};           ///< timestamp tolerance for stripe, slack, standard-webhooks
    bool operator==(const auth_config&) const = default;
};

struct source_config {
    std::string name;
    std::vector<std::string> message_fields{"message", "msg", "log",
                                            "text"}; ///< first present wins; dotted paths
    std::string group;                               ///< default: the source name
    std::string group_field;                         ///< dotted path of a per-event group; empty: use `group`
    auth_config auth;
    /// Header naming a delivery (a redelivery carries the same value): remembered for
    /// firehose.dedupe_ttl so a redelivery is answered 200 and not counted again. Empty: the
    /// auth type's own (see delivery_id_header()).
    std::string delivery_id_header;
    bool operator==(const source_config&) const = default;
};

/// The header that identifies a delivery of `s`: its delivery_id_header, else X-GitHub-Delivery
/// (github), webhook-id (standard-webhooks); empty: none.
std::string_view delivery_id_header(const source_config& s) noexcept;

struct limits_config {
    /// The most a request head may be set to: any field of a head within it fits the HTTP
    /// parser's 16-bit field sizes (a 65 534-byte value needs a head over 64 KiB).
    static constexpr std::size_t max_header_bytes = 64 << 10;
    std::size_t header_bytes = 16 << 10;
    std::size_t body_bytes = std::size_t{128} << 20;
    std::size_t decompressed_bytes = std::size_t{256} << 20;
    std::size_t message_bytes = 64 << 10;
    milliseconds header_timeout{10'000};
    milliseconds body_timeout{60'000};
    milliseconds idle_timeout{75'000};
    std::size_t max_connections = 10'000;
    std::size_t inflight_bytes = std::size_t{1} << 30;
    std::size_t queue_capacity = 256;
    /// While the oldest queued delivery has waited longer than this, new ones get 429 (0: no bound).
    milliseconds queue_wait{1'000};
    milliseconds shutdown_grace{25'000};
    seconds retry_after{5};
    bool operator==(const limits_config&) const = default;
};

struct firehose_config {
    std::vector<std::string> access_keys; ///< empty: no key required
    std::size_t dedupe_capacity = 100'000;
    seconds dedupe_ttl{900};
    bool operator==(const firehose_config&) const = default;
};

/// POST /v1/logs: OTLP/HTTP logs (protobuf or JSON).
struct otlp_config {
    bool enabled = true;
    auth_config auth; ///< none or bearer (the exporters' `headers: {Authorization: "Bearer ..."}`)
    /// Resource attributes naming a record's group, the first present wins; none: `group`.
    std::vector<std::string> group_attributes{"service.name", "log.file.path"};
    std::string group = "otlp";
    /// Keys of a map body holding the message, the first present wins.
    std::vector<std::string> message_fields{"message", "msg", "log", "text"};
    bool operator==(const otlp_config&) const = default;
};

/// Where delivery ids are shared by every replica: `redis://[[user]:password@]host[:port][/db]`.
struct store_endpoint {
    std::string host;
    int port = 6379;
    int db = 0;
    std::string user;     ///< AUTH user (Redis 6 ACLs); empty: the default user
    std::string password; ///< AUTH password; empty: no AUTH
    bool operator==(const store_endpoint&) const = default;
};
/// Parses a `redis://` URL (nullopt and `error` naming what is wrong). `rediss://` (TLS) is refused:
/// Debian's hiredis 0.14 has no TLS.
std::optional<store_endpoint> parse_store_url(std::string_view url, std::string& error);

/// Delivery ids (Firehose request ids, webhook delivery ids) shared across replicas.
struct dedupe_config {
    std::string store;               ///< redis://...; empty: this process's table only
    milliseconds store_timeout{100}; ///< the longest a request waits for the store
    seconds in_flight_ttl{30};       ///< how long a replica's claim on an id outlives it
    bool operator==(const dedupe_config&) const = default;
};

/// The replicas that answer GET /v1/templates?scope=cluster together.
struct cluster_config {
    /// host:port of every replica, this one included; a name resolving to several addresses (a
    /// Kubernetes headless Service) stands for each of them.
    std::vector<std::string> peers;
    milliseconds timeout{2'000}; ///< per peer
    bool operator==(const cluster_config&) const = default;
};

struct tls_config {
    std::string cert; ///< PEM certificate chain; empty: plain HTTP
    std::string key;  ///< PEM private key
    bool operator==(const tls_config&) const = default;
};

struct templates_config {
    bool mine = true;                 ///< mode drain (true) or exact (false)
    core::mine::miner_options mining; ///< Drain parameters, cap, warm-up
    std::size_t metrics_top_k = 50;   ///< templates exported as faultline_template_events_total
    bool operator==(const templates_config&) const = default;
};

struct config {
    std::string listen = "127.0.0.1:8080";
    std::string admin_listen; ///< optional: /metrics, /healthz, /readyz only
    tls_config tls;           ///< HTTPS on `listen` when set
    /// The most I/O threads and workers one process may be given.
    static constexpr std::size_t max_threads = 1024;
    std::size_t io_threads = 0; ///< 0: one per two cores (at least one)
    std::size_t workers = 0;    ///< 0: one per core
    std::string state_dir = "./faultline-state";
    std::string reload_token; ///< POST /-/reload needs it when set; else loopback only
    milliseconds snapshot_interval{30'000};
    limits_config limits;
    std::size_t max_groups = 100; ///< distinct `group` label values in metrics
    firehose_config firehose;
    dedupe_config dedupe;
    cluster_config cluster;
    otlp_config otlp;
    std::map<std::string, source_config> sources;
    std::vector<core::match::pattern> patterns;
    templates_config templates;
    /// Drain settings for `faultline scan --templates drain` (the same as the service's).
    const core::mine::miner_options& mining() const noexcept { return templates.mining; }
    /// Every key compared (a reload's "needs a restart" list is made of these comparisons).
    bool operator==(const config&) const = default;
};

struct problem {
    std::string file;
    int line = 0;   ///< 1-based; 0: unknown
    int column = 0; ///< 1-based
    std::string path;
    std::string message;
    std::string to_string() const;
};

/// Parses and validates a YAML configuration. Every problem found is returned, not just the first.
/// The file is laid over the embedded default (config/default.yaml): a key absent from the file
/// keeps the default's value; a list or map the file gives (patterns, sources, access_keys, ...)
/// replaces the default's.
struct parse_result {
    std::optional<config> value;
    std::vector<problem> problems;
    std::shared_ptr<const core::match::pattern_set> compiled; ///< when patterns were compiled
    explicit operator bool() const noexcept { return value.has_value(); }
};
/// `compile_patterns`: also compile the pattern set (Vectorscan) to report rejected regexes.
parse_result parse(std::string_view yaml, std::string_view file, bool compile_patterns = true);

/// The rules that hold whatever set a value (the file, FAULTLINE_* variables, flags): checked
/// by parse() and again after the overrides. Each problem names its field.
std::vector<problem> validate(const config& c);

/// The embedded default configuration (config/default.yaml), parsed (its patterns are known to
/// compile: a unit test compiles them; they are not compiled here).
config default_config();
/// Its text.
std::string_view default_yaml();

/// The effective configuration as YAML (secrets redacted), for `faultline check-config`.
std::string dump(const config& c);

/// One key of the configuration schema. The schema is the one home of every key: it drives the
/// reading of a file (known keys, types, bounds), validate(), dump(), the reload's "needs a
/// restart" list and the README's table (schema_markdown()).
struct setting_info {
    std::string_view path;    ///< "limits.body_bytes"
    std::string_view kind;    ///< size, duration, count, ...
    std::string_view restart; ///< empty: a reload applies it; else what a reload lists it under
    std::string_view what;    ///< what it does, one line
};
/// Every key, in check-config's order.
std::vector<setting_info> schema();
/// What differs between two configurations that a reload does not apply (each name once, in
/// the schema's order): "listen", "limits", "templates", ...
std::vector<std::string> needs_restart(const config& now, const config& next);
/// The schema as a Markdown table (key, type, default, reload, what): the README's.
std::string schema_markdown();

/// Parses "10s", "250ms", "15m", "1h" (a bare number is seconds).
std::optional<milliseconds> parse_duration(std::string_view s);
/// Parses "16384", "16KiB", "128MiB", "1GiB", "64kB" (kB/MB/GB are powers of 1000).
std::optional<std::size_t> parse_size(std::string_view s);

} // namespace faultline::config
