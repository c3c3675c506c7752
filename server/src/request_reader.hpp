// faultline's HTTP request parser: Beast's basic_parser with our own storage callbacks, so that
// every byte from outside is bounded and nothing the parser does can throw into io_context::run():
//  - a field name or value that Beast's fields cannot store (16-bit sizes) is an error, not a
//    std::length_error; any exception in a callback becomes request_error::internal;
//  - chunk extensions are bounded by the head limit, and the trailer section as a whole too;
//    chunk framing (size lines, extensions, trailers) counts toward the body limit;
//  - the body is reserved in the in-flight budget before it is buffered: Content-Length bodies
//    at once (admit_declared), chunked bodies as each chunk is announced, by the capacity the
//    body string grows to (old and new buffer both, while the copy lasts).
// The buffer the parser is fed from must be bounded too (max_size): a chunk-size line or a trailer
// section is only parsed once complete, and Beast keeps no limit of its own on them.
// I/O-free and header-only: used by the session (http_session.hpp) and the fuzz targets.
#pragma once

#include "faultline/config/config.hpp"
#include "faultline/core/budget.hpp"
#include "faultline/core/decode/decoder.hpp"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <string>
#include <system_error>

namespace faultline::server::detail {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;

/// What the reader refuses, as error codes of their own category (Beast passes them through).
enum class request_error {
    field_too_large = 1, ///< a field name or value over what a request head may hold
    extension_too_long,  ///< a chunk extension over the head limit
    trailer_too_large,   ///< the trailer section over the head limit
    body_too_large,      ///< body plus chunk framing over the body limit
    over_budget,         ///< the in-flight byte budget cannot hold the next chunk
    internal,            ///< an exception inside the parser's storage (e.g. allocation)
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor" // Boost's error_category: a static instance only
class request_error_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "faultline.request"; }
    std::string message(int ev) const override {
        switch (static_cast<request_error>(ev)) {
        case request_error::field_too_large:
            return "header field too large";
        case request_error::extension_too_long:
            return "chunk extension too long";
        case request_error::trailer_too_large:
            return "trailer section too large";
        case request_error::body_too_large:
            return "body too large";
        case request_error::over_budget:
            return "too many bytes in flight";
        case request_error::internal:
            return "internal error";
        }
        return "request error";
    }
};
#pragma GCC diagnostic pop

inline const boost::system::error_category& request_category() noexcept {
    static const request_error_category c;
    return c;
}
inline boost::system::error_code make_error_code(request_error e) noexcept {
    return {static_cast<int>(e), request_category()};
}

/// The largest `limits.header_bytes` the parser can honour: any field of a head within it fits
/// Beast's 16-bit field sizes (a value of 65 534 bytes needs a head of more than 64 KiB).
inline constexpr std::size_t max_header_bytes = config::limits_config::max_header_bytes;

class request_reader final : public http::basic_parser<true> {
public:
    struct limits {
        std::size_t header_bytes = 16384;
        std::uint64_t body_bytes = std::uint64_t{128} << 20;
    };

    request_reader(limits l, core::budget_hold& hold)
        : limits_(l)
        , hold_(hold) {
        header_limit(static_cast<std::uint32_t>(std::min(l.header_bytes, max_header_bytes)));
        // Beast's own body limit counts chunk data only; ours (body_too_large) counts framing too.
        body_limit(boost::none);
    }

    request& get() noexcept { return msg_; }
    const request& get() const noexcept { return msg_; }
    request release() noexcept { return std::move(msg_); }

    /// Bytes of chunk framing seen so far (size lines, extensions, trailer section).
    std::uint64_t framing_bytes() const noexcept { return framing_; }

    /// Before a Content-Length body is read: reserves it (plus the JSON padding the decoders
    /// need) in the budget. False when the budget cannot give it.
    bool admit_declared(std::uint64_t length) {
        const std::uint64_t need = length + core::decode::json_padding;
        if (!hold_.grow(need)) return false;
        try {
            msg_.body().reserve(static_cast<std::size_t>(need)); // an empty string: exact
        } catch (...) {
            hold_.shrink(need);
            throw;
        }
        charged_ = need;
        if (msg_.body().capacity() > need && hold_.grow(msg_.body().capacity() - need))
            charged_ = msg_.body().capacity();
        body_reserved_ = true;
        return true;
    }

    /// Parses `bytes` as exactly one whole request: a head and the body it declares, nothing
    /// after it; not chunked, and no 100-continue to send first. `after_head` runs between the
    /// head and the body (the session's rules and the body's reservation, in handle()'s order)
    /// and may stop there by returning false. False otherwise too (more to read, a next request
    /// behind it, chunked framing, anything malformed or over a limit); the parser is then for
    /// nothing else (the same bytes go to a new one).
    template <class AfterHead>
    bool put_whole(std::string_view bytes, AfterHead&& after_head) {
        boost::system::error_code ec;
        const std::size_t head = put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec || !is_header_done() || chunked()) return false;
        if (msg_.find(http::field::expect) != msg_.end()) return false;
        if (head + content_length().value_or(0) != bytes.size()) return false;
        if (!after_head()) return false;
        std::size_t used = head;
        while (!ec && !is_done() && used < bytes.size())
            used += put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        return !ec && is_done() && used == bytes.size();
    }

private:
    void on_request_impl(http::verb method, boost::beast::string_view method_str,
                         boost::beast::string_view target, int version,
                         boost::system::error_code& ec) override {
        try {
            msg_.target(target);
            if (method != http::verb::unknown)
                msg_.method(method);
            else
                msg_.method_string(method_str);
            msg_.version(version);
        } catch (...) {
            ec = make_error_code(request_error::internal);
        }
    }

    void on_field_impl(http::field name, boost::beast::string_view name_string,
                       boost::beast::string_view value, boost::system::error_code& ec) override {
        if (in_trailer_) {
            // Counted and bounded, never merged into the header fields (RFC 9110 §6.5.1): a
            // trailer cannot supply a request id, a content encoding or a signature header that
            // the head did not.
            (void)name;
            trailer_ += name_string.size() + value.size() + 4; // "name: value\r\n"
            framing_ += name_string.size() + value.size() + 4;
            if (trailer_ > limits_.header_bytes) {
                ec = make_error_code(request_error::trailer_too_large);
                return;
            }
            body_fits(0, ec);
            return;
        }
        // Beast stores sizes in 16 bits (a value of n bytes needs n + 2 <= 65535) and throws
        // beyond; a head within max_header_bytes never gets there, but the check does not rely on it.
        if (name_string.size() > 65533 || value.size() > 65533) {
            ec = make_error_code(request_error::field_too_large);
            return;
        }
        try {
            msg_.insert(name, name_string, value);
        } catch (const std::length_error&) {
            ec = make_error_code(request_error::field_too_large);
        } catch (...) {
            ec = make_error_code(request_error::internal);
        }
    }

    void on_response_impl(int, boost::beast::string_view, int, boost::system::error_code&) override {}

    void on_header_impl(boost::system::error_code&) override {}

    void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                           boost::system::error_code& ec) override {
        if (length && *length > limits_.body_bytes) {
            ec = make_error_code(request_error::body_too_large);
            return;
        }
        // A Content-Length body must have been admitted (reserved) by the session first.
        if (length && *length > 0 && !body_reserved_ && !admit(*length, ec)) return;
    }

    std::size_t on_body_impl(boost::beast::string_view data, boost::system::error_code& ec) override {
        if (msg_.body().size() + data.size() + core::decode::json_padding > msg_.body().capacity() &&
            !admit(data.size(), ec))
            return 0;
        try {
            msg_.body().append(data.data(), data.size());
        } catch (...) {
            ec = make_error_code(request_error::internal);
            return 0;
        }
        return data.size();
    }

    void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                              boost::system::error_code& ec) override {
        if (extensions.size() > limits_.header_bytes) {
            ec = make_error_code(request_error::extension_too_long);
            return;
        }
        // The size line itself: at least one digit and CRLF, plus the CRLF ending the chunk.
        framing_ += extensions.size() + 5;
        if (size == 0) in_trailer_ = true;
        if (!body_fits(size, ec)) return;
        if (size) admit(size, ec);
    }

    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view data,
                                   boost::system::error_code& ec) override {
        return on_body_impl(data, ec);
    }

    void on_finish_impl(boost::system::error_code&) override {}

    bool body_fits(std::uint64_t more, boost::system::error_code& ec) {
        const std::uint64_t total = msg_.body().size() + framing_;
        if (total > limits_.body_bytes || more > limits_.body_bytes - total) {
            ec = make_error_code(request_error::body_too_large);
            return false;
        }
        return true;
    }

    /// Makes room for `more` body bytes (plus padding), reserving the new capacity in the budget
    /// before allocating it; the old buffer stays charged until the copy is done. Grows by
    /// doubling while the budget allows (few copies), by less near its end.
    bool admit(std::uint64_t more, boost::system::error_code& ec) {
        std::string& body = msg_.body();
        const std::uint64_t need = body.size() + more + core::decode::json_padding;
        if (need <= body.capacity()) return true;
        const std::uint64_t max_cap = limits_.body_bytes + core::decode::json_padding;
        std::uint64_t cap = 0;
        for (const std::uint64_t want :
             {charged_ * 2, charged_ + charged_ / 2, charged_ + charged_ / 4, need}) {
            cap = std::max(need, std::min(want, max_cap));
            if (hold_.grow(cap)) break;
            cap = 0;
        }
        if (cap == 0) {
            ec = make_error_code(request_error::over_budget);
            return false;
        }
        try {
            // A new string gets exactly the capacity asked for (reserve() on a non-empty one may
            // round it up to twice the old, past what was reserved in the budget).
            std::string fresh;
            fresh.reserve(static_cast<std::size_t>(cap));
            if (fresh.capacity() > cap) {
                if (!hold_.grow(fresh.capacity() - cap)) {
                    hold_.shrink(cap);
                    ec = make_error_code(request_error::over_budget);
                    return false;
                }
                cap = fresh.capacity();
            }
            fresh.append(body);
            body.swap(fresh);
        } catch (...) {
            hold_.shrink(cap);
            ec = make_error_code(request_error::internal);
            return false;
        }
        hold_.shrink(charged_); // the old buffer is freed
        charged_ = cap;
        return true;
    }

    limits limits_;
    core::budget_hold& hold_;
    request msg_;
    bool body_reserved_ = false;
    std::uint64_t charged_ = 0; ///< the body buffer's capacity, as reserved in the budget
    bool in_trailer_ = false;
    std::uint64_t trailer_ = 0;
    std::uint64_t framing_ = 0;
};

} // namespace faultline::server::detail
