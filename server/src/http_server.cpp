// The HTTP server: Boost.Asio C++20 coroutines and Boost.Beast. With http_session.hpp (the
// per-connection code, templated on the stream), the only translation unit that includes
// Asio/Beast. One io_context per I/O thread, each with its own SO_REUSEPORT acceptor; one
// coroutine per connection (spawned with a logging completion handler, tracked for shutdown);
// CPU work (decoding, matching) runs on the core pipeline's workers, and the session awaits their
// verdict before it answers: 200 means counted.
#include "http_session.hpp"

#include "faultline/core/aggregate/report.hpp"
#include "faultline/core/decode/decoder.hpp"
#include "faultline/core/decode/gzip.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace faultline::server {
namespace detail {

/// How long a connection closed after an answer keeps reading (and discarding) the client's data.
constexpr auto linger_time = std::chrono::seconds(5);
constexpr auto linger_read_timeout = std::chrono::seconds(1);
/// A snapshot is taken early once the journal's current segment holds this much.
constexpr std::uint64_t journal_snapshot_bytes = 256ull << 20;

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

std::string firehose_body(std::string_view request_id, std::string_view error_message) {
    return firehose_http::response_body(request_id, unix_ms(), error_message);
}

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
        // The cap is the API's: a scrape or a probe never takes a client's seat, nor the reverse.
        if (!admin && svc_.api_connections() >= svc_.cfg().limits.max_connections) {
            svc_.stats(t.index).reject(reject_reason::max_connections);
            boost::system::error_code ignored;
            socket.close(ignored); // closed at once
            continue;
        }
        // API connections go to the I/O thread with the fewest (admin ones stay on thread 0).
        const std::size_t to = admin ? t.index : svc_.least_loaded(t.index);
        connection_seat seat(svc_, to, admin); // counted from here until the connection is gone
        if (to == t.index) {
            start_connection(t, std::move(socket), std::move(seat), admin); // contains its failures
            continue;
        }
        try {
            hand_over(*threads_[to], std::move(socket), std::move(seat),
                      acceptor.local_endpoint().protocol());
        } catch (const std::exception& e) {
            // The handover could not be queued (an allocation): this connection is closed and its
            // seat given back; the listener goes on accepting.
            svc_.stats(t.index).internal_error(internal_where::session);
            log::error("cannot hand a connection to another I/O thread", {{"error", e.what()}});
        }
    }
}

void server::start_connection(io_thread& t, tcp::socket socket, connection_seat seat, bool admin) {
    try {
        if (tls_ && !admin) {
            net::co_spawn(t.ioc, tls_session(t, std::move(socket), std::move(seat)), session_failed(t));
        } else {
            auto c = std::make_unique<connection>(t, std::move(seat), std::move(socket), admin);
            wait_idle(std::move(c));
        }
    } catch (const std::exception& e) {
        // The connection could not be set up: its socket is closed and its seat given back.
        svc_.stats(t.index).internal_error(internal_where::session);
        log::error("cannot start a session", {{"error", e.what()}});
    }
}

void server::hand_over(io_thread& to, tcp::socket socket, connection_seat seat, tcp protocol) {
    // The descriptor leaves this thread's reactor and joins `to`'s there. Until it does, it is
    // owned by the queued handover: closed (and the seat given back) if that never runs (the
    // server destroyed with it still queued).
    struct descriptor {
        int fd = -1;
        explicit descriptor(int d) noexcept
            : fd(d) {}
        descriptor(descriptor&& o) noexcept
            : fd(std::exchange(o.fd, -1)) {}
        descriptor& operator=(descriptor&&) = delete;
        ~descriptor() {
            if (fd >= 0) ::close(fd);
        }
    };
    boost::system::error_code ec;
    descriptor fd(socket.release(ec));
    if (ec) {
        log::warn("cannot hand a connection to another I/O thread", {{"error", ec.message()}});
        return;
    }
    net::post(to.ioc, [this, &to, fd = std::move(fd), seat = std::move(seat), protocol]() mutable {
        tcp::socket s(to.ioc);
        boost::system::error_code aec;
        s.assign(protocol, fd.fd, aec);
        if (aec) {
            log::warn("cannot hand a connection to another I/O thread", {{"error", aec.message()}});
            return; // closed with `fd`
        }
        fd.fd = -1; // the socket's now
        start_connection(to, std::move(s), std::move(seat), false);
    });
}

std::function<void(std::exception_ptr)> server::session_failed(io_thread& t) {
    return [this, &t](std::exception_ptr e) {
        if (!e) return;
        svc_.stats(t.index).internal_error(internal_where::session);
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("session failed", {{"error", ex.what()}});
        }
    };
}

server::connection::connection(io_thread& thread, connection_seat counted, tcp::socket s, bool is_admin)
    : t(thread)
    , seat(std::move(counted))
    , socket(std::move(s))
    , entry(&socket, &cancel_lowest<tcp::socket>)
    , admin(is_admin) {
    boost::system::error_code ec;
    peer = socket.remote_endpoint(ec);
    t.sessions.push_back(entry);
}

server::connection::~connection() {
    t.sessions.erase(t.sessions.iterator_to(entry));
}

block_pool& server::connection_pool() {
    // Never destroyed: a connection may outlive the static destructors' turn (a server left to
    // the process's exit).
    static block_pool* const pool = new block_pool(sizeof(connection));
    return *pool;
}

void* server::connection::operator new(std::size_t n) {
    if (n != sizeof(connection)) throw std::bad_alloc(); // final: no larger kind
    return connection_pool().allocate();
}

void server::connection::operator delete(void* p) noexcept {
    connection_pool().deallocate(p);
}

void server::wait_idle(std::unique_ptr<connection> c) {
    // Between requests a plain-HTTP connection is only its `connection` (socket, peer, session
    // entry) and one pending readiness wait: no buffer, parser, coroutine frame or timer (sweep()
    // closes it after limits.idle_timeout; a drain cancels it). Everything a request needs is
    // allocated by serve_burst when bytes arrive, and freed when the connection is idle again.
    if (svc_.draining.load(std::memory_order_relaxed)) return; // closed with `c`
    auto& e = c->entry;
    e.stream = &c->socket;
    e.cancel = &cancel_lowest<tcp::socket>;
    e.idle = true;
    e.idle_since = steady::now();
    tcp::socket& socket = c->socket;
    const auto into = net::buffer(c->first);
    const wait_allocator<void> room(c.get());
    socket.async_read_some(into,
                           net::bind_allocator(room, [this, c = std::move(c)](boost::system::error_code ec,
                                                                              std::size_t n) mutable {
                               c->entry.idle = false;
                               // Idle timeout or drain (cancelled), the peer closed, or the socket failed:
                               // closed with `c`.
                               if (ec) return;
                               if (serve_at_once(c, n)) return;
                               io_thread& t = c->t;
                               net::co_spawn(t.ioc, serve_burst(std::move(c), n), session_failed(t));
                           }));
}

void server::wait_idle_after_reply(std::unique_ptr<connection> c) {
    // The next request's read comes after what else is ready on this thread (the other
    // connections' completions, one epoll pass): under load the client has sent it by then, and
    // one recv takes it. Read at once, it would find nothing (Asio reads before it waits), and
    // the request would cost an epoll round trip and a second recv: 3.2 system calls a tiny
    // webhook instead of 2.05. An idle client's read finds nothing and waits, as before.
    io_thread& t = c->t;
    net::post(t.ioc, [this, c = std::move(c)]() mutable { wait_idle(std::move(c)); });
}

bool server::serve_at_once(std::unique_ptr<connection>& c, std::size_t n) {
    // A small request whole in one read (a webhook of one event, say) is answered here, from the
    // idle wait's completion: no coroutine, stream, timer or buffer for it (they cost more than
    // the request). The same rules decide, in the same order (answer_at_once); the answer goes
    // out the same way (finish); it is counted in the same statistics.
    // A read that filled the buffer may have more behind it (a Firehose body, a large head):
    // the session's way, without parsing its head here first.
    if (n == c->first.size()) return false;
    io_thread& t = c->t;
    const auto started = steady::now();
    std::optional<at_once> answer;
    try {
        answer = answer_now(t, std::string_view(c->first.data(), n), c->admin, peer_name(c->peer));
    } catch (...) { // as a session's failure (logged and counted where="session"); the connection closes
        session_failed(t)(std::current_exception());
        return true;
    }
    if (!answer) return false;
    try {
        // Without waiting: what the socket's buffer takes now (all of a small answer, nearly always).
        const std::string& wire = answer->wire;
        const ssize_t sent =
            ::send(c->socket.native_handle(), wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        const bool blocked = sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        svc_.stats(t.index).record(answer->which, answer->status,
                                   std::chrono::duration<double>(steady::now() - started).count());
        if (sent < 0 && !blocked) return true; // the peer went away: closed with `c`
        const auto taken = static_cast<std::size_t>(std::max<ssize_t>(sent, 0));
        if (taken < wire.size()) { // the rest when the socket takes it, within the write deadline
            net::co_spawn(t.ioc, write_rest(std::move(c), std::move(answer->wire), taken, answer->close),
                          session_failed(t));
            return true;
        }
        if (!answer->close) {
            wait_idle_after_reply(std::move(c));
            return true;
        }
        boost::system::error_code ignored;
        c->socket.shutdown(tcp::socket::shutdown_send, ignored);
    } catch (...) {
        session_failed(t)(std::current_exception());
    }
    return true; // closed with `c`
}

net::awaitable<void> server::write_rest(std::unique_ptr<connection> c, std::string wire, std::size_t sent,
                                        bool close) {
    auto& entry = c->entry;
    beast::tcp_stream stream(std::move(c->socket));
    entry.stream = &stream;
    entry.cancel = &cancel_lowest<beast::tcp_stream>;
    set_deadline(stream, std::chrono::seconds(30));
    auto [ec, n] = co_await net::async_write(stream, net::buffer(wire) + sent, use_tuple);
    if (ec) co_return;
    if (!close) {
        c->socket = stream.release_socket();
        wait_idle_after_reply(std::move(c));
        co_return;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> server::serve_burst(std::unique_ptr<connection> c, std::size_t first) {
    io_thread& t = c->t;
    auto& entry = c->entry;
    beast::tcp_stream stream(std::move(c->socket));
    entry.stream = &stream;
    entry.cancel = &cancel_lowest<beast::tcp_stream>;
    const peer_name remote(c->peer);
    const session_end end =
        co_await run_session(t, stream, c->admin, remote, &entry, std::string_view(c->first.data(), first));
    if (end == session_end::idle) {
        c->socket = stream.release_socket();
        wait_idle_after_reply(std::move(c));
        co_return;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (end == session_end::linger) co_await linger(stream);
}

net::awaitable<void> server::linger(beast::tcp_stream& stream) {
    // Lingering close (nginx's lingering_close): after an answer that ends the connection (413,
    // 503, 400 on a body not read), read and discard what the client is still sending for a
    // moment. Closing with unread data makes the kernel reset the connection, and a reset can
    // destroy the answer before the client has read it. At most linger_time in all, and
    // linger_read_timeout without data (a client that stopped sending is not waited for).
    std::array<char, 4096> discard;
    const auto until = steady::now() + linger_time;
    for (auto now = steady::now(); now < until; now = steady::now()) {
        stream.expires_after(std::min<steady::duration>(until - now, linger_read_timeout));
        auto [ec, n] = co_await stream.async_read_some(net::buffer(discard), use_tuple);
        if (ec) break; // the client closed too (EOF), or the time is up
    }
}

net::awaitable<void> server::tls_session(io_thread& t, tcp::socket socket,
                                         [[maybe_unused]] connection_seat seat) {
    // The connection is counted until this frame (which holds `seat`) is gone: also when it is
    // destroyed without completing (an exception that left an asynchronous operation, see
    // run_contained).
    // HTTPS: the handshake has the head's deadline; then the same session over TLS (which waits
    // for each next request itself: a TLS connection keeps its TLS state between requests).
    boost::system::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    const peer_name remote = ec ? peer_name(std::string()) : peer_name(ep);
    beast::ssl_stream<beast::tcp_stream> tls(beast::tcp_stream(std::move(socket)), *tls_);
    beast::get_lowest_layer(tls).expires_after(svc_.cfg().limits.header_timeout);
    auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::server, use_tuple);
    if (!hec) {
        co_await run_session(t, tls, false, remote, nullptr);
        beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(2));
        auto [sec] = co_await tls.async_shutdown(use_tuple);
        (void)sec; // the peer may be gone already: nothing to do about it
    }
    beast::get_lowest_layer(tls).close();
}

net::awaitable<void> server::sweep(io_thread& t) {
    net::steady_timer timer(t.ioc);
    for (;;) {
        const auto idle_timeout = svc_.cfg().limits.idle_timeout;
        const auto now = steady::now();
        for (auto& s : t.sessions)
            if (s.idle && now - s.idle_since >= idle_timeout) {
                s.idle = false; // cancelled once
                s.cancel(s.stream);
            }
        // Memory back to the system after many connections closed (glibc keeps freed frames in
        // its arenas otherwise): at most once per sweep, when 1 000 or more have gone since.
        if (t.sessions.size() + 1000 <= t.trim_mark) {
            ::malloc_trim(0);
            t.trim_mark = t.sessions.size();
        } else {
            t.trim_mark = std::max(t.trim_mark, t.sessions.size());
        }
        // A tenth of the idle timeout (10 ms to 1 s): connections close at most that late.
        timer.expires_after(std::clamp<steady::duration>(idle_timeout / 10, 10ms, 1s));
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || stopping_) co_return;
    }
}

/// Runs `start(done)`, which calls `done(T)` once from any thread, and resumes with that value
/// on the caller's executor (kept busy meanwhile). With a deadline, resumes with its value when
/// `done` has not come by then (a later `done` is ignored).
template <class T, class Start>
net::awaitable<T> on_thread(Start start, std::optional<std::pair<steady::duration, T>> deadline = {}) {
    auto initiate = [&start, &deadline](auto handler) mutable {
        using handler_type = decltype(handler);
        using executor_type = net::associated_executor_t<handler_type>;
        struct pending {
            handler_type fn;
            net::executor_work_guard<executor_type> work;
            std::optional<net::basic_waitable_timer<steady, net::wait_traits<steady>, executor_type>> timer;
            bool answered = false; // touched on the caller's executor only
            void resume(T value) {
                if (answered) return;
                answered = true;
                if (timer) timer->cancel();
                work.reset();
                fn(std::move(value));
            }
        };
        auto executor = net::get_associated_executor(handler);
        auto h = std::make_shared<pending>(pending{std::move(handler), net::make_work_guard(executor), {}});
        if (deadline) {
            h->timer.emplace(executor, deadline->first);
            h->timer->async_wait([h, v = deadline->second](boost::system::error_code ec) mutable {
                if (!ec) h->resume(std::move(v));
            });
        }
        start(std::function<void(T)>([h](T value) {
            net::post(h->work.get_executor(),
                      [h, value = std::move(value)]() mutable { h->resume(std::move(value)); });
        }));
    };
    co_return co_await net::async_initiate<decltype(net::use_awaitable), void(T)>(std::move(initiate),
                                                                                  net::use_awaitable);
}

net::awaitable<dedupe_cache::state> server::claim_delivery(std::string key) {
    const auto local = svc_.dedupe().begin(key, steady::now());
    auto* store = svc_.store();
    if (local != dedupe_cache::state::fresh || !store) co_return local;
    // Never longer than dedupe.store_timeout, whatever the store's thread is doing.
    auto store_answered = std::make_shared<std::atomic<bool>>(false);
    const auto verdict = co_await on_thread<dedupe_store::verdict>(
        [&](auto done) {
            store->claim(key, [done, store_answered](dedupe_store::verdict v) {
                store_answered->store(true);
                done(v);
            });
        },
        std::pair{steady::duration(svc_.cfg().dedupe.store_timeout), dedupe_store::verdict::unavailable});
    if (verdict == dedupe_store::verdict::unavailable && !store_answered->load()) store->count_timeout();
    switch (verdict) {
    case dedupe_store::verdict::acknowledged: // counted by another replica (or before a restart)
        svc_.dedupe().finish(key, true, steady::now());
        co_return dedupe_cache::state::acknowledged;
    case dedupe_store::verdict::in_flight:
        svc_.dedupe().finish(key, false, steady::now());
        co_return dedupe_cache::state::in_flight;
    case dedupe_store::verdict::claimed:
    case dedupe_store::verdict::unavailable: // counted in faultline_dedupe_store_errors_total
        break;
    }
    co_return dedupe_cache::state::fresh;
}

namespace {
/// The most a peer's answer may hold: 10 000 templates with samples fit several times over.
constexpr std::uint64_t peer_answer_bytes = std::uint64_t{32} << 20;
/// The most replicas one view asks (a name resolving to more is cut there, and says so).
constexpr std::size_t max_peers = 64;

/// One peer's local template view over plain HTTP (what it answers, or why not), within `timeout`.
net::awaitable<void> fetch_peer(tcp::endpoint ep, std::string host, std::string target,
                                std::chrono::milliseconds timeout, peer_answer& out) {
    beast::tcp_stream stream(co_await net::this_coro::executor);
    stream.expires_after(timeout);
    auto [cec] = co_await stream.async_connect(ep, use_tuple);
    if (cec) {
        out.error = "connect: " + cec.message();
        co_return;
    }
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
    if (wec) {
        out.error = "send: " + wec.message();
        co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(peer_answer_bytes);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) {
        out.error =
            rec == beast::error::timeout ? "no answer within cluster.timeout" : "read: " + rec.message();
        co_return;
    }
    if (parser.get().result() != http::status::ok) {
        out.error = "HTTP " + std::to_string(parser.get().result_int());
        co_return;
    }
    out.body = std::move(parser.get().body());
}
} // namespace

net::awaitable<std::string> server::cluster_templates(const template_query& q) {
    auto ex = co_await net::this_coro::executor;
    const auto& cluster = svc_.cfg().cluster;
    std::vector<peer_answer> answers;
    if (cluster.peers.empty()) { // no peers configured: the cluster is this process
        auto local = co_await off_io([this, q] { return svc_.render_templates(q); });
        std::string error = local ? std::string() : rebuilding_refusal().message;
        answers.push_back({"local", std::move(local), std::move(error)});
        co_return co_await off_io([&answers, &q] { return merge_cluster_templates(std::move(answers), q); });
    }
    // Every address a peer's name resolves to is a replica (a headless Service lists them all).
    struct target {
        tcp::endpoint ep;
        std::string host;
        std::size_t answer; // its entry in `answers`
    };
    std::vector<target> targets;
    tcp::resolver resolver(ex);
    // Name resolution is bounded too: cluster.timeout for all of it (then pending ones are cancelled).
    net::steady_timer resolve_deadline(ex, cluster.timeout);
    resolve_deadline.async_wait([&resolver](boost::system::error_code ec) {
        if (!ec) resolver.cancel();
    });
    for (const auto& peer : cluster.peers) {
        const std::size_t colon = peer.rfind(':');
        std::string host = peer.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        auto [ec, results] = co_await resolver.async_resolve(host, peer.substr(colon + 1), use_tuple);
        if (ec) {
            answers.push_back({peer, std::nullopt,
                               ec == net::error::operation_aborted ? "not resolved within cluster.timeout"
                                                                   : "cannot resolve: " + ec.message()});
            continue;
        }
        std::vector<tcp::endpoint> eps;
        for (const auto& r : results)
            if (std::find(eps.begin(), eps.end(), r.endpoint()) == eps.end()) eps.push_back(r.endpoint());
        for (const auto& ep : eps) {
            if (targets.size() == max_peers) {
                answers.push_back({peer, std::nullopt, "more than 64 replicas: not asked"});
                break;
            }
            std::string label = peer;
            if (eps.size() > 1) {
                const auto a = ep.address();
                label =
                    (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
            }
            answers.push_back({std::move(label), std::nullopt, {}});
            targets.push_back({ep, peer, answers.size() - 1});
        }
    }
    resolve_deadline.cancel();
    // Asked together; each is bounded by cluster.timeout, so the wait is too.
    const std::string path = peer_templates_target(q);
    std::size_t remaining = targets.size();
    net::steady_timer all_done(ex, steady::time_point::max());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        net::co_spawn(
            ex, fetch_peer(targets[i].ep, targets[i].host, path, cluster.timeout, answers[targets[i].answer]),
            [&, i](std::exception_ptr e) {
                if (e) answers[targets[i].answer].error = "internal error";
                if (--remaining == 0) all_done.cancel();
            });
    }
    if (remaining) co_await all_done.async_wait(use_tuple);
    co_return co_await off_io([&answers, &q] { return merge_cluster_templates(std::move(answers), q); });
}

std::optional<reply> server::ingest_now(io_thread& t, request& req, const route_match& rm,
                                        const ingest_plan& plan, std::unique_ptr<ingest_draft>& later) {
    const unsigned version = req.version();
    ingest_draft draft = draft_delivery(req, rm, plan, unix_ms());
    if (draft.refused) return refuse(t, *draft.refused, version, plan.words);
    if (draft.handshake) {
        svc_.stats(t.index).control(*draft.handshake);
        return std::move(draft.answered);
    }
    if (draft.claim.empty() && counts_inline(draft.d, draft.gzipped, svc_.pipe().journal() != nullptr))
        return verdict_reply(t, count_here(t, std::move(draft.d), {}), rm, plan.words, version);
    later = std::make_unique<ingest_draft>(std::move(draft));
    return std::nullopt;
}

core::pipeline::delivery_result server::count_here(io_thread& t, core::pipeline::delivery&& d,
                                                   const std::string& dedupe_id) {
    core::pipeline::delivery_result result;
    core::pipeline::delivery_job job(std::move(d),
                                     [&result](core::pipeline::delivery_result r) { result = std::move(r); });
    svc_.pipe().run_inline(job, t.index);
    if (!dedupe_id.empty()) finish_delivery(dedupe_id, !result.failure);
    return result;
}

std::optional<reply> server::claimed_reply(io_thread& t, dedupe_cache::state state, route r,
                                           const wording& words, unsigned version) {
    auto seen = claimed_answer(state, r, words.request_id, version);
    if (!seen) return std::nullopt;
    if (seen->refused) return refuse(t, *seen->refused, version, words);
    return std::move(seen->ok);
}

reply server::verdict_reply(io_thread& t, const core::pipeline::delivery_result& result,
                            const route_match& rm, wording words, unsigned version) {
    auto& stats = svc_.stats(t.index);
    const std::string request_id = words.request_id; // Firehose's, from the head
    if (rm.r == route::firehose && words.request_id.empty()) words.request_id = result.request_id;
    ingest_answer answer = answer_of(result, rm.r, words, version, request_id, svc_.cfg().limits.retry_after);
    if (answer.decode_error) stats.decode_error(static_cast<std::size_t>(*answer.decode_error));
    if (answer.internal) {
        // Counted here (where="decode"), not again as a session failure by refuse().
        stats.internal_error(internal_where::decode);
        log::error("internal error while decoding a delivery",
                   {{"route", route_label(rm.r)}, {"error", result.failure->message}});
    }
    if (answer.refused) return refuse(t, *answer.refused, version, words);
    return std::move(answer.ok);
}

net::awaitable<reply> server::ingest(io_thread& t, request& req, const route_match& rm,
                                     const ingest_plan& plan) {
    std::unique_ptr<ingest_draft> draft;
    if (auto now = ingest_now(t, req, rm, plan, draft)) co_return std::move(*now);
    const unsigned version = req.version();
    if (!draft->claim.empty()) {
        const auto state = co_await claim_delivery(draft->claim);
        if (auto seen = claimed_reply(t, state, rm.r, plan.words, version)) co_return std::move(*seen);
        draft->d.dedupe_key =
            draft->claim; // journaled with it: a redelivery after a restart is recognised too
    }
    const std::string& dedupe_id = draft->claim;
    if (counts_inline(draft->d, draft->gzipped, svc_.pipe().journal() != nullptr))
        co_return verdict_reply(t, count_here(t, std::move(draft->d), dedupe_id), rm, plan.words, version);
    const auto result = co_await process(std::move(draft->d), dedupe_id);
    co_return verdict_reply(t, result, rm, plan.words, version);
}

/// Submits a delivery to the workers and suspends until they report it counted (or refused:
/// `refused` says why it was not admitted).
net::awaitable<core::pipeline::delivery_result> server::process(core::pipeline::delivery d,
                                                                std::string dedupe_id) {
    // The session's executor is kept busy (on_thread's work guard) until the verdict is posted
    // back: its io_context must not run out of work while a worker holds the delivery.
    co_return co_await on_thread<core::pipeline::delivery_result>([&](auto deliver) {
        const std::string& id = dedupe_id;
        auto done = [this, deliver, id](core::pipeline::delivery_result r) {
            // The id's fate is settled from the worker thread: even if the session is gone by
            // now, a retry of a counted request is recognised.
            if (!id.empty()) finish_delivery(id, !r.failure);
            deliver(std::move(r));
        };
        std::function<void()> journaled;
        if (!id.empty()) journaled = [this, id] { svc_.dedupe().journaled(id, steady::now()); };
        std::unique_ptr<core::pipeline::job> job = std::make_unique<core::pipeline::delivery_job>(
            std::move(d), std::move(done), &svc_.pipe(), std::move(journaled));
        const auto admission = svc_.pipe().try_submit(job);
        if (admission != core::pipeline::admission::accepted) {
            if (!id.empty()) finish_delivery(id, false);
            core::pipeline::delivery_result r;
            r.refused = admission;
            deliver(std::move(r));
        }
    });
}

void server::finish_delivery(const std::string& id, bool counted) {
    svc_.dedupe().finish(id, counted, steady::now());
    // The other replicas learn it as soon as the store takes it; nobody waits for that (a retry
    // meanwhile finds the id in flight and is asked to come back).
    if (auto* store = svc_.store()) store->finish(id, counted);
}

net::awaitable<void> server::sample_rates() {
    net::steady_timer timer(co_await net::this_coro::executor);
    for (;;) {
        svc_.rates().sample(steady::now(), svc_.pipe().pattern_totals(),
                            svc_.pipe().group_pattern_totals(svc_.cfg().max_groups));
        timer.expires_after(5s);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || stopping_) co_return;
    }
}

std::string server::reload(std::string_view trigger) {
    std::lock_guard one_at_a_time(reload_mutex_);
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
                if (s.idle) s.cancel(s.stream); // waiting for a request: close now
        });
}

void server::run_contained(io_thread& t) {
    // An I/O thread's wakeups (a request came, a worker gave a verdict) do not preempt a busy
    // worker: the thread runs when a core is free or at the worker's next tick, and then serves
    // everything that came meanwhile (SCHED_BATCH: the same share of the cores, no wakeup
    // preemption). Firehose at saturation, 2 cores, alternating runs: 4.5-5.2 context switches
    // a request -> 0.4-0.5, 9-20 % more req/s, a lower p99. Failing to set it is harmless.
    const sched_param batch_priority{}; // 0, the only one SCHED_BATCH has
    (void)::pthread_setschedparam(::pthread_self(), SCHED_BATCH, &batch_priority);
    for (;;) {
        try {
            t.ioc.run();
            return;
        } catch (const std::exception& e) {
            // Thrown from inside an asynchronous operation (not a coroutine body, where serve_one
            // catches): the operation and the connection it served are gone; the thread goes on.
            svc_.stats(t.index).internal_error(internal_where::io_loop);
            log::error("internal error in an I/O operation: its connection is closed", {{"error", e.what()}});
        } catch (...) {
            svc_.stats(t.index).internal_error(internal_where::io_loop);
            log::error("internal error in an I/O operation: its connection is closed");
        }
    }
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
            signals.async_wait(on_signal); // re-armed first: a failing reload must not deafen it
            // Parsing and compiling happen on a background thread, not on this I/O thread.
            net::post(background_, [this] {
                try {
                    reload("SIGHUP");
                } catch (const std::exception& e) {
                    svc_.stats(0).internal_error(internal_where::session);
                    log::error("configuration reload failed: the current configuration stays in effect",
                               {{"trigger", "SIGHUP"}, {"error", e.what()}});
                }
            });
            return;
        }
        log::info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        begin_drain();
    };
    signals.async_wait(on_signal);
    svc_.state().load();
    if (!listen(cfg.listen, false)) return 1;
    if (!cfg.admin_listen.empty() && !listen(cfg.admin_listen, true)) return 1;

    net::co_spawn(main.ioc, sample_rates(), net::detached); // only timer errors end it; nothing to log
    for (auto& t : threads_)
        net::co_spawn(t->ioc, sweep(*t), net::detached); // likewise
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
            while (svc_.connections() > 0 && steady::now() < deadline) {
                timer.expires_after(20ms);
                co_await timer.async_wait(use_tuple);
            }
            if (svc_.connections() > 0)
                log::warn("shutdown grace expired: closing remaining connections",
                          {{"connections", std::to_string(svc_.connections())}});
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
    // Every snapshot_interval, or sooner once the journal holds journal_snapshot_bytes (it
    // holds the bodies received since the last snapshot: this bounds its disk and the replay).
    std::jthread snapshots([this](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        auto last = steady::now();
        const auto tick = std::min<steady::duration>(svc_.cfg().snapshot_interval, 1s);
        while (!cv.wait_for(lock, stop, tick, [] { return false; }) && !stop.stop_requested()) {
            // After a failed journal write the counts are rebuilt from the disk first (until
            // then they may hold deliveries answered 500, and no snapshot is written).
            if (svc_.state().rebuild_after_failure()) last = steady::now() - svc_.cfg().snapshot_interval;
            if (steady::now() - last < svc_.cfg().snapshot_interval &&
                svc_.state().journal_bytes() < journal_snapshot_bytes)
                continue;
            svc_.state().save();
            last = steady::now();
        }
    });
    for (std::size_t i = 1; i < threads_.size(); ++i)
        threads_[i]->thread = std::thread([this, &t = *threads_[i]] { run_contained(t); });
    run_contained(main);
    for (std::size_t i = 1; i < threads_.size(); ++i)
        if (threads_[i]->thread.joinable()) threads_[i]->thread.join();
    snapshots.request_stop();
    snapshots.join();
    // Sessions are gone; let the workers finish what was admitted (their verdicts go nowhere:
    // nothing was answered 200 for them, and Firehose retries are deduplicated), then save.
    svc_.pipe().stop();
    svc_.state().drain();                 // every admitted delivery durable and applied before the snapshot
    svc_.state().rebuild_after_failure(); // a snapshot holds only what the disk has
    // The shared store's last answers are posted to the io_contexts, which go with this object.
    if (auto* store = svc_.store()) store->stop();
    const bool saved = svc_.state().save();
    log::info("stopped", {{"state_saved", saved ? "true" : "false"}});
    return 0;
}

} // namespace detail

int serve(const config::config& cfg, std::shared_ptr<const core::match::pattern_set> compiled,
          reload_function reloader) {
    // A file size limit (ulimit -f) reached by the journal or the state file is an error of that
    // write (EFBIG: answered 500, the counts rebuilt from the disk), not the end of the process.
    std::signal(SIGXFSZ, SIG_IGN);
    if (!compiled) {
        auto patterns = core::match::pattern_set::compile(cfg.patterns);
        if (!patterns) {
            log::error("invalid patterns", {{"error", patterns.error().message}});
            return 2;
        }
        compiled = *patterns;
    }
    try {
        detail::server s(cfg, std::move(compiled), std::move(reloader));
        return s.run();
    } catch (const std::exception& e) {
        log::error("fatal", {{"error", e.what()}});
        return 1;
    }
}

} // namespace faultline::server
