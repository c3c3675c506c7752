// Defaults compiled into the binary.
#pragma once

#include <string_view>

namespace faultline::config {

/// The default pattern set, `name<TAB>class<TAB>regex` (config/default_patterns.tsv).
std::string_view default_patterns_tsv();

} // namespace faultline::config
