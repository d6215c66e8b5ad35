// The option registry of a node. Every module registers its options here
// (name, type, range, description, and how it sets and shows its node_config
// field); `--help`, `--dump-config`, the config file, the COLONY_*
// environment and the flags all read this one table, and config/colony.conf
// is the registry's own rendering (`colonyd --config-template`; a test keeps
// them equal). Checks that need several options (the default plan is a
// configured plan, ...) are registered next to the options they read.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "colony/runtime/config.hpp"

namespace colony::runtime {

enum class option_kind { string, integer, size, duration, choice, boolean };

struct option {
  std::string name; // flag --name; file key colony.<name>; env COLONY_<NAME>
  option_kind type;
  std::string description;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::vector<std::string> choices;
  bool secret = false;
  std::function<std::optional<std::string>(node_config&, const std::string&)> set; // error text
  std::function<std::string(const node_config&)> get;
  std::string module; // who registered it (filled by the registry)
};

/// A check over the whole configuration once every source is read: nullopt,
/// or the error (naming the option) that stops the node with exit 2.
using config_check = std::function<std::optional<std::string>(node_config&)>;

class option_registry {
public:
  /// Adds an option of `module`; a name taken twice throws std::logic_error.
  void add(const std::string& module, option o);
  void add_check(config_check check) { checks_.push_back(std::move(check)); }

  [[nodiscard]] const std::vector<option>& all() const { return options_; }
  [[nodiscard]] const option* find(const std::string& name) const;
  [[nodiscard]] const std::vector<config_check>& checks() const { return checks_; }

private:
  std::vector<option> options_;
  std::vector<config_check> checks_;
};

/// COLONY_<NAME>: the environment variable of an option.
[[nodiscard]] std::string env_name(const std::string& name);

/// Option rows bound to a node_config field, with the parsing and range
/// checks every option of that type shares.
namespace opt {

using string_check = std::function<std::optional<std::string>(node_config&, const std::string&)>;

option integer(std::string name, std::string desc, std::int64_t min, std::int64_t max, int node_config::*member);
option size(std::string name, std::string desc, std::int64_t min, std::int64_t max, std::int64_t node_config::*member);
option duration(std::string name, std::string desc, std::chrono::milliseconds min, std::chrono::milliseconds max,
                std::chrono::milliseconds node_config::*member);
option string(std::string name, std::string desc, std::string node_config::*member, string_check check = {});
/// A secret string: shown as *** once set, never quoted in errors or dumps.
option secret(std::string name, std::string desc, std::string node_config::*member, string_check check = {});
option boolean(std::string name, std::string desc, bool node_config::*member);
option choice(std::string name, std::string desc, std::vector<std::string> choices, std::string node_config::*member);
/// A comma-separated list; `check` names a bad item.
option list(std::string name, std::string desc, std::vector<std::string> node_config::*member,
            std::function<std::optional<std::string>(const std::string&)> check);
/// A free-form option with its own setter and getter.
option custom(std::string name, option_kind type, std::string desc,
              std::function<std::optional<std::string>(node_config&, const std::string&)> set,
              std::function<std::string(const node_config&)> get);

/// Shared value checks.
std::optional<std::int64_t> parse_int(const std::string& s);
std::optional<std::string> kafka_topic(node_config&, const std::string& v);
std::optional<std::string> not_empty(node_config&, const std::string& v);

} // namespace opt

} // namespace colony::runtime
