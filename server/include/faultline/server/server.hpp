// `faultline serve`: the HTTP service (Beast/Asio; implementation in http_server.cpp).
#pragma once

#include "faultline/config/config.hpp"

namespace faultline::server {

/// Runs the service until SIGTERM/SIGINT, then drains (stop accepting, /readyz 503, finish
/// in-flight requests within limits.shutdown_grace) and returns the exit code (0 after a clean
/// drain; 1 when it cannot start, e.g. the address is taken).
/// `patterns`: cfg.patterns already compiled (null: compiled here).
int serve(const config::config& cfg, std::shared_ptr<const core::match::pattern_set> patterns = nullptr);

} // namespace faultline::server
