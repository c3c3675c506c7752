// The HTTP server: Boost.Asio C++20 coroutines and Boost.Beast. The only translation unit that
// includes Asio/Beast. One io_context per I/O thread, each with its own SO_REUSEPORT acceptor;
// one coroutine per connection (spawned with a logging completion handler, tracked for
// shutdown); CPU work (decoding, matching) runs on the core pipeline's workers, and the session
// awaits their verdict before it answers: 200 means counted.
#include "faultline/server/server.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/gzip.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/server/log.hpp"
#include "faultline/server/service.hpp"
#include "faultline/server/webhook_auth.hpp"

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <charconv>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

namespace faultline::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
/// Bodies up to this size (not gzip'd, not Firehose) are processed on the I/O thread itself.
constexpr std::size_t inline_limit = 2048;

using request = http::request<http::string_body>;

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string json_error(std::string_view message) {
    std::string out = "{\"error\":";
    core::aggregate::append_json_string(out, message);
    out += "}\n";
    return out;
}

std::string firehose_body(std::string_view request_id, std::string_view error_message = {}) {
    std::string out = "{\"requestId\":";
    core::aggregate::append_json_string(out, request_id);
    out += ",\"timestamp\":" + std::to_string(unix_ms());
    if (!error_message.empty()) {
        out += ",\"errorMessage\":";
        core::aggregate::append_json_string(out, error_message);
    }
    out += "}";
    return out;
}

/// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

/// The outcome of a request: what to send, and whether the connection must close after it.
/// Serialized by hand into one buffer (one allocation, one write) instead of through Beast's
/// fields and serializer: the replies are small and their headers few.
struct reply {
    unsigned status = 0; ///< 0: nothing to answer (the peer went away)
    unsigned version = 11;
    std::string_view content_type = "application/json";
    std::string allow;       ///< Allow header (405)
    std::string retry_after; ///< Retry-After header (429/503), seconds
    std::string body;
    bool close = false;
    bool head = false; ///< HEAD: headers only (Content-Length of the body)

    void set_retry_after(std::chrono::seconds s) { retry_after = std::to_string(s.count()); }

    std::string serialize() const {
        const auto reason = http::obsolete_reason(static_cast<http::status>(status));
        std::string out;
        out.reserve(160 + body.size());
        out += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
        out += std::to_string(status);
        out += ' ';
        out.append(reason.data(), reason.size());
        out += "\r\nServer: faultline\r\nContent-Type: ";
        out += content_type;
        if (!allow.empty()) out += "\r\nAllow: " + allow;
        if (!retry_after.empty()) out += "\r\nRetry-After: " + retry_after;
        out += "\r\nContent-Length: " + std::to_string(body.size());
        if (close)
            out += "\r\nConnection: close";
        else if (version < 11)
            out += "\r\nConnection: keep-alive";
        out += "\r\n\r\n";
        if (!head) out += body;
        return out;
    }
};

reply make_reply(unsigned version, http::status status, std::string body,
                 std::string_view content_type = "application/json") {
    reply r;
    r.status = static_cast<unsigned>(status);
    r.version = version;
    r.content_type = content_type;
    r.body = std::move(body);
    return r;
}

/// RFC 9112 checks Beast 1.81 leaves to us. Returns the problem, or empty.
std::string framing_problem(const request& req) {
    std::size_t content_length = 0, transfer_encoding = 0, host = 0;
    std::string_view cl_value, te_value;
    for (const auto& f : req.base()) {
        switch (f.name()) {
        case http::field::content_length:
            if (content_length++ && f.value() != cl_value) return "conflicting Content-Length headers";
            cl_value = f.value();
            break;
        case http::field::transfer_encoding:
            ++transfer_encoding;
            te_value = f.value();
            break;
        case http::field::host:
            ++host;
            break;
        default:
            break;
        }
    }
    if (content_length > 1) return "duplicate Content-Length headers";
    if (content_length && transfer_encoding) return "both Content-Length and Transfer-Encoding";
    if (transfer_encoding) {
        if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
        if (transfer_encoding > 1) return "several Transfer-Encoding headers";
        // The last coding must be chunked, and chunked must appear once.
        std::string_view v = te_value;
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
            v.remove_suffix(1);
        const std::size_t comma = v.rfind(',');
        std::string_view last = comma == std::string_view::npos ? v : v.substr(comma + 1);
        while (!last.empty() && (last.front() == ' ' || last.front() == '\t'))
            last.remove_prefix(1);
        if (!iequals(last, "chunked")) return "Transfer-Encoding must end with chunked";
        if (comma != std::string_view::npos)
            return "unsupported Transfer-Encoding (only chunked is accepted)";
    }
    if (req.version() >= 11 && host == 0) return "missing Host header";
    if (host > 1) return "several Host headers";
    return {};
}

/// A route and the methods it allows.
struct route_match {
    route r = route::unknown;
    std::string_view allow; ///< "POST", "GET" or empty when the path is unknown
    std::string source;     ///< webhook source name
};

route_match match_route(std::string_view path) {
    if (path == "/v1/firehose") return {route::firehose, "POST", {}};
    if (path == "/v1/cloudwatch") return {route::cloudwatch, "POST", {}};
    if (path.starts_with("/v1/webhook/") && path.size() > 12 && path.find('/', 12) == std::string_view::npos)
        return {route::webhook, "POST", std::string(path.substr(12))};
    if (path == "/metrics") return {route::metrics, "GET", {}};
    if (path == "/v1/patterns") return {route::patterns, "GET", {}};
    if (path == "/v1/templates") return {route::templates, "GET", {}};
    if (path == "/v1/report") return {route::report, "GET", {}};
    if (path == "/healthz") return {route::healthz, "GET", {}};
    if (path == "/readyz") return {route::readyz, "GET", {}};
    if (path == "/-/reload") return {route::reload, "POST", {}};
    return {};
}

/// Value of `key` in a query string ("a=1&b=2"), percent-decoding '+' and %XX.
std::optional<std::string> query_param(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const std::size_t eq = kv.find('=');
        if (kv.substr(0, eq) != key) continue;
        std::string_view raw = eq == std::string_view::npos ? std::string_view{} : kv.substr(eq + 1);
        std::string out;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '+')
                out += ' ';
            else if (raw[i] == '%' && i + 2 < raw.size()) {
                int v = 0;
                const auto r = std::from_chars(raw.data() + i + 1, raw.data() + i + 3, v, 16);
                if (r.ec == std::errc() && r.ptr == raw.data() + i + 3) {
                    out += static_cast<char>(v);
                    i += 2;
                } else {
                    out += raw[i];
                }
            } else {
                out += raw[i];
            }
        }
        return out;
    }
    return std::nullopt;
}

/// Per I/O thread: its io_context, acceptors and the sessions it runs.
/// Member order matters for destruction: acceptors go first, then the io_context (which
/// destroys suspended session frames, which unregister from `sessions`), then `sessions`.
struct io_thread {
    struct session_entry {
        beast::tcp_stream* stream = nullptr;
        bool idle = false; ///< waiting for a request (safe to close when draining)
    };
    std::size_t index = 0;
    std::thread thread;
    std::list<session_entry> sessions;
    net::io_context ioc{1};
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
};

class server {
public:
    server(const config::config& cfg, std::shared_ptr<const core::match::pattern_set> patterns,
           reload_function reloader)
        : svc_(cfg, std::move(patterns), cfg.io_threads)
        , reloader_(std::move(reloader)) {
        if (!cfg.tls.cert.empty()) {
            tls_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
            tls_->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                              net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                              net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
            boost::system::error_code ec;
            tls_->use_certificate_chain_file(cfg.tls.cert, ec);
            if (ec) throw std::runtime_error("tls.cert " + cfg.tls.cert + ": " + ec.message());
            tls_->use_private_key_file(cfg.tls.key, net::ssl::context::pem, ec);
            if (ec) throw std::runtime_error("tls.key " + cfg.tls.key + ": " + ec.message());
        }
        for (std::size_t i = 0; i < std::max<std::size_t>(cfg.io_threads, 1); ++i) {
            auto t = std::make_unique<io_thread>();
            t->index = i;
            threads_.push_back(std::move(t));
        }
    }

    int run();

private:
    bool listen(const std::string& address, bool admin);
    net::awaitable<void> accept_loop(io_thread& t, tcp::acceptor& acceptor, bool admin);
    net::awaitable<void> session(io_thread& t, tcp::socket socket, bool admin);
    template <class Stream>
    net::awaitable<void> run_session(io_thread& t, Stream& stream, bool admin, const std::string& remote);
    template <class Stream>
    net::awaitable<bool> serve_one(io_thread& t, Stream& stream, beast::flat_buffer& buffer, bool admin,
                                   const std::string& remote);
    template <class Stream>
    net::awaitable<reply> handle(io_thread& t, Stream& stream, beast::flat_buffer& buffer,
                                 http::request_parser<http::string_body>& parser, bool admin, route& which,
                                 const std::string& remote);
    /// Re-reads the configuration and applies it; returns the problems ("" when applied).
    std::string reload(std::string_view trigger);
    net::awaitable<reply> ingest(io_thread& t, request& req, const route_match& rm,
                                 std::shared_ptr<const core::decode::webhook_options> hook);
    net::awaitable<core::pipeline::delivery_result> process(core::pipeline::delivery d,
                                                            std::string dedupe_id);
    void begin_drain();
    net::awaitable<void> sample_rates();

    service svc_;
    reload_function reloader_;
    std::unique_ptr<net::ssl::context> tls_; ///< set when the configuration has tls: {cert, key}
    std::vector<std::unique_ptr<io_thread>> threads_;
    std::atomic<bool> stopping_{false};
};

bool server::listen(const std::string& address, bool admin) {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
        log::error("listen address must be HOST:PORT", {{"address", address}});
        return false;
    }
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port = address.substr(colon + 1);
    boost::system::error_code ec;
    tcp::resolver resolver(threads_[0]->ioc);
    auto results = resolver.resolve(host.empty() ? "0.0.0.0" : host, port, tcp::resolver::passive, ec);
    if (ec || results.empty()) {
        log::error("cannot resolve listen address", {{"address", address}, {"error", ec.message()}});
        return false;
    }
    tcp::endpoint ep = results.begin()->endpoint();
    // Admin listeners get one acceptor (on thread 0); API listeners one per I/O thread, sharing the
    // port with SO_REUSEPORT (the kernel spreads connections). Port 0: the first acceptor picks
    // the port and the others bind to it.
    const std::size_t n = admin ? 1 : threads_.size();
    for (std::size_t i = 0; i < n; ++i) {
        auto acc = std::make_unique<tcp::acceptor>(threads_[i]->ioc);
        acc->open(ep.protocol(), ec);
        if (!ec) acc->set_option(net::socket_base::reuse_address(true), ec);
        if (!ec && n > 1) {
            const int one = 1;
            if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
                ec = boost::system::error_code(errno, boost::system::system_category());
        }
        if (!ec) acc->bind(ep, ec);
        if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
        if (ec) {
            log::error("cannot listen", {{"address", address}, {"error", ec.message()}});
            return false;
        }
        if (i == 0) {
            ep = acc->local_endpoint();
            log::info("listening", {{"address", ep.address().to_string() + ":" + std::to_string(ep.port())},
                                    {"listener", admin ? "admin" : "api"},
                                    {"scheme", tls_ && !admin ? "https" : "http"}});
        }
        net::co_spawn(threads_[i]->ioc, accept_loop(*threads_[i], *acc, admin), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("accept loop failed", {{"error", ex.what()}});
            }
        });
        threads_[i]->acceptors.push_back(std::move(acc));
    }
    return true;
}

net::awaitable<void> server::accept_loop(io_thread& t, tcp::acceptor& acceptor, bool admin) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
            // EMFILE and friends: back off instead of spinning.
            log::warn("accept failed", {{"error", ec.message()}});
            net::steady_timer pause(t.ioc, 100ms);
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (!admin && svc_.connections.load(std::memory_order_relaxed) >= svc_.cfg().limits.max_connections) {
            svc_.stats(t.index).reject(reject_reason::max_connections);
            boost::system::error_code ignored;
            socket.close(ignored); // closed at once
            continue;
        }
        svc_.connections.fetch_add(1, std::memory_order_relaxed);
        net::co_spawn(t.ioc, session(t, std::move(socket), admin), [this](std::exception_ptr e) {
            svc_.connections.fetch_sub(1, std::memory_order_relaxed);
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("session failed", {{"error", ex.what()}});
            }
        });
    }
}

net::awaitable<void> server::session(io_thread& t, tcp::socket socket, bool admin) {
    beast::tcp_stream stream(std::move(socket));
    std::string remote;
    {
        boost::system::error_code ec;
        const auto ep = stream.socket().remote_endpoint(ec);
        if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    if (tls_ && !admin) {
        // HTTPS: the handshake has the head's deadline; then the same session over TLS.
        beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *tls_);
        beast::get_lowest_layer(tls).expires_after(svc_.cfg().limits.header_timeout);
        auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::server, use_tuple);
        if (!hec) {
            co_await run_session(t, tls, admin, remote);
            beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(2));
            auto [sec] = co_await tls.async_shutdown(use_tuple);
            (void)sec; // the peer may be gone already: nothing to do about it
        }
        beast::get_lowest_layer(tls).close();
        co_return;
    }
    co_await run_session(t, stream, admin, remote);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
}

template <class Stream>
net::awaitable<void> server::run_session(io_thread& t, Stream& stream, bool admin,
                                         const std::string& remote) {
    auto& raw = beast::get_lowest_layer(stream);
    auto self = t.sessions.insert(t.sessions.end(), io_thread::session_entry{&raw, false});
    struct unregister {
        io_thread& t;
        std::list<io_thread::session_entry>::iterator it;
        ~unregister() { t.sessions.erase(it); }
    } guard{t, self};
    const auto& limits = svc_.cfg().limits;
    beast::flat_buffer buffer;
    for (;;) {
        // Idle: wait for the first byte of the next request (keep-alive timeout).
        if (buffer.size() == 0) {
            if (svc_.draining.load(std::memory_order_relaxed)) break;
            // An idle connection keeps almost nothing: the buffer is released between requests
            // and the first read is small (the parser grows it as the head needs).
            buffer.shrink_to_fit();
            self->idle = true;
            raw.expires_after(limits.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(512), use_tuple);
            self->idle = false;
            if (ec) break; // idle timeout, peer closed, or drained
            buffer.commit(n);
        }
        // One request, in a coroutine of its own: its parser and reply live only while it runs,
        // so an idle keep-alive connection holds just this frame, the stream and the session entry.
        if (!co_await serve_one(t, stream, buffer, admin, remote)) break;
    }
}

template <class Stream>
net::awaitable<bool> server::serve_one(io_thread& t, Stream& stream, beast::flat_buffer& buffer, bool admin,
                                       const std::string& remote) {
    const auto& limits = svc_.cfg().limits;
    const auto started = steady::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.header_bytes, UINT32_MAX)));
    // No body limit while the head is read: a declared Content-Length over the limit must be
    // answered 413 (handle() checks it), not fail the head as malformed. The limit is set
    // before the body is read.
    parser.body_limit(boost::none);
    route which = route::unknown;
    reply r = co_await handle(t, stream, buffer, parser, admin, which, remote);
    if (r.status == 0) co_return false; // nothing to answer: the peer went away
    if (svc_.draining.load(std::memory_order_relaxed)) r.close = true;
    // HTTP/1.0 keeps the connection only when asked to; 1.1 unless asked not to.
    if (!parser.get().keep_alive()) r.close = true;
    const int status = static_cast<int>(r.status);
    if (status >= 400 && status != 404 && status != 405) {
        // A refused request, with what an operator needs to find it: rate-limited per route and
        // status, so a flood of bad requests cannot flood the log.
        const auto rid = parser.get()["X-Amz-Firehose-Request-Id"];
        std::string reason = r.body;
        while (!reason.empty() && reason.back() == '\n')
            reason.pop_back();
        const std::string code = std::to_string(status);
        log::write_limited(code + " " + std::string(route_label(which)), 5,
                           status >= 500 ? log::level::warn : log::level::info, "request refused",
                           {{"route", route_label(which)},
                            {"status", code},
                            {"request_id", std::string_view(rid.data(), rid.size())},
                            {"remote", remote},
                            {"reply", reason}});
    }
    const std::string wire = r.serialize();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(wire), use_tuple);
    svc_.stats(t.index).record(which, status, std::chrono::duration<double>(steady::now() - started).count());
    co_return !wec && !r.close;
}

template <class Stream>
net::awaitable<reply> server::handle(io_thread& t, Stream& stream, beast::flat_buffer& buffer,
                                     http::request_parser<http::string_body>& parser, bool admin,
                                     route& which, const std::string& remote) {
    const auto& limits = svc_.cfg().limits;
    auto& stats = svc_.stats(t.index);
    beast::get_lowest_layer(stream).expires_after(limits.header_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (hec) {
        if (hec == http::error::header_limit) {
            stats.reject(reject_reason::header_too_large);
            reply r = make_reply(11, http::status::request_header_fields_too_large,
                                 json_error("request head exceeds the limit of " +
                                            std::to_string(limits.header_bytes) + " bytes"));
            r.close = true;
            co_return r;
        }
        if (hec == beast::error::timeout) {
            stats.reject(reject_reason::timeout);
            reply r = make_reply(11, http::status::request_timeout,
                                 json_error("request head not received in time"));
            r.close = true;
            co_return r;
        }
        if (hec == http::error::end_of_stream || hec == net::error::eof ||
            hec == net::error::connection_reset || hec == net::error::operation_aborted)
            co_return reply{}; // the peer went away
        stats.reject(reject_reason::malformed_http);
        reply r =
            make_reply(11, http::status::bad_request, json_error("malformed request: " + hec.message()));
        r.close = true;
        co_return r;
    }
    request& req = parser.get();
    const unsigned version = req.version();
    const bool has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
    auto finish = [&](reply r) {
        // A body we did not read cannot be skipped reliably: close after answering.
        if (has_body && !parser.is_done()) r.close = true;
        return r;
    };
    if (auto problem = framing_problem(req); !problem.empty()) {
        stats.reject(reject_reason::malformed_http);
        reply r = make_reply(version, http::status::bad_request, json_error(problem));
        r.close = true;
        co_return r;
    }
    const std::string_view target(req.target().data(), req.target().size());
    const std::size_t qmark = target.find('?');
    const std::string_view path = target.substr(0, qmark);
    const std::string_view query =
        qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
    route_match rm = match_route(path);
    which = rm.r;
    if (admin && rm.r != route::metrics && rm.r != route::healthz && rm.r != route::readyz &&
        rm.r != route::reload)
        rm = {};
    if (rm.r == route::unknown) {
        which = route::unknown;
        co_return finish(
            make_reply(version, http::status::not_found, json_error("no such path: " + std::string(path))));
    }
    const bool is_get = req.method() == http::verb::get || req.method() == http::verb::head;
    if ((rm.allow == "GET" && !is_get) || (rm.allow == "POST" && req.method() != http::verb::post)) {
        reply r = make_reply(version, http::status::method_not_allowed,
                             json_error("method " + std::string(req.method_string()) + " not allowed on " +
                                        std::string(path) + " (allowed: " + std::string(rm.allow) + ")"));
        r.allow = rm.allow == "GET" ? "GET, HEAD" : "POST";
        co_return finish(std::move(r));
    }
    if (is_get) {
        reply r;
        switch (rm.r) {
        case route::healthz:
            r = make_reply(version, http::status::ok, "{\"status\":\"ok\"}\n");
            break;
        case route::readyz:
            if (svc_.ready())
                r = make_reply(version, http::status::ok, "{\"status\":\"ready\"}\n");
            else {
                r = make_reply(version, http::status::service_unavailable,
                               svc_.draining ? "{\"status\":\"draining\"}\n"
                                             : "{\"status\":\"overloaded\"}\n");
                r.set_retry_after(svc_.cfg().limits.retry_after);
            }
            break;
        case route::metrics:
            r = make_reply(version, http::status::ok, svc_.render_metrics(),
                           "text/plain; version=0.0.4; charset=utf-8");
            break;
        case route::patterns:
            r = make_reply(version, http::status::ok,
                           svc_.render_patterns(query_param(query, "group").value_or("")));
            break;
        case route::report:
            r = make_reply(version, http::status::ok, svc_.render_report());
            break;
        case route::templates: {
            template_query q;
            if (auto v = query_param(query, "limit")) {
                std::size_t n = 0;
                const auto res = std::from_chars(v->data(), v->data() + v->size(), n);
                if (res.ec != std::errc() || res.ptr != v->data() + v->size() || n == 0 || n > 10000)
                    co_return finish(make_reply(version, http::status::bad_request,
                                                json_error("limit must be an integer from 1 to 10000")));
                q.limit = n;
            }
            q.group = query_param(query, "group").value_or("");
            q.cls = query_param(query, "class").value_or("");
            if (!q.cls.empty() && q.cls != "error" && q.cls != "warn" && q.cls != "info")
                co_return finish(make_reply(version, http::status::bad_request,
                                            json_error("class must be error, warn or info")));
            q.sort = query_param(query, "sort").value_or("count");
            if (q.sort != "count" && q.sort != "first_seen" && q.sort != "last_seen")
                co_return finish(make_reply(version, http::status::bad_request,
                                            json_error("sort must be count, first_seen or last_seen")));
            r = make_reply(version, http::status::ok, svc_.render_templates(q));
            break;
        }
        default:
            break;
        }
        r.head = req.method() == http::verb::head;
        co_return finish(std::move(r));
    }

    if (rm.r == route::reload) {
        // Allowed with the configured token, or, without one, from loopback only.
        const auto& token = svc_.cfg().reload_token;
        const auto auth = req[http::field::authorization];
        const std::string_view given(auth.data(), auth.size());
        const bool loopback =
            remote.starts_with("127.") || remote.starts_with("::1") || remote.starts_with("::ffff:127.");
        const bool allowed =
            token.empty() ? loopback
                          : given.starts_with("Bearer ") && constant_time_equal(given.substr(7), token);
        if (!allowed) {
            stats.reject(reject_reason::unauthorized);
            co_return finish(
                make_reply(version, http::status::forbidden,
                           json_error(token.empty() ? "reload is allowed from loopback only"
                                                    : "reload needs Authorization: Bearer <reload_token>")));
        }
        const auto outcome = reload("POST /-/reload");
        co_return finish(
            make_reply(version, outcome.empty() ? http::status::ok : http::status::bad_request,
                       outcome.empty() ? std::string("{\"reloaded\":true}\n") : json_error(outcome)));
    }

    // POST: an ingest route. Cheap checks first, before the body is read.
    const bool is_firehose = rm.r == route::firehose;
    const auto rid = req["X-Amz-Firehose-Request-Id"];
    const std::string request_id(rid.data(), rid.size());
    auto refuse = [&](http::status status, const std::string& message, bool retry) {
        reply r = make_reply(version, status,
                             is_firehose ? firehose_body(request_id, message) + "\n" : json_error(message));
        if (retry) r.set_retry_after(svc_.cfg().limits.retry_after);
        return finish(std::move(r));
    };
    if (svc_.draining.load(std::memory_order_relaxed)) {
        stats.reject(reject_reason::draining);
        co_return refuse(http::status::service_unavailable, "shutting down: retry later", true);
    }
    // Keys and sources as of this request (a reload swaps them; this copy stays valid).
    const auto live = svc_.live();
    std::shared_ptr<const core::decode::webhook_options> hook;
    const config::source_config* source_cfg = nullptr;
    if (rm.r == route::webhook) {
        hook = live->webhook(rm.source);
        source_cfg = live->source(rm.source);
        if (!hook || !source_cfg)
            co_return finish(make_reply(version, http::status::not_found,
                                        json_error("no such webhook source: " + rm.source)));
    }
    if (is_firehose) {
        const auto& keys = live->access_keys;
        if (!keys.empty()) {
            const auto given = req["X-Amz-Firehose-Access-Key"];
            const std::string_view key(given.data(), given.size());
            bool ok = false;
            for (const auto& k : keys)
                ok |= constant_time_equal(key, k);
            if (!ok) {
                stats.reject(reject_reason::unauthorized);
                co_return refuse(http::status::unauthorized,
                                 given.empty() ? "X-Amz-Firehose-Access-Key is missing"
                                               : "X-Amz-Firehose-Access-Key is not valid",
                                 false);
            }
        }
        const auto proto = req["X-Amz-Firehose-Protocol-Version"];
        if (!proto.empty() && std::string_view(proto.data(), proto.size()) != "1.0")
            co_return refuse(http::status::bad_request,
                             "unsupported X-Amz-Firehose-Protocol-Version (expected 1.0)", false);
    }
    const std::uint64_t declared = parser.content_length().value_or(0);
    if (declared > limits.body_bytes) {
        stats.reject(reject_reason::body_too_large);
        reply r = refuse(http::status::payload_too_large,
                         "request body of " + std::to_string(declared) + " bytes exceeds the limit of " +
                             std::to_string(limits.body_bytes) + " bytes",
                         false);
        r.close = true;
        co_return r;
    }
    // The in-flight byte budget: bodies and what they decompress to are held until counted.
    struct budget_hold {
        std::atomic<std::int64_t>& counter;
        std::int64_t held = 0;
        void add(std::int64_t n) { counter.fetch_add(n), held += n; }
        ~budget_hold() { counter.fetch_sub(held); }
    } hold{svc_.inflight_bytes};
    if (static_cast<std::uint64_t>(std::max<std::int64_t>(0, svc_.inflight_bytes.load())) + declared >
        limits.inflight_bytes) {
        stats.reject(reject_reason::inflight_bytes);
        reply r = refuse(http::status::service_unavailable, "too many bytes in flight: retry later", true);
        r.close = true;
        co_return r;
    }
    hold.add(static_cast<std::int64_t>(declared));
    if (declared) req.body().reserve(static_cast<std::size_t>(declared) + core::decode::json_padding);
    parser.body_limit(static_cast<std::uint64_t>(limits.body_bytes));
    if (const auto expect = req[http::field::expect];
        iequals(std::string_view(expect.data(), expect.size()), "100-continue")) {
        static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
        auto [cec, cn] =
            co_await net::async_write(stream, net::buffer(interim.data(), interim.size()), use_tuple);
        if (cec) co_return reply{};
    }
    beast::get_lowest_layer(stream).expires_after(limits.body_timeout);
    auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (bec) {
        if (bec == http::error::body_limit) {
            stats.reject(reject_reason::body_too_large);
            reply r = refuse(
                http::status::payload_too_large,
                "request body exceeds the limit of " + std::to_string(limits.body_bytes) + " bytes", false);
            r.close = true;
            co_return r;
        }
        if (bec == beast::error::timeout) {
            stats.reject(reject_reason::timeout);
            reply r = refuse(http::status::request_timeout, "request body not received in time", false);
            r.close = true;
            co_return r;
        }
        if (bec == http::error::end_of_stream || bec == net::error::eof ||
            bec == net::error::connection_reset || bec == net::error::operation_aborted ||
            bec == http::error::partial_message)
            co_return reply{};
        stats.reject(reject_reason::malformed_http);
        reply r = refuse(http::status::bad_request, "malformed request body: " + bec.message(), false);
        r.close = true;
        co_return r;
    }
    if (parser.chunked()) {
        const auto n = static_cast<std::int64_t>(req.body().size());
        if (static_cast<std::uint64_t>(std::max<std::int64_t>(0, svc_.inflight_bytes.load())) +
                static_cast<std::uint64_t>(n) >
            limits.inflight_bytes) {
            stats.reject(reject_reason::inflight_bytes);
            co_return refuse(http::status::service_unavailable, "too many bytes in flight: retry later",
                             true);
        }
        hold.add(n);
    }
    if (source_cfg && source_cfg->auth.type != config::auth_type::none) {
        auto lookup = [&req](std::string_view name) -> std::string_view {
            const auto v = req[name];
            return std::string_view(v.data(), v.size());
        };
        const auto outcome =
            verify_webhook(source_cfg->auth, lookup, req.body(), std::chrono::system_clock::now());
        if (!outcome.ok) {
            stats.reject(reject_reason::unauthorized);
            co_return finish(make_reply(version, http::status::unauthorized, json_error(outcome.reason)));
        }
    }
    co_return co_await ingest(t, req, rm, std::move(hook));
}

net::awaitable<reply> server::ingest(io_thread& t, request& req, const route_match& rm,
                                     std::shared_ptr<const core::decode::webhook_options> hook) {
    const unsigned version = req.version();
    auto& stats = svc_.stats(t.index);
    const bool is_firehose = rm.r == route::firehose;
    const auto hdr = [&req](std::string_view name) {
        const auto v = req[name];
        return std::string_view(v.data(), v.size());
    };
    std::string request_id(hdr("X-Amz-Firehose-Request-Id"));
    const std::string_view encoding = hdr("Content-Encoding");
    const bool gzipped = iequals(encoding, "gzip");
    if (!encoding.empty() && !gzipped && !iequals(encoding, "identity")) {
        std::string msg = "unsupported Content-Encoding '" + std::string(encoding) + "' (gzip or identity)";
        co_return make_reply(version, http::status::unsupported_media_type,
                             is_firehose ? firehose_body(request_id, msg) + "\n" : json_error(msg));
    }

    core::pipeline::delivery d;
    d.now_ms = unix_ms();
    d.body = std::move(req.body());
    if (d.body.capacity() < d.body.size() + core::decode::json_padding)
        d.body.reserve(d.body.size() + core::decode::json_padding);
    std::string dedupe_id;
    if (is_firehose) {
        d.kind = core::pipeline::delivery_kind::firehose;
        d.source = "firehose";
        d.firehose.body_gzipped = gzipped;
        d.firehose.records = core::decode::record_format::cloudwatch_or_text;
        // Raw text records: group from the common attribute logGroup, else the delivery stream.
        d.text_group = "firehose";
        if (const auto arn = hdr("X-Amz-Firehose-Source-Arn"); !arn.empty()) {
            const std::size_t slash = arn.rfind('/');
            d.text_group = std::string(slash == std::string_view::npos ? arn : arn.substr(slash + 1));
        }
        if (const auto attrs = hdr("X-Amz-Firehose-Common-Attributes"); !attrs.empty()) {
            // {"commonAttributes":{"logGroup":"..."}}: a small header, parsed without a JSON library.
            const std::size_t k = attrs.find("\"logGroup\"");
            if (k != std::string_view::npos) {
                const std::size_t q1 = attrs.find('"', attrs.find(':', k) + 1);
                const std::size_t q2 = q1 == std::string_view::npos ? q1 : attrs.find('"', q1 + 1);
                if (q2 != std::string_view::npos)
                    d.text_group = std::string(attrs.substr(q1 + 1, q2 - q1 - 1));
            }
        }
        if (!request_id.empty()) {
            switch (svc_.dedupe().begin(request_id, steady::now())) {
            case dedupe_cache::state::acknowledged:
                co_return make_reply(version, http::status::ok, firehose_body(request_id) + "\n");
            case dedupe_cache::state::in_flight: {
                reply r = make_reply(
                    version, http::status::service_unavailable,
                    firehose_body(request_id, "this request id is being processed: retry later") + "\n");
                r.set_retry_after(svc_.cfg().limits.retry_after);
                co_return r;
            }
            case dedupe_cache::state::fresh:
                dedupe_id = request_id;
                break;
            }
        }
    } else if (rm.r == route::cloudwatch) {
        d.kind = core::pipeline::delivery_kind::cloudwatch;
        d.source = "cloudwatch";
        if (gzipped && !core::decode::looks_gzipped(d.body)) {
            co_return make_reply(version, http::status::bad_request,
                                 json_error("Content-Encoding: gzip, but the body is not gzip data"));
        }
    } else {
        d.kind = core::pipeline::delivery_kind::webhook;
        d.source = "webhook:" + rm.source;
        const auto& base = hook;
        const std::string_view ctype = hdr("Content-Type");
        const bool text = ctype.size() >= 10 && iequals(ctype.substr(0, 10), "text/plain");
        if (text || gzipped) {
            auto o = std::make_shared<core::decode::webhook_options>(*base);
            o->text = text;
            o->gzipped = gzipped;
            d.webhook = std::move(o);
        } else {
            d.webhook = std::move(base);
        }
    }

    // A tiny, plain delivery (one webhook event, say) is decoded and counted right here: a few
    // microseconds of work, cheaper than two thread hand-offs. Anything larger goes to the workers.
    core::pipeline::delivery_result result;
    if (d.body.size() <= inline_limit && !gzipped && d.kind != core::pipeline::delivery_kind::firehose) {
        core::pipeline::delivery_job job(
            std::move(d), [&result](core::pipeline::delivery_result r) { result = std::move(r); });
        svc_.pipe().run_inline(job, t.index);
    } else {
        result = co_await process(std::move(d), dedupe_id);
    }
    if (result.refused) {
        // Not admitted: Firehose (and any client) retries 429 and 503 with Retry-After.
        const bool full = *result.refused == core::pipeline::admission::queue_full;
        stats.reject(full ? reject_reason::queue_full : reject_reason::draining);
        const std::string message = full ? "server busy: retry later" : "shutting down: retry later";
        reply r =
            make_reply(version, full ? http::status::too_many_requests : http::status::service_unavailable,
                       is_firehose ? firehose_body(request_id, message) + "\n" : json_error(message));
        r.set_retry_after(svc_.cfg().limits.retry_after);
        co_return r;
    }
    if (result.failure) {
        stats.decode_error(static_cast<std::size_t>(result.failure->code));
        co_return make_reply(version, http::status::bad_request,
                             is_firehose ? firehose_body(request_id.empty() ? result.request_id : request_id,
                                                         result.failure->message) +
                                               "\n"
                                         : json_error(result.failure->message));
    }
    if (is_firehose)
        co_return make_reply(version, http::status::ok,
                             firehose_body(request_id.empty() ? result.request_id : request_id) + "\n");
    co_return make_reply(version, http::status::ok, "{\"accepted\":" + std::to_string(result.events) + "}\n");
}

/// Submits a delivery to the workers and suspends until they report it counted (or refused:
/// `refused` says why it was not admitted).
net::awaitable<core::pipeline::delivery_result> server::process(core::pipeline::delivery d,
                                                                std::string dedupe_id) {
    auto initiate = [this, d = std::move(d), id = std::move(dedupe_id)](auto handler) mutable {
        auto ex = net::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto deliver = [h, ex](core::pipeline::delivery_result r) {
            net::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        };
        auto done = [this, deliver, id](core::pipeline::delivery_result r) {
            // Remember the request id from the worker thread: even if the session is gone by now,
            // a retry of a counted request is recognised.
            if (!id.empty()) svc_.dedupe().finish(id, !r.failure, steady::now());
            deliver(std::move(r));
        };
        std::unique_ptr<core::pipeline::job> job =
            std::make_unique<core::pipeline::delivery_job>(std::move(d), std::move(done));
        const auto admission = svc_.pipe().try_submit(job);
        if (admission != core::pipeline::admission::accepted) {
            if (!id.empty()) svc_.dedupe().finish(id, false, steady::now());
            core::pipeline::delivery_result r;
            r.refused = admission;
            deliver(std::move(r));
        }
    };
    co_return co_await net::async_initiate<decltype(net::use_awaitable),
                                           void(core::pipeline::delivery_result)>(std::move(initiate),
                                                                                  net::use_awaitable);
}

net::awaitable<void> server::sample_rates() {
    net::steady_timer timer(co_await net::this_coro::executor);
    for (;;) {
        svc_.rates().sample(steady::now(), svc_.pipe().pattern_totals());
        timer.expires_after(5s);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || stopping_) co_return;
    }
}

std::string server::reload(std::string_view trigger) {
    if (!reloader_) {
        svc_.count_reload(false);
        return "this server has no configuration source to reload";
    }
    reload_input next = reloader_();
    if (!next.cfg) {
        svc_.count_reload(false);
        log::error("configuration reload rejected: the current configuration stays in effect",
                   {{"trigger", trigger}, {"problems", next.problems}});
        return next.problems;
    }
    const std::size_t patterns = next.patterns->size();
    const auto restart = svc_.reload(*next.cfg, std::move(next.patterns));
    svc_.count_reload(true);
    std::string needs_restart;
    for (const auto& r : restart)
        needs_restart += (needs_restart.empty() ? "" : ", ") + r;
    log::info("configuration reloaded", {{"trigger", trigger},
                                         {"patterns", std::to_string(patterns)},
                                         {"unchanged_until_restart", needs_restart}});
    return {};
}

void server::begin_drain() {
    if (svc_.draining.exchange(true)) return;
    log::info("draining: not accepting new connections, finishing in-flight requests",
              {{"grace", std::to_string(svc_.cfg().limits.shutdown_grace.count()) + "ms"}});
    for (auto& t : threads_)
        net::post(t->ioc, [&t = *t] {
            for (auto& a : t.acceptors) {
                boost::system::error_code ignored;
                a->close(ignored);
            }
            for (auto& s : t.sessions)
                if (s.idle) s.stream->cancel(); // waiting for a request: close now
        });
}

int server::run() {
    const auto& cfg = svc_.cfg();
    io_thread& main = *threads_[0];
    // Signals first: a SIGTERM that arrives as soon as the port is open must drain, not kill.
    net::signal_set signals(main.ioc, SIGINT, SIGTERM, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_signal;
    on_signal = [this, &signals, &on_signal](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            reload("SIGHUP");
            signals.async_wait(on_signal);
            return;
        }
        log::info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        begin_drain();
    };
    signals.async_wait(on_signal);
    svc_.load_state();
    if (!listen(cfg.listen, false)) return 1;
    if (!cfg.admin_listen.empty() && !listen(cfg.admin_listen, true)) return 1;

    net::co_spawn(main.ioc, sample_rates(), net::detached); // only timer errors end it; nothing to log
    // Drain watcher: once draining, wait for the sessions to finish (or the grace to expire),
    // then stop every io_context.
    net::co_spawn(
        main.ioc,
        [this, &signals]() -> net::awaitable<void> {
            net::steady_timer timer(co_await net::this_coro::executor);
            while (!svc_.draining) {
                timer.expires_after(50ms);
                co_await timer.async_wait(use_tuple);
            }
            const auto deadline = steady::now() + svc_.cfg().limits.shutdown_grace;
            while (svc_.connections.load() > 0 && steady::now() < deadline) {
                timer.expires_after(20ms);
                co_await timer.async_wait(use_tuple);
            }
            if (svc_.connections.load() > 0)
                log::warn("shutdown grace expired: closing remaining connections",
                          {{"connections", std::to_string(svc_.connections.load())}});
            stopping_ = true;
            boost::system::error_code ignored;
            signals.cancel(ignored);
            for (auto& t : threads_)
                net::post(t->ioc, [&t = *t] { t.ioc.stop(); });
        },
        [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("drain watcher failed", {{"error", ex.what()}});
            }
        });

    log::info("ready", {{"workers", std::to_string(svc_.pipe().workers())},
                        {"io_threads", std::to_string(threads_.size())},
                        {"patterns", std::to_string(svc_.pipe().patterns().size())}});
    // Periodic state snapshots, off the I/O threads.
    std::jthread snapshots([this](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        while (!cv.wait_for(lock, stop, svc_.cfg().snapshot_interval, [] { return false; }) &&
               !stop.stop_requested())
            svc_.save_state();
    });
    for (std::size_t i = 1; i < threads_.size(); ++i)
        threads_[i]->thread = std::thread([&t = *threads_[i]] { t.ioc.run(); });
    main.ioc.run();
    for (std::size_t i = 1; i < threads_.size(); ++i)
        if (threads_[i]->thread.joinable()) threads_[i]->thread.join();
    snapshots.request_stop();
    snapshots.join();
    // Sessions are gone; let the workers finish what was admitted (their verdicts go nowhere:
    // nothing was answered 200 for them, and Firehose retries are deduplicated), then save.
    svc_.pipe().stop();
    const bool saved = svc_.save_state();
    log::info("stopped", {{"state_saved", saved ? "true" : "false"}});
    return 0;
}

} // namespace

int serve(const config::config& cfg, std::shared_ptr<const core::match::pattern_set> compiled,
          reload_function reloader) {
    if (!compiled) {
        auto patterns = core::match::pattern_set::compile(cfg.patterns);
        if (!patterns) {
            log::error("invalid patterns", {{"error", patterns.error().message}});
            return 2;
        }
        compiled = *patterns;
    }
    try {
        server s(cfg, std::move(compiled), std::move(reloader));
        return s.run();
    } catch (const std::exception& e) {
        log::error("fatal", {{"error", e.what()}});
        return 1;
    }
}

} // namespace faultline::server
