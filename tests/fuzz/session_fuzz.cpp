// The whole HTTP session: bytes from a client -> beast::test::stream -> the real session code
// (head, body, chunked framing, limits, budget, routes, handlers, workers, replies). Whatever
// arrives, the session ends without an exception escaping, gives its in-flight budget back to 0,
// unregisters, and what it wrote is a sequence of well-formed HTTP responses. The first byte
// picks the read size (how the bytes are split into reads).
#include "fuzz_support.hpp"

#include "../../server/src/http_session.hpp"

#include "faultline/config/config.hpp"

#include <boost/beast/_experimental/test/stream.hpp>

#include <algorithm>
#include <charconv>

namespace {

namespace net = boost::asio;
namespace btest = boost::beast::test;

faultline::config::config fuzz_config() {
    auto c = faultline::config::default_config();
    c.state_dir = "";
    c.workers = 1;
    c.io_threads = 1;
    c.firehose.access_keys.clear();
    c.limits.header_bytes = 4096;
    c.limits.body_bytes = 256 << 10;
    c.limits.decompressed_bytes = 1 << 20;
    c.limits.inflight_bytes = 1 << 20;
    c.limits.message_bytes = 256; // longer ones are cut (that path too), and samples stay short
    c.max_groups = 8;
    // Small tables: the server lives across inputs, and what it accumulates (templates, request
    // ids) would make every later /metrics or /v1/templates slower, not the session more tested
    // (rendering 32 templates of 512-byte samples was half of each execution's time).
    c.templates.mining.shards = 1; // max_clusters is per shard
    c.templates.mining.drain.max_clusters = 8;
    c.templates.mining.mask_bytes = 256;
    c.firehose.dedupe_capacity = 64;
    // A few patterns (the default set's renderings and scans would dominate each execution).
    c.patterns.resize(3);
    c.patterns[0] = {"error_level", faultline::core::match::pattern_class::error, "ERROR", false, "", "fuzz"};
    c.patterns[1] = {"refused", faultline::core::match::pattern_class::error, "connection refused", true, "",
                     "fuzz"};
    c.patterns[2] = {"warn_level", faultline::core::match::pattern_class::warn, "WARN", false, "", "fuzz"};
    faultline::config::source_config bearer;
    bearer.name = "bearer";
    bearer.auth.type = faultline::config::auth_type::bearer;
    bearer.auth.secrets = {"t0ken"};
    c.sources["bearer"] = bearer;
    faultline::config::source_config gh;
    gh.name = "gh";
    gh.auth.type = faultline::config::auth_type::github;
    gh.auth.secrets = {"s3cret"};
    gh.message_fields = {"commits.0.message", "message"};
    c.sources["gh"] = gh;
    return c;
}

/// Checks that `wire` is a sequence of complete, well-formed responses (a HEAD's has no body).
void require_well_formed(std::string_view wire) {
    using faultline::fuzz::require;
    while (!wire.empty()) {
        require(wire.starts_with("HTTP/1.1 ") || wire.starts_with("HTTP/1.0 "));
        const std::size_t end = wire.find("\r\n\r\n");
        require(end != std::string_view::npos);
        int status = 0;
        std::from_chars(wire.data() + 9, wire.data() + 12, status);
        require(status == 100 || (status >= 200 && status <= 599));
        const std::string_view head = wire.substr(0, end + 4);
        wire.remove_prefix(end + 4);
        if (status == 100) continue;
        const std::size_t cl = head.find("\r\nContent-Length: ");
        require(cl != std::string_view::npos);
        std::size_t length = 0;
        std::from_chars(head.data() + cl + 18, head.data() + head.size(), length);
        if (wire.size() >= length && (wire.size() == length || wire.substr(length).starts_with("HTTP/1.")))
            wire.remove_prefix(length); // the body
        else
            require(wire.empty() || wire.starts_with("HTTP/1.")); // a HEAD reply: no body
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using faultline::fuzz::require;
    if (size == 0) return 0;
    static const auto cfg = fuzz_config();
    static faultline::server::detail::server srv(
        cfg, faultline::core::match::pattern_set::compile(cfg.patterns).value(), {});
    static const std::string remote = "127.0.0.1:40000";
    auto& t = srv.io(0);
    btest::stream conn(t.ioc);
    btest::stream client(t.ioc);
    conn.connect(client);
    conn.append(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    static constexpr std::size_t read_sizes[] = {3, 7, 64, 512, 4096, 65536};
    // At most ~256 reads per input: tiny reads split small inputs at every byte boundary, and a
    // 16 KiB input read 3 bytes at a time would cost thousands of reads and teach nothing new.
    conn.read_size(std::max(read_sizes[data[0] % std::size(read_sizes)], size / 256));
    conn.close_remote();
    bool finished = false;
    std::exception_ptr failure;
    net::co_spawn(t.ioc, srv.serve_connection(t, conn, false, remote), [&](std::exception_ptr e, bool) {
        finished = true;
        failure = e;
    });
    t.ioc.restart();
    t.ioc.run();
    require(finished);
    require(!failure);                     // nothing escapes a session
    require(t.sessions.empty());           // unregistered
    require(srv.svc().budget.used() == 0); // every reservation given back
    require_well_formed(client.str());
    return 0;
}
