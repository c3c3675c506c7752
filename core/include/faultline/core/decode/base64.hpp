// Strict RFC 4648 §4 base64 (standard alphabet, '=' padding required, canonical trailing bits).
#pragma once

#include "faultline/core/error.hpp"

#include <string>
#include <string_view>

namespace faultline::core::decode {

/// Decodes `in` into `out` (replacing its contents). On error `out` is unspecified and the
/// message names the byte offset inside `in` and what is wrong there.
result<void> base64_decode(std::string_view in, std::string& out);

/// Encodes `in` (used by tests and the load generators).
std::string base64_encode(std::string_view in);

} // namespace faultline::core::decode
