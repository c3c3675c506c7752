// `faultline serve`: the HTTP service (Beast/Asio; implementation in http_server.cpp).
#pragma once

#include "faultline/config/config.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace faultline::server {

/// Runs the service until SIGTERM/SIGINT, then drains (stop accepting, /readyz 503, finish
/// in-flight requests within limits.shutdown_grace) and returns the exit code (0 after a clean
/// drain; 1 when it cannot start, e.g. the address is taken).
/// A configuration re-read for a reload: the configuration and its compiled patterns, or the
/// problems that make it unusable (then the running configuration stays).
struct reload_input {
    std::optional<config::config> cfg;
    std::shared_ptr<const core::match::pattern_set> patterns;
    std::string problems;
};
using reload_function = std::function<reload_input()>;

/// `patterns`: cfg.patterns already compiled (null: compiled here). `reloader`: re-reads the
/// configuration on SIGHUP or POST /-/reload (none: reloads fail).
int serve(const config::config& cfg, std::shared_ptr<const core::match::pattern_set> patterns = nullptr,
          reload_function reloader = {});

} // namespace faultline::server
