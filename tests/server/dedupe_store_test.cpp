// The shared dedupe store is never a dependency: a store that is down, silent or speaking
// nonsense answers "unavailable" (this process's table decides) within its timeout, counts the
// error, and never stops the caller. The real Redis is exercised by tests/integration/cluster_test.py.
#include "faultline/server/dedupe_store.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace faultline::server;
using namespace std::chrono_literals;

namespace {

/// A loopback listening socket; `accept_and` runs for each connection on a thread.
class fake_store {
public:
    explicit fake_store(std::function<void(int)> on_connection = {}, int port = 0)
        : on_(std::move(on_connection)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        const int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        REQUIRE(::listen(fd_, 16) == 0);
        if (on_)
            thread_ = std::thread([this] {
                for (;;) {
                    const int c = ::accept(fd_, nullptr, nullptr);
                    if (c < 0 || stop_) {
                        if (c >= 0) ::close(c);
                        return;
                    }
                    on_(c);
                    ::close(c);
                }
            });
    }
    ~fake_store() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        if (thread_.joinable()) thread_.join();
    }
    int port() const { return port_; }

private:
    std::function<void(int)> on_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

/// A fake store that reads one request, writes `reply`, and holds the connection until the client closes it.
std::function<void(int)> replying(std::string reply) {
    return [reply](int c) {
        char buf[4096];
        (void)::read(c, buf, sizeof buf);
        (void)::write(c, reply.data(), reply.size());
        (void)::read(c, buf, sizeof buf);
    };
}

dedupe_store::options store_at(int port) {
    dedupe_store::options o;
    o.endpoint.host = "127.0.0.1";
    o.endpoint.port = port;
    o.timeout = 100ms;
    return o;
}

dedupe_store::verdict claim(dedupe_store& s, const std::string& key) {
    std::promise<dedupe_store::verdict> p;
    auto f = p.get_future();
    s.claim(key, [&p](dedupe_store::verdict v) { p.set_value(v); });
    // Bounded by the store's timeout (twice, plus a connection attempt); 10 s means "never".
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
}

} // namespace

TEST_CASE("dedupe_store: a store that is down answers unavailable and counts it; finishes wait for it") {
    int port = 0;
    { // a port nobody listens on any more
        fake_store gone;
        port = gone.port();
    }
    dedupe_store s(store_at(port));
    CHECK(claim(s, "a") == dedupe_store::verdict::unavailable);
    CHECK(s.errors() == 1);
    CHECK_FALSE(s.connected());
    // Nobody waits for a finish: it is kept until the store is back, then sent.
    s.finish("a", true);
    std::promise<std::string> seen;
    auto got = seen.get_future();
    std::atomic<bool> once{false};
    fake_store back(
        [&](int c) {
            char buf[4096];
            const auto n = ::read(c, buf, sizeof buf);
            const std::string data(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            const char ok[] = "+OK\r\n";
            (void)::write(c, ok, sizeof ok - 1);
            if (!once.exchange(true)) seen.set_value(data);
            (void)::read(c, buf, sizeof buf);
        },
        port);
    REQUIRE(got.wait_for(10s) == std::future_status::ready);
    const std::string sent = got.get();
    CHECK(sent.find("SET") != std::string::npos);
    CHECK(sent.find("faultline:dedupe:a") != std::string::npos);
    CHECK(s.errors() == 1); // kept, not dropped
    s.stop();
}

TEST_CASE("dedupe_store: a store that accepts and never answers does not hold the caller") {
    fake_store silent; // the kernel completes the handshake; nothing is ever read or written
    dedupe_store s(store_at(silent.port()));
    CHECK(claim(s, "a") == dedupe_store::verdict::unavailable);
    CHECK(claim(s, "b") == dedupe_store::verdict::unavailable);
    CHECK(s.errors() >= 2);
}

TEST_CASE("dedupe_store: replies that are not the protocol's are errors, not verdicts") {
    SUBCASE("garbage bytes") {
        fake_store liar(replying("\x01\x02 not RESP at all\r\n"));
        dedupe_store s(store_at(liar.port()));
        CHECK(claim(s, "a") == dedupe_store::verdict::unavailable);
        CHECK(s.errors() >= 1);
    }
    SUBCASE("a well-formed reply of the wrong type (an integer to a claim)") {
        fake_store liar(replying(":1\r\n"));
        dedupe_store s(store_at(liar.port()));
        CHECK(claim(s, "a") == dedupe_store::verdict::unavailable);
        CHECK(s.errors() == 1);
    }
    SUBCASE("an error reply (a store that refuses scripts)") {
        fake_store refusing(replying("-NOSCRIPT scripts are disabled\r\n"));
        dedupe_store s(store_at(refusing.port()));
        CHECK(claim(s, "a") == dedupe_store::verdict::unavailable);
        CHECK(s.errors() == 1);
    }
}

TEST_CASE("dedupe_store: stopping answers what is still waiting") {
    fake_store silent;
    std::promise<dedupe_store::verdict> p;
    auto f = p.get_future();
    {
        auto o = store_at(silent.port());
        o.timeout = 2000ms;
        dedupe_store s(o);
        s.claim("a", [&p](dedupe_store::verdict v) { p.set_value(v); });
    } // destroyed while the claim waits on the silent store
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == dedupe_store::verdict::unavailable);
}
