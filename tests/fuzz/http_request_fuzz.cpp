// The HTTP request path before any route runs: the server's request parser (request_reader:
// Beast's basic_parser with bounded fields, chunk extensions and trailers, budget reservations)
// with head 16 KiB, body 1 MiB and a 2 MiB budget, then faultline's RFC 9112 framing checks, the
// route table and the query parameters, for every request of a pipelined stream of bytes. The
// budget is back to 0 after each request, and a refused request never held more than it.
#include "fuzz_support.hpp"

#include "../../server/src/http_request.hpp"
#include "../../server/src/request_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    using namespace faultline::server::detail;
    boost::asio::const_buffer input(data, size);
    for (int message = 0; message < 16 && input.size() > 0; ++message) {
        static faultline::core::byte_budget budget(2 << 20);
        faultline::fuzz::require(budget.used() == 0);
        faultline::core::budget_hold hold(&budget);
        request_reader parser({16 << 10, 1 << 20}, hold);
        parser.eager(true);
        boost::beast::error_code ec;
        bool checked = false;
        while (input.size() > 0 && !parser.is_done()) {
            const std::size_t used = parser.put(input, ec);
            input += used;
            if (ec) break;
            if (parser.is_header_done() && !checked) {
                checked = true;
                const request& req = parser.get();
                const std::string problem = framing_problem(req);
                const std::string_view target(req.target().data(), req.target().size());
                const std::size_t q = target.find('?');
                // The rules Beast leaves to us, checked independently of framing_problem().
                std::size_t cl = 0, te = 0, host = 0;
                for (const auto& f : req.base()) {
                    cl += f.name() == http::field::content_length;
                    te += f.name() == http::field::transfer_encoding;
                    host += f.name() == http::field::host;
                }
                const bool must_refuse =
                    (cl && te) || (te && req.version() < 11) || (req.version() >= 11 && host != 1) || te > 1;
                if (must_refuse) faultline::fuzz::require(!problem.empty());
                const route_match rm = match_route(target.substr(0, q));
                if (rm.r == faultline::server::route::webhook)
                    faultline::fuzz::require(!rm.source.empty() && rm.source.find('/') == std::string::npos);
                if (q != std::string_view::npos) {
                    for (const char* key : {"limit", "group", "class", "sort"})
                        (void)query_param(target.substr(q + 1), key);
                }
                if (!problem.empty()) return 0; // answered 400 and closed
                if (parser.content_length() && *parser.content_length() <= (1u << 20) &&
                    !parser.admit_declared(*parser.content_length()))
                    return 0; // answered 503
            }
            if (used == 0) break;
        }
        if (ec == http::error::need_more || (!ec && !parser.is_done())) {
            parser.put_eof(ec); // the peer closed
            return 0;
        }
        if (ec) return 0; // answered 400 and closed
        faultline::fuzz::require(parser.get().body().size() + parser.framing_bytes() <= (1u << 20));
    }
    return 0;
}
