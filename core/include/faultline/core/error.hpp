// Error values of the engine: a kind (finite set, usable as a metric label) plus a precise,
// human-readable message naming where the problem is (record, byte offset, field).
#pragma once

#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace faultline::core {

enum class errc {
    json,        ///< invalid JSON, or JSON of the wrong shape
    base64,      ///< invalid base64 in a Firehose record
    gzip,        ///< corrupt or truncated gzip data
    too_large,   ///< a decompressed size, line or document over its configured cap
    document,    ///< a well-formed document that breaks the CloudWatch/Firehose contract
    protobuf,    ///< invalid protobuf, or a message of the wrong shape (OTLP)
    pattern,     ///< a pattern that cannot be compiled or loaded
    io,          ///< a file that cannot be read, or written (the journal: retry later)
    over_budget, ///< the in-flight byte budget cannot hold what decoding needs (retry later)
    internal,    ///< a failure of the service itself (allocation, a library), not of the input
};

/// Short stable name of a kind, e.g. for `faultline_decode_errors_total{kind}`.
std::string_view kind_name(errc code) noexcept;

struct error {
    errc code;
    std::string message;
};

/// Thrown only where a `result` is unwrapped with `.value()` on an error (a programming error).
class error_exception : public std::runtime_error {
public:
    explicit error_exception(const error& e)
        : std::runtime_error(e.message)
        , code_(e.code) {}
    errc code() const noexcept { return code_; }

private:
    errc code_;
};

template <class Ostream>
Ostream& operator<<(Ostream& os, const error& e) {
    os << kind_name(e.code) << ": " << e.message;
    return os;
}

[[noreturn]] inline void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw error_exception(e);
}

template <class T>
using result = boost::system::result<T, error>;

inline error make_error(errc code, std::string message) {
    return error{code, std::move(message)};
}

} // namespace faultline::core
