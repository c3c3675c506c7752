// The command line: `faultline scan`, `--help`, `--version`.
#pragma once

#include <iosfwd>

namespace faultline::server {

/// Runs the command line. Exit codes: 0 ok, 1 runtime error (bad input), 2 usage or
/// configuration error. Diagnostics go to `err`, the report to `out`.
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

} // namespace faultline::server
