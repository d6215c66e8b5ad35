// The option table of colonyd (config.cpp reads flags, the environment and
// the config file through it; --help and --dump-config print it): one row
// per option with its name, type, range, description, and how it sets and
// shows its node_config field. Private to runtime/src.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "colony/runtime/config.hpp"

namespace colony::runtime::detail {

enum class kind { string, integer, size, duration, choice, boolean };

struct option {
  std::string name; // flag --name; file key colony.<name>; env COLONY_<NAME>
  kind type;
  std::string description;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::vector<std::string> choices;
  bool secret = false;
  std::function<std::optional<std::string>(node_config&, const std::string&)> set; // error text
  std::function<std::string(const node_config&)> get;
};

/// Every option, in the order --help and --dump-config show them.
const std::vector<option>& options();
/// COLONY_<NAME>: the environment variable of an option.
std::string env_name(const std::string& name);

} // namespace colony::runtime::detail
