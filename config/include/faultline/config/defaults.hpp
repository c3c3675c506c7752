// Defaults compiled into the binary.
#pragma once

#include <string_view>

namespace faultline::config {

/// The text of config/default.yaml.
std::string_view default_config_yaml();

} // namespace faultline::config
