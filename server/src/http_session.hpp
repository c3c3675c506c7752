// The HTTP session: one coroutine per connection reading requests with Beast's parser (within
// the limits and the in-flight budget), asking the I/O-free rules of handlers.hpp what to answer,
// and writing it. Templated on the stream so the same code serves TCP, TLS and, in the tests,
// beast::test::stream with fail_count (no sockets). Included by http_server.cpp and
// tests/server/session_test.cpp only: Asio stays out of every other translation unit.
#pragma once

#include "handlers.hpp"
#include "http_request.hpp"
#include "otlp_reply.hpp"
#include "outcome.hpp"
#include "reply.hpp"
#include "request_reader.hpp"

#include "faultline/core/decode/firehose_http.hpp"
#include "faultline/core/pipeline/delivery.hpp"
#include "faultline/server/block_pool.hpp"
#include "faultline/server/cluster_view.hpp"
#include "faultline/server/log.hpp"
#include "faultline/server/server.hpp"
#include "faultline/server/service.hpp"
#include "faultline/server/webhook_auth.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/intrusive/list.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace faultline::server::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace firehose_http = core::decode::firehose_http;

inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
/// The most a body read asks of the socket at once.
inline constexpr std::size_t body_read_bytes = 64 << 10;

/// Arms the stream's deadline for the next operations (TCP and TLS streams: beast::tcp_stream's
/// timer). Streams without one (beast::test::stream) have no deadlines.
template <class Stream, class Duration>
void set_deadline(Stream& stream, Duration d) {
    auto& lowest = beast::get_lowest_layer(stream);
    if constexpr (requires { lowest.expires_after(d); }) lowest.expires_after(d);
}

/// Who is at the other end of a connection: formatted only when a log line or a rule asks (most
/// requests never do, and formatting an address costs more than parsing a request's head).
class peer_name {
public:
    explicit peer_name(const tcp::endpoint& ep)
        : ep_(ep) {}
    /// Already formatted (the session tests name their peers).
    explicit peer_name(std::string text)
        : text_(std::move(text))
        , formatted_(true) {}
    /// "address:port", or "" when the address is not known.
    const std::string& str() const {
        if (!formatted_) {
            text_ = ep_.address().to_string() + ":" + std::to_string(ep_.port());
            formatted_ = true;
        }
        return text_;
    }

private:
    tcp::endpoint ep_;
    mutable std::string text_;
    mutable bool formatted_ = false;
};

/// Per I/O thread: its io_context, acceptors and the sessions it runs.
/// Member order matters for destruction: acceptors go first, then the io_context (which
/// destroys suspended session frames, which unregister from `sessions`), then `sessions`.
struct io_thread {
    /// Intrusive: an entry lives in what it describes (the connection, or the session's frame),
    /// so registering a connection allocates nothing.
    struct session_entry : boost::intrusive::list_base_hook<> {
        session_entry(void* s, void (*c)(void*))
            : stream(s)
            , cancel(c) {}
        void* stream = nullptr;          ///< the connection's lowest layer
        void (*cancel)(void*) = nullptr; ///< cancels its pending operations (drain, idle timeout)
        bool idle = false;               ///< waiting for a request (safe to close when draining)
        steady::time_point idle_since{}; ///< when it went idle (the sweep closes it after idle_timeout)
    };
    std::size_t index = 0;
    std::thread thread;
    boost::intrusive::list<session_entry> sessions;
    std::size_t trim_mark = 0; ///< sessions at the last malloc_trim (see server::sweep)
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

    /// Workers may still be posting verdicts into the io_contexts: they stop (every admitted job
    /// finished, threads joined) before the io_contexts are destroyed.
    ~server() {
        svc_.pipe().stop();
        svc_.state().drain();
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    int run();

    /// Serves one connection's requests until it closes, fails or the service drains. Public for
    /// the session tests, which drive it over beast::test::stream (no sockets). True when the
    /// server ended it with an answer (Connection: close): the client may still be sending.
    template <class Stream>
    net::awaitable<bool> serve_connection(io_thread& t, Stream& stream, bool admin,
                                          const std::string& remote) {
        const peer_name peer(remote);
        co_return co_await run_session(t, stream, admin, peer, nullptr) == session_end::linger;
    }
    service& svc() noexcept { return svc_; }
    /// What serve_at_once sends for the bytes an idle wait read: the answer's bytes, and what
    /// the session records of it. Public for the tests (no socket).
    struct at_once {
        std::string wire;
        bool close = false;
        route which = route::unknown;
        int status = 0;
    };
    /// None when nothing was answered or counted: the session serves those bytes its own way.
    std::optional<at_once> answer_now(io_thread& t, std::string_view bytes, bool admin,
                                      const peer_name& remote);
    /// Runs `fn` on the background threads (CPU work that is not I/O: the JSON and metrics views,
    /// a configuration reload, the HMAC of a large body) and resumes on the caller's I/O thread
    /// with its result. An exception from `fn` is rethrown in the caller (serve_one: 500).
    template <class F>
    net::awaitable<std::invoke_result_t<F&>> off_io(F fn);
    io_thread& io(std::size_t i) noexcept { return *threads_[i]; }

private:
    bool listen(const std::string& address, bool admin);
    net::awaitable<void> accept_loop(io_thread& t, tcp::acceptor& acceptor, bool admin);
    /// A plain-HTTP connection: owned by its pending idle wait or by the burst serving it;
    /// destroying it closes the socket, unregisters it and gives the connection count back.
    /// While idle, everything it holds is this one block of connection_pool(), pending read
    /// included (wait_allocator), apart from Asio's per-descriptor state and the kernel's socket.
    struct connection final {
        connection(io_thread& t, connection_seat seat, tcp::socket socket, bool admin);
        ~connection();
        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;
        static void* operator new(std::size_t n);
        static void operator delete(void* p) noexcept;
        io_thread& t;
        connection_seat seat;
        tcp::socket socket;
        tcp::endpoint peer;
        io_thread::session_entry entry;
        bool admin;
        bool wait_room_taken = false;
        /// Room for the idle wait's pending read: Asio's operation with its handler, 240 bytes
        /// with Boost 1.81 on epoll. What does not fit comes from the heap, among Asio's
        /// descriptor states again: bench-check's RSS-after-close floor catches that.
        alignas(std::max_align_t) std::array<std::byte, 256> wait_room;
        /// The first bytes of the next request, read by the idle wait (a read, not a readiness
        /// wait: Asio re-arms epoll for every readiness wait, one epoll_ctl per request).
        std::array<char, 512> first;
    };
    /// The allocator of the idle wait's read: the connection's wait_room when it fits (it does
    /// for the one read it is made for), the heap otherwise.
    template <class T>
    struct wait_allocator {
        using value_type = T;
        connection* c;
        explicit wait_allocator(connection* to) noexcept
            : c(to) {}
        template <class U>
        wait_allocator(const wait_allocator<U>& o) noexcept
            : c(o.c) {}
        T* allocate(std::size_t n) {
            if (!c->wait_room_taken && n * sizeof(T) <= c->wait_room.size() &&
                alignof(T) <= alignof(std::max_align_t)) {
                c->wait_room_taken = true;
                return reinterpret_cast<T*>(c->wait_room.data());
            }
            return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignof(T)}));
        }
        void deallocate(T* p, std::size_t) noexcept {
            if (static_cast<void*>(p) == c->wait_room.data())
                c->wait_room_taken = false;
            else
                ::operator delete (p, std::align_val_t{alignof(T)});
        }
        template <class U>
        bool operator==(const wait_allocator<U>& o) const noexcept {
            return c == o.c;
        }
    };
    static block_pool& connection_pool();
    /// Serves an accepted connection on `t` (plain HTTP: its idle wait; HTTPS: its session).
    void start_connection(io_thread& t, tcp::socket socket, connection_seat seat, bool admin);
    /// Moves an accepted connection to I/O thread `to` (its descriptor leaves this thread's
    /// io_context and joins `to`'s), which serves it.
    void hand_over(io_thread& to, tcp::socket socket, connection_seat seat, tcp protocol);
    /// Waits (no coroutine, no parser) until the connection has bytes, then serves them.
    void wait_idle(std::unique_ptr<connection> c);
    /// wait_idle once what is ready on this thread has run (after an answer: the next request).
    void wait_idle_after_reply(std::unique_ptr<connection> c);
    /// Serves the requests of a readable connection until it is idle again (then waits again).
    net::awaitable<void> serve_burst(std::unique_ptr<connection> c, std::size_t first);
    /// Answers the request the idle wait read (its first `n` bytes) without a coroutine, when
    /// answer_at_once can; false when it cannot (nothing was counted: serve_burst serves it).
    bool serve_at_once(std::unique_ptr<connection>& c, std::size_t n);
    /// The rest of an answer the socket did not take at once, then the next idle wait (or the close).
    net::awaitable<void> write_rest(std::unique_ptr<connection> c, std::string wire, std::size_t sent,
                                    bool close);
    net::awaitable<void> tls_session(io_thread& t, tcp::socket socket, connection_seat seat);
    /// The completion of a session coroutine: an exception is logged and counted.
    std::function<void(std::exception_ptr)> session_failed(io_thread& t);
    /// How run_session ended: `idle` (only with an outer session entry: no request has begun and
    /// nothing is buffered; the caller waits for the next), `gone` (closed, failed or drained), or
    /// `linger` (answered with Connection: close before the request was read to its end: the
    /// client may still be sending).
    enum class session_end { idle, gone, linger };
    /// Closes idle connections past limits.idle_timeout, and gives memory back after many closed.
    net::awaitable<void> sweep(io_thread& t);
    net::awaitable<void> linger(beast::tcp_stream& stream);
    /// What a connection does after a request: wait for the next, close after an answer given
    /// before the request was read to its end (the client may still be sending: lingering close),
    /// or just close.
    enum class after_reply { keep_alive, close, gone };
    /// Serves a connection's requests. Without `outer` it registers the connection itself and
    /// waits for each next request (with limits.idle_timeout as the read deadline); with `outer`
    /// (plain TCP, whose idle wait is server::session's) it returns `idle` instead of waiting.
    template <class Stream>
    net::awaitable<session_end> run_session(io_thread& t, Stream& stream, bool admin, const peer_name& remote,
                                            io_thread::session_entry* outer, std::string_view first = {});
    template <class Stream>
    net::awaitable<after_reply> serve_one(io_thread& t, Stream& stream, beast::flat_buffer& buffer,
                                          bool admin, const peer_name& remote);
    /// What a request's head decides: its route, and for an ingest route its plan, with the
    /// declared body reserved in the budget; or why it is refused (worded as plan.words says).
    struct head_step {
        std::optional<refusal> refused;
        request_target to;
        std::shared_ptr<const service::live_settings> live; ///< what plan.source points into
        ingest_plan plan;
    };
    head_step on_head(request_reader& parser, bool admin, route& which);
    /// The 500 of a webhook whose signature check threw, counted and logged.
    reply auth_failure(io_thread& t, const route_match& rm, const wording& words, unsigned version,
                       const std::exception& e);
    /// A whole request in `bytes` (what the idle wait read), answered without a coroutine when
    /// nothing in it waits or is refused: a small delivery counted here. None otherwise, with
    /// nothing counted: the session then serves the same bytes its own way.
    std::optional<reply> answer_at_once(io_thread& t, request_reader& parser, std::string_view bytes,
                                        bool admin, route& which);
    /// GET and HEAD: the health checks, the page, and the views (rendered on the background threads).
    net::awaitable<reply> view(io_thread& t, const request_target& to, unsigned version);
    /// POST /-/reload: allowed by reload_refusal, applied on a background thread.
    net::awaitable<reply> reload_request(io_thread& t, const request& req, unsigned version,
                                         const peer_name& remote);
    /// The 500 of a request whose handling threw, logged. (Plain functions, not coroutines: what
    /// they hold lives on the stack, not in serve_one's frame; Asio recycles frames up to 2 KiB.)
    reply contained(io_thread& t, const request_reader& parser, route which, const peer_name& remote,
                    const std::exception& e);
    /// The bytes of a request's answer: when it closes the connection, a HEAD's head only, and
    /// the "request refused" log line of a logged refusal.
    std::string finish(reply& r, request_reader& parser, route which, const peer_name& remote);
    template <class Stream>
    net::awaitable<reply> handle(io_thread& t, Stream& stream, beast::flat_buffer& buffer,
                                 request_reader& parser, bool admin, route& which, const peer_name& remote);
    /// The reply of an outcome, counted in the metrics its rule names (outcome.hpp).
    reply refuse(io_thread& t, outcome o, unsigned version, std::string body);
    /// A rule's refusal (handlers.hpp), worded as the route words its refusals ({"error": ...}
    /// unless given).
    reply refuse(io_thread& t, const refusal& no, unsigned version, const wording& w = {}) {
        reply r = refuse(t, no.o, version, w, no.message);
        r.allow = no.allow;
        return r;
    }
    /// The same, worded as the route words its refusals.
    reply refuse(io_thread& t, outcome o, unsigned version, const wording& w, const std::string& message) {
        count_refusal(t, o);
        return make_reply(version, o, w, message, svc_.cfg().limits.retry_after);
    }
    /// Counts a refusal in the metrics its rule names (outcome.hpp).
    void count_refusal(io_thread& t, outcome o);
    /// Re-reads the configuration and applies it; returns the problems ("" when applied). On a
    /// background thread; one reload at a time.
    std::string reload(std::string_view trigger);
    std::mutex reload_mutex_;
    /// An ingest request whose head and body passed: drafted (handlers.hpp), its id claimed,
    /// counted, and answered as answer_of says.
    net::awaitable<reply> ingest(io_thread& t, request& req, const route_match& rm, const ingest_plan& plan);
    /// What ingest decides without suspending (plain functions: their drafts, jobs and answers
    /// live on the stack, not in ingest's frame). The reply when the request is answered at once:
    /// refused by its content, a handshake, or tiny with no id to claim and counted right here;
    /// otherwise none, with the draft in `later` (its id to claim, its workers to wait for).
    std::optional<reply> ingest_now(io_thread& t, request& req, const route_match& rm,
                                    const ingest_plan& plan, std::unique_ptr<ingest_draft>& later);
    /// Counts a tiny delivery on this I/O thread (counts_inline), its claimed id settled.
    core::pipeline::delivery_result count_here(io_thread& t, core::pipeline::delivery&& d,
                                               const std::string& dedupe_id);
    /// The reply of a claimed id seen before (claimed_answer), if it was.
    std::optional<reply> claimed_reply(io_thread& t, dedupe_cache::state state, route r, const wording& words,
                                       unsigned version);
    /// The reply of a delivery's verdict (answer_of), its errors counted and logged.
    reply verdict_reply(io_thread& t, const core::pipeline::delivery_result& result, const route_match& rm,
                        wording words, unsigned version);
    net::awaitable<core::pipeline::delivery_result> process(core::pipeline::delivery d,
                                                            std::string dedupe_id);
    /// The delivery of a claimed id ended: this process's table and the shared store (when there
    /// is one) are told. From any thread.
    void finish_delivery(const std::string& id, bool counted);
    /// GET /v1/templates?scope=cluster: every peer's local view (cluster.peers), merged.
    net::awaitable<std::string> cluster_templates(const template_query& q);
    /// Claims a delivery id for a new request: this process's table first, then the replicas'
    /// shared store (dedupe.store) when there is one.
    net::awaitable<dedupe_cache::state> claim_delivery(std::string key);
    void begin_drain();
    /// Runs the thread's io_context; an exception that escapes an asynchronous operation is
    /// logged and counted (faultline_internal_errors_total{where="io_loop"}) and the loop goes on.
    void run_contained(io_thread& t);
    net::awaitable<void> sample_rates();

    service svc_;
    reload_function reloader_;
    std::unique_ptr<net::ssl::context> tls_; ///< set when the configuration has tls: {cert, key}
    std::vector<std::unique_ptr<io_thread>> threads_;
    std::atomic<bool> stopping_{false};
    /// Background threads for off_io() (declared last: joined first, before the io_contexts go).
    net::thread_pool background_{2};
};

/// Bodies above this size have their webhook signature computed off the I/O thread.
inline constexpr std::size_t off_io_hmac_bytes = 64 << 10;

template <class F>
net::awaitable<std::invoke_result_t<F&>> server::off_io(F fn) {
    using result = std::invoke_result_t<F&>;
    auto initiate = [this, fn = std::move(fn)](auto handler) mutable {
        // The caller's io_context is kept busy until the result is posted back to it.
        auto work = net::make_work_guard(net::get_associated_executor(handler));
        net::post(background_,
                  [fn = std::move(fn), handler = std::move(handler), work = std::move(work)]() mutable {
                      std::exception_ptr failure;
                      result r{};
                      try {
                          r = fn();
                      } catch (...) {
                          failure = std::current_exception();
                      }
                      auto home = work.get_executor();
                      // Moved, not copied: the exception is released on the I/O thread only.
                      net::post(home, [handler = std::move(handler), work = std::move(work),
                                       failure = std::move(failure), r = std::move(r)]() mutable {
                          work.reset();
                          handler(std::move(failure), std::move(r));
                      });
                  });
    };
    co_return co_await net::async_initiate<decltype(net::use_awaitable), void(std::exception_ptr, result)>(
        std::move(initiate), net::use_awaitable);
}

/// Cancels the pending operations of a connection's lowest layer (a socket, beast::tcp_stream;
/// beast::test::stream has no cancel and is closed).
template <class Lowest>
void cancel_lowest(void* s) {
    auto& l = *static_cast<Lowest*>(s);
    if constexpr (requires { l.cancel(); })
        l.cancel();
    else
        l.close();
}

template <class Stream>
net::awaitable<server::session_end>
server::run_session(io_thread& t, Stream& stream, bool admin, const peer_name& remote,
                    io_thread::session_entry* outer, std::string_view first) {
    auto& raw = beast::get_lowest_layer(stream);
    using lowest = std::remove_reference_t<decltype(raw)>;
    io_thread::session_entry own{&raw, &cancel_lowest<lowest>};
    if (!outer) t.sessions.push_back(own);
    struct unregister {
        io_thread& t;
        io_thread::session_entry& e;
        bool owned;
        ~unregister() {
            if (owned) t.sessions.erase(t.sessions.iterator_to(e));
        }
    } guard{t, own, outer == nullptr};
    io_thread::session_entry& self = outer ? *outer : own;
    const auto& limits = svc_.cfg().limits;
    // Bounded: a head, a chunk-size line and a trailer section are parsed only once complete, and
    // Beast sets no limit of its own on the last two (a full buffer is http::error::buffer_overflow).
    beast::flat_buffer buffer(std::min(limits.header_bytes, max_header_bytes) + 65536);
    if (!first.empty()) // what the caller's idle wait read
        buffer.commit(
            net::buffer_copy(buffer.prepare(first.size()), net::buffer(first.data(), first.size())));
    for (bool start = true;; start = false) {
        if (buffer.size() == 0) {
            if (svc_.draining.load(std::memory_order_relaxed)) break;
            // Idle: the caller waits for the next request with nothing of this frame allocated.
            if (outer && !start) co_return session_end::idle;
            // Otherwise wait here for the first byte of the next request (keep-alive timeout).
            // The buffer is released between requests and the first read is small (the parser
            // grows it as the head needs).
            buffer.shrink_to_fit();
            self.idle = !outer;
            set_deadline(stream, outer ? limits.header_timeout : limits.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(512), use_tuple);
            self.idle = false;
            if (ec) break; // idle timeout, peer closed, or drained
            buffer.commit(n);
        }
        // One request, in a coroutine of its own: its parser and reply live only while it runs.
        const after_reply after = co_await serve_one(t, stream, buffer, admin, remote);
        if (after != after_reply::keep_alive)
            co_return after == after_reply::close ? session_end::linger : session_end::gone;
    }
    co_return session_end::gone;
}

inline void server::count_refusal(io_thread& t, outcome o) {
    const outcome_rule rule = rule_of(o);
    if (rule.reason) svc_.stats(t.index).reject(*rule.reason);
    if (o == outcome::internal_error) svc_.stats(t.index).internal_error(internal_where::session);
}

inline reply server::refuse(io_thread& t, outcome o, unsigned version, std::string body) {
    count_refusal(t, o);
    return make_reply(version, o, std::move(body), svc_.cfg().limits.retry_after);
}

inline reply server::contained(io_thread& t, const request_reader& parser, route which,
                               const peer_name& remote, const std::exception& e) {
    log::error("internal error while handling a request",
               {{"route", route_label(which)}, {"remote", remote.str()}, {"error", e.what()}});
    return refuse(t, outcome::internal_error, parser.get().version() >= 10 ? parser.get().version() : 11,
                  json_error("internal error"));
}

inline std::string server::finish(reply& r, request_reader& parser, route which, const peer_name& remote) {
    if (svc_.draining.load(std::memory_order_relaxed)) r.close = true;
    // HTTP/1.0 keeps the connection only when asked to; 1.1 unless asked not to.
    if (!parser.get().keep_alive()) r.close = true;
    // A body we did not read cannot be skipped reliably: close after answering.
    if (!parser.is_done()) r.close = true;
    // HEAD: the head of what GET would answer, whatever the status (RFC 9110 §9.3.2).
    if (parser.is_header_done() && parser.get().method() == http::verb::head) r.head = true;
    if (r.logged) {
        // A refused request, with what an operator needs to find it: rate-limited per route and
        // status, so a flood of bad requests cannot flood the log.
        const auto rid = parser.get()[firehose_http::request_id_header];
        std::string reason = r.note.empty() ? r.body : r.note;
        while (!reason.empty() && reason.back() == '\n')
            reason.pop_back();
        const std::string code = std::to_string(r.status);
        log::write_limited(code + " " + std::string(route_label(which)), 5,
                           r.status >= 500 ? log::level::warn : log::level::info, "request refused",
                           {{"route", route_label(which)},
                            {"status", code},
                            {"request_id", std::string_view(rid.data(), rid.size())},
                            {"remote", remote.str()},
                            {"reply", reason}});
    }
    return r.serialize();
}

template <class Stream>
net::awaitable<server::after_reply> server::serve_one(io_thread& t, Stream& stream,
                                                      beast::flat_buffer& buffer, bool admin,
                                                      const peer_name& remote) {
    const auto& limits = svc_.cfg().limits;
    const auto started = steady::now();
    // What this request holds of the in-flight budget: declared before the parser, whose body
    // it pays for, so it is given back after the body is freed, however the request ends.
    core::budget_hold hold(&svc_.budget);
    request_reader parser({limits.header_bytes, limits.body_bytes}, hold);
    route which = route::unknown;
    reply r;
    try {
        r = co_await handle(t, stream, buffer, parser, admin, which, remote);
    } catch (const std::exception& e) {
        // Containment: a failure inside this request (a handler, an allocation, a library) ends
        // this request with a 500 and the connection with it, never the process.
        r = contained(t, parser, which, remote, e);
    }
    if (r.status == 0) co_return after_reply::gone; // nothing to answer: the peer went away
    const std::string wire = finish(r, parser, which, remote);
    const int status = static_cast<int>(r.status);
    set_deadline(stream, std::chrono::seconds(30));
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(wire), use_tuple);
    svc_.stats(t.index).record(which, status, std::chrono::duration<double>(steady::now() - started).count());
    if (wec) co_return after_reply::gone;
    if (!r.close) co_return after_reply::keep_alive;
    // Lingering close only when the client may still be sending this request (answered before its
    // end was read: 413, 503, a bad head). Not for a client cut off for being slow (408): it is
    // the slowness; not after a complete request (Connection: close, draining).
    co_return status != 408 && !parser.is_done() ? after_reply::close : after_reply::gone;
}

inline net::awaitable<reply> server::view(io_thread& t, const request_target& to, unsigned version) {
    const route_match& rm = to.rm;
    switch (rm.r) {
    case route::healthz:
        co_return health_reply(version);
    case route::readyz:
        co_return ready_reply(version, svc_.ready(), svc_.draining, svc_.cfg().limits.retry_after);
    // The views are rendered on the background threads: I/O threads do only I/O.
    case route::metrics: {
        auto text = co_await off_io([this] { return svc_.render_metrics(); });
        if (!text) co_return refuse(t, rebuilding_refusal(), version);
        co_return make_reply(version, http::status::ok, std::move(*text),
                             "text/plain; version=0.0.4; charset=utf-8");
    }
    case route::patterns: {
        const std::string group(query_param(to.query, "group").value_or(""));
        auto json = co_await off_io([this, &group] { return svc_.render_patterns(group); });
        if (!json) co_return refuse(t, rebuilding_refusal(), version);
        co_return make_reply(version, http::status::ok, std::move(*json));
    }
    case route::report: {
        auto json = co_await off_io([this] { return svc_.render_report(); });
        if (!json) co_return refuse(t, rebuilding_refusal(), version);
        co_return make_reply(version, http::status::ok, std::move(*json));
    }
    case route::ui: // a static page: it reads the JSON views itself
        co_return make_reply(version, http::status::ok, std::string(explorer_html()),
                             "text/html; charset=utf-8");
    case route::templates: {
        auto params = templates_params(to.query);
        if (auto* refused = std::get_if<refusal>(&params)) co_return refuse(t, *refused, version);
        const templates_request& q = std::get<templates_request>(params);
        std::optional<std::string> json; // (no co_await inside ?: with g++ 12)
        if (q.cluster)
            json = co_await cluster_templates(q.q);
        else
            json = co_await off_io([this, &q] { return svc_.render_templates(q.q); });
        if (!json) co_return refuse(t, rebuilding_refusal(), version);
        co_return make_reply(version, http::status::ok, std::move(*json));
    }
    default:
        co_return reply{};
    }
}

inline net::awaitable<reply> server::reload_request(io_thread& t, const request& req, unsigned version,
                                                    const peer_name& remote) {
    const auto auth = req[http::field::authorization];
    if (auto refused =
            reload_refusal(svc_.cfg().reload_token, std::string_view(auth.data(), auth.size()), remote.str()))
        co_return refuse(t, *refused, version);
    const auto problems = co_await off_io([this] { return reload("POST /-/reload"); });
    if (!problems.empty()) co_return refuse(t, outcome::bad_request, version, json_error(problems));
    co_return make_reply(version, http::status::ok, std::string("{\"reloaded\":true}\n"));
}

template <class Stream>
net::awaitable<reply> server::handle(io_thread& t, Stream& stream, beast::flat_buffer& buffer,
                                     request_reader& parser, bool admin, route& which,
                                     const peer_name& remote) {
    // Only I/O here: what to answer is decided by the rules of handlers.hpp.
    const auto& limits = svc_.cfg().limits;
    set_deadline(stream, limits.header_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (hec) {
        if (auto refused = head_read_failure(hec, limits)) co_return refuse(t, *refused, 11);
        co_return reply{}; // the peer went away, or the connection failed: nobody to answer
    }
    request& req = parser.get();
    const unsigned version = req.version();
    head_step head = on_head(parser, admin, which);
    const wording& words = head.plan.words;
    auto no = [&](const refusal& r) { return refuse(t, r, version, words); };
    if (head.refused) co_return no(*head.refused);
    const request_target& to = head.to;
    const route_match& rm = to.rm;
    // The views and the reload have coroutines of their own: their locals stay out of this frame.
    if (to.get) co_return co_await view(t, to, version);
    if (rm.r == route::reload) co_return co_await reload_request(t, req, version, remote);
    const ingest_plan& plan = head.plan;
    if (const auto expect = req[http::field::expect];
        iequals(std::string_view(expect.data(), expect.size()), "100-continue")) {
        static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
        set_deadline(stream, std::chrono::seconds(10));
        auto [cec, cn] =
            co_await net::async_write(stream, net::buffer(interim.data(), interim.size()), use_tuple);
        if (cec) co_return reply{};
    }
    set_deadline(stream, limits.body_timeout);
    // A declared body (already reserved in the in-flight budget) is read in pieces as large as
    // it, up to the 64 KiB the buffer may grow to anyway: Beast reads what the buffer's capacity
    // leaves, and the idle buffer is shrunk to a 512-byte read (a 30 KB body would take 60
    // reads instead of one). Released at the next idle wait. A chunked body grows the buffer
    // only as its bytes arrive. (Beast's reserve() would raise max_size: the capacity asked
    // stays within it.)
    if (plan.declared && !parser.is_done()) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(plan.declared, body_read_bytes));
        buffer.reserve(std::min(buffer.max_size(), buffer.size() + want));
    }
    // The body is read piece by piece so that every byte the parser takes (chunk-size lines of
    // any length, extensions, trailers) counts toward the body limit, exactly.
    boost::system::error_code bec;
    for (std::uint64_t wire = 0; !parser.is_done();) {
        auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, use_tuple);
        wire += n;
        if (ec) {
            bec = ec;
            break;
        }
        if (wire > limits.body_bytes) {
            bec = make_error_code(request_error::body_too_large);
            break;
        }
    }
    if (bec) {
        if (auto refused = body_read_failure(bec, limits)) co_return no(*refused);
        co_return reply{}; // the peer went away mid-body, or the connection failed
    }
    if (!plan.authenticated) {
        const auto lookup = header_of(req);
        auth_outcome verdict;
        try {
            const auto now = std::chrono::system_clock::now();
            if (req.body().size() > off_io_hmac_bytes) // an HMAC over megabytes: not on an I/O thread
                verdict = co_await off_io(
                    [&] { return verify_webhook(plan.source->auth, lookup, req.body(), now); });
            else
                verdict = verify_webhook(plan.source->auth, lookup, req.body(), now);
        } catch (const std::exception& e) {
            co_return auth_failure(t, rm, words, version, e);
        }
        if (!verdict.ok) co_return no({outcome::unauthorized, verdict.reason});
    }
    co_return co_await ingest(t, req, rm, plan);
}

inline server::head_step server::on_head(request_reader& parser, bool admin, route& which) {
    head_step step;
    request& req = parser.get();
    routing routed = route_of(req, admin);
    which = routed.to.rm.r;
    step.to = routed.to;
    if (routed.refused) {
        step.refused = std::move(routed.refused);
        return step;
    }
    if (step.to.get || step.to.rm.r == route::reload) return step;
    // POST: an ingest route. Its head is checked before the body is read (keys and sources as of
    // this request: a reload swaps them, this copy stays valid).
    step.live = svc_.live();
    step.plan = plan_ingest(req, step.to.rm, *step.live, svc_.cfg().limits,
                            svc_.draining.load(std::memory_order_relaxed),
                            parser.content_length().value_or(0), std::chrono::system_clock::now());
    if (step.plan.refused) {
        step.refused = std::move(step.plan.refused);
        return step;
    }
    // The in-flight byte budget: a declared body is reserved before a byte of it is read; a
    // chunked one as each chunk is announced (request_reader).
    if (step.plan.declared && !parser.admit_declared(step.plan.declared))
        step.refused = refusal{outcome::over_budget, "too many bytes in flight: retry later"};
    return step;
}

inline reply server::auth_failure(io_thread& t, const route_match& rm, const wording& words, unsigned version,
                                  const std::exception& e) {
    svc_.stats(t.index).internal_error(internal_where::auth);
    log::error("webhook signature check failed", {{"source", rm.source}, {"error", e.what()}});
    return make_reply(version, outcome::internal_error, words, "internal error",
                      svc_.cfg().limits.retry_after);
}

inline std::optional<server::at_once> server::answer_now(io_thread& t, std::string_view bytes, bool admin,
                                                         const peer_name& remote) {
    const auto& limits = svc_.cfg().limits;
    core::budget_hold hold(&svc_.budget);
    request_reader parser({limits.header_bytes, limits.body_bytes}, hold);
    at_once out;
    // Made in place (no move of the reply and its strings into a variable declared before).
    std::optional<reply> r = [&]() -> std::optional<reply> {
        try {
            return answer_at_once(t, parser, bytes, admin, out.which);
        } catch (const std::exception& e) {
            // Containment, as in serve_one: a 500 for this request, never the end of the process.
            return contained(t, parser, out.which, remote, e);
        }
    }();
    if (!r) return std::nullopt;
    out.wire = finish(*r, parser, out.which, remote);
    out.close = r->close;
    out.status = static_cast<int>(r->status);
    return out;
}

inline std::optional<reply> server::answer_at_once(io_thread& t, request_reader& parser,
                                                   std::string_view bytes, bool admin, route& which) {
    // The rules, as handle() applies them (the head's, with the body's reservation, then the
    // body's), up to the first that would count something other than this delivery: refusals
    // go the session's way (they close a connection whose body was not read there), as do the
    // views, the reload and what has to wait: a worker, the journal, a delivery id to claim
    // (left before the signature and the draft are made, to be made again there).
    std::optional<head_step> step;
    request& req = parser.get();
    const bool whole = parser.put_whole(bytes, [&] {
        step = on_head(parser, admin, which);
        const route r = step->to.rm.r;
        return !step->refused && !step->to.get && r != route::reload &&
               may_count_inline(r == route::firehose, static_cast<std::size_t>(step->plan.declared), false,
                                svc_.pipe().journal() != nullptr) &&
               delivery_id_of(req, step->plan).empty();
    });
    if (!whole) return std::nullopt;
    head_step& head = *step;
    const ingest_plan& plan = head.plan;
    if (!plan.authenticated) {
        try {
            const auto verdict = verify_webhook(plan.source->auth, header_of(req), req.body(),
                                                std::chrono::system_clock::now());
            if (!verdict.ok) return std::nullopt;
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    std::unique_ptr<ingest_draft> later; // an id to claim, or workers to wait for: the session's way
    return ingest_now(t, req, head.to.rm, plan, later);
}

} // namespace faultline::server::detail
