// Drives the real session code over beast::test::stream (no sockets): shared by the session
// fail matrix and the edge tests.
#pragma once

#include "../../server/src/http_session.hpp"

#include <boost/beast/_experimental/test/stream.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace faultline::test {

namespace net = boost::asio;
namespace btest = boost::beast::test;
using server::detail::server;

struct connection_result {
    std::string written;   ///< what the client received
    std::uint64_t counted; ///< events counted while the connection ran
};

/// One connection: `input` arrives (at most `read_size` bytes per read), then the client
/// half-closes; operation number `fail_at` (reads and writes together) and all later fail.
inline connection_result run_connection(server& srv, std::string_view input, std::size_t read_size,
                                        std::size_t fail_at, std::size_t* operations = nullptr) {
    auto& t = srv.io(0);
    const std::uint64_t before = srv.svc().pipe().view().totals.events;
    btest::fail_count fc(fail_at);
    btest::stream conn(t.ioc, fc);
    btest::stream client(t.ioc);
    conn.connect(client);
    conn.append(input);
    conn.read_size(read_size);
    conn.close_remote(); // the client sent everything: reads see the end after the data
    bool finished = false;
    std::exception_ptr failure;
    const std::string remote = "127.0.0.1:40000"; // outlives the coroutine (held by reference)
    net::co_spawn(t.ioc, srv.serve_connection(t, conn, false, remote), [&](std::exception_ptr e, bool) {
        finished = true;
        failure = e;
    });
    t.ioc.restart();
    t.ioc.run(); // returns when the session is over (a pending verdict keeps it running)
    REQUIRE(finished);
    REQUIRE_FALSE(failure);
    // Nothing left behind: the session unregistered and its bytes in flight were given back.
    CHECK(t.sessions.empty());
    CHECK(srv.svc().budget.used() == 0);
    if (operations) *operations = conn.nread() + conn.nwrite();
    return {client.str(), srv.svc().pipe().view().totals.events - before};
}

} // namespace faultline::test
