#include "colony/runtime/config.hpp"
#include "colony/runtime/options.hpp"
#include "options_detail.hpp"

#include <ctime>
#include <iomanip>

#include <caf/actor_system_config.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>
#include <caf/uri.hpp>
#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

namespace colony::runtime {
namespace {

using kind = option_kind;

std::string type_name(const option& o) {
  switch (o.type) {
    case kind::string: return "string";
    case kind::integer: return "integer";
    case kind::size: return "size";
    case kind::duration: return "duration";
    case kind::boolean: return "bool";
    case kind::choice: {
      std::string s;
      for (const auto& c : o.choices)
        s += (s.empty() ? "" : "|") + c;
      return s;
    }
  }
  return "";
}

std::string help_text(const option_registry& reg, const node_config& defaults) {
  std::ostringstream out;
  out << "colonyd - the Colony node\n\n"
         "usage: colonyd [--config FILE] [--OPTION VALUE | --OPTION=VALUE]... [--help] [--dump-config]\n"
         "               [--config-template]\n\n"
         "Sources, later wins: config file (CAF format, keys under [colony]), COLONY_* environment\n"
         "variables, command-line flags. --config / COLONY_CONFIG names the file.\n\n"
         "Options (default in brackets):\n";
  std::string module;
  for (const auto& o : reg.all()) {
    if (o.module != module) {
      module = o.module;
      out << " " << module << ":\n";
    }
    out << "  --" << o.name << " <" << type_name(o) << ">  [" << o.get(defaults) << "]\n      " << o.description
        << "  (env " << env_name(o.name) << ")\n";
  }
  out << "\nPlans are configured in the file, one line per plan in the [colony.plans] section:\n"
         "  NAME = { max-users = N, api-calls-per-month = N, storage-mb = N, ai-requests-per-month = N, max-plugins = "
         "N,\n"
         "           requests-per-second = N, burst = N }\n"
         "  (a missing limit is unlimited; defining any plan replaces the built-in free/starter/pro/enterprise).\n";
  return out.str();
}

/// Renders a config value from the file as the text a flag would carry.
std::optional<std::string> file_value_text(const caf::config_value& v) {
  if (auto s = caf::get_if<std::string>(&v))
    return *s;
  if (auto i = caf::get_if<caf::config_value::integer>(&v))
    return std::to_string(*i);
  if (auto b = caf::get_if<bool>(&v))
    return std::string{*b ? "true" : "false"};
  if (auto t = caf::get_if<caf::timespan>(&v))
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*t).count()) + "ms";
  if (auto a = caf::get_if<caf::atom_value>(&v))
    return caf::to_string(*a);
  if (auto u = caf::get_if<caf::uri>(&v)) // CAF reads "scheme:..." strings as URIs
    return caf::to_string(*u);
  return std::nullopt;
}

/// Levenshtein distance, for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// The first key or section of the file that is no option, no section of
/// options and not under colony.plans: "unknown key colony.http.body-limt
/// (did you mean colony.http.body-limit?)". A misspelt key would otherwise
/// leave its option at the default without a word.
std::optional<std::string> unknown_key(const option_registry& reg, const caf::settings& file) {
  std::vector<std::string> keys, sections{"colony", "colony.plans"};
  for (const auto& o : reg.all()) {
    keys.push_back("colony." + o.name);
    for (auto dot = o.name.find('.'); dot != std::string::npos; dot = o.name.find('.', dot + 1))
      sections.push_back("colony." + o.name.substr(0, dot));
  }
  auto nearest = [](const std::string& key, const std::vector<std::string>& known) {
    std::string best;
    std::size_t best_d = std::string::npos;
    for (const auto& k : known) {
      // A known key the unknown one extends ("listen" in "listen-address")
      // is the likelier meaning, whatever the letters of a longer name.
      bool extends = key.size() > k.size() && key.starts_with(k) && key[k.size()] == '-';
      if (auto d = extends ? 0 : edit_distance(key, k); d < best_d) {
        best_d = d;
        best = k;
      }
    }
    return best;
  };
  std::function<std::optional<std::string>(const caf::settings&, const std::string&)> walk =
    [&](const caf::settings& dict, const std::string& prefix) -> std::optional<std::string> {
    for (const auto& [name, value] : dict) {
      auto path = prefix.empty() ? name : prefix + "." + name;
      if (path == "colony.plans")
        continue; // load_plans checks it
      if (const auto* sub = caf::get_if<caf::settings>(&value)) {
        if (std::find(sections.begin(), sections.end(), path) == sections.end()) {
          auto all = sections;
          all.insert(all.end(), keys.begin(), keys.end());
          return "unknown section [" + path + "] (did you mean " + nearest(path, all) + "?)";
        }
        if (auto err = walk(*sub, path))
          return err;
      } else if (std::find(keys.begin(), keys.end(), path) == keys.end()) {
        return "unknown key " + path + " (did you mean " + nearest(path, keys) + "?)";
      }
    }
    return std::nullopt;
  };
  return walk(file, "");
}

std::optional<std::string> load_plans(const caf::settings& file, node_config& cfg) {
  auto colony = file.find("colony");
  if (colony == file.end())
    return std::nullopt;
  const auto* colony_dict = caf::get_if<caf::settings>(&colony->second);
  if (colony_dict == nullptr)
    return std::nullopt;
  auto plans = colony_dict->find("plans");
  if (plans == colony_dict->end())
    return std::nullopt;
  const auto* plans_dict = caf::get_if<caf::settings>(&plans->second);
  if (plans_dict == nullptr || plans_dict->empty())
    return "colony.plans: expected one entry per plan, e.g. free = { max-users = 5 }";
  cfg.rules.plans.clear();
  for (const auto& [name, value] : *plans_dict) {
    const auto* limits = caf::get_if<caf::settings>(&value);
    if (limits == nullptr)
      return "colony.plans." + name + ": expected a map such as { max-users = 5 }";
    actors::plan_limits pl;
    for (const auto& [key, v] : *limits) {
      std::optional<std::int32_t>* target = key == "max-users" ? &pl.max_users
        : key == "api-calls-per-month"                         ? &pl.api_calls_per_month
        : key == "storage-mb"                                  ? &pl.storage_mb
        : key == "ai-requests-per-month"                       ? &pl.ai_requests_per_month
        : key == "max-plugins"                                 ? &pl.max_plugins
        : key == "requests-per-second"                         ? &pl.requests_per_second
        : key == "burst"                                       ? &pl.burst
                                                               : nullptr;
      if (target == nullptr)
        return "colony.plans." + name + "." + key + ": unknown limit";
      auto i = caf::get_if<caf::config_value::integer>(&v);
      if (i == nullptr || *i < 0 || *i > INT32_MAX)
        return "colony.plans." + name + "." + key + ": expected a non-negative integer";
      *target = static_cast<std::int32_t>(*i);
    }
    cfg.rules.plans.emplace(name, pl);
  }
  return std::nullopt;
}

/// `text` as "; " comment lines of at most 78 columns.
void comment(std::ostringstream& out, const std::string& text) {
  std::string line;
  std::istringstream words{text};
  for (std::string w; words >> w;) {
    if (!line.empty() && line.size() + 1 + w.size() > 76) {
      out << "; " << line << "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty())
    out << "; " << line << "\n";
}

/// The configuration in the format of config/colony.conf, so that --config
/// loads it back to the same values: each option with its description, by
/// section in registration order, then the plans. Secrets are commented out
/// (masked): they belong in the environment, not in a file passed around.
/// With `as_template` (config/colony.conf itself) the values are the defaults.
std::string render_config(const option_registry& reg, const node_config& cfg, bool as_template) {
  std::ostringstream out;
  if (as_template)
    out << "; Colony node configuration (CAF config format): every option with its\n"
           "; default. Later sources win: this file < COLONY_* environment < --flags.\n"
           "; colonyd --config-template writes this file from the option registry;\n"
           "; colonyd --dump-config prints the effective values, secrets masked.\n";
  else
    out << "; colonyd --dump-config: the effective configuration, loadable with --config.\n"
           "; Secrets are not written: give them through their environment variables.\n";
  std::vector<std::string> sections;
  auto section_of = [](const option& o) {
    auto dot = o.name.rfind('.');
    return dot == std::string::npos ? std::string{} : o.name.substr(0, dot);
  };
  for (const auto& o : reg.all())
    if (std::find(sections.begin(), sections.end(), section_of(o)) == sections.end())
      sections.push_back(section_of(o));
  for (const auto& section : sections) {
    out << "\n[colony" << (section.empty() ? "" : "." + section) << "]\n";
    for (const auto& o : reg.all()) {
      if (section_of(o) != section)
        continue;
      auto key = section.empty() ? o.name : o.name.substr(section.size() + 1);
      std::string value;
      for (char ch : o.get(cfg)) { // a CAF config string: quotes and backslashes escaped
        if (ch == '"' || ch == '\\')
          value += '\\';
        value += ch;
      }
      comment(out, o.description + " (" + env_name(o.name) + ")");
      if (o.secret && value.find("***") != std::string::npos)
        out << "; " << key << " = \"" << value << "\"  (secret: set " << env_name(o.name) << ")\n";
      else
        out << key << " = \"" << value << "\"\n";
    }
  }
  out << "\n";
  comment(out,
          "Plans: one line per plan; a missing limit is unlimited. Defining any plan replaces the built-in "
          "plans (these are the built-in values).");
  out << "[colony.plans]\n";
  for (const auto& [name, pl] : cfg.rules.plans) {
    std::string fields;
    auto field = [&](const char* k, const std::optional<std::int32_t>& v) {
      if (v)
        fields += (fields.empty() ? "" : ", ") + std::string{k} + " = " + std::to_string(*v);
    };
    field("max-users", pl.max_users);
    field("api-calls-per-month", pl.api_calls_per_month);
    field("storage-mb", pl.storage_mb);
    field("ai-requests-per-month", pl.ai_requests_per_month);
    field("max-plugins", pl.max_plugins);
    field("requests-per-second", pl.requests_per_second);
    field("burst", pl.burst);
    out << name << " = { " << fields << (fields.empty() ? "}" : " }") << "\n";
  }
  return out.str();
}

} // namespace

std::string mask_dsn(const std::string& dsn) {
  // postgresql://user:secret@host/db → postgresql://user:***@host/db
  auto scheme = dsn.find("://");
  if (scheme == std::string::npos)
    return dsn;
  auto at = dsn.find('@', scheme + 3);
  if (at == std::string::npos)
    return dsn;
  auto colon = dsn.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at)
    return dsn;
  return dsn.substr(0, colon + 1) + "***" + dsn.substr(at);
}

std::string node_config::store_for_display() const { return mask_dsn(store); }

config_result load_config(int argc, const char* const* argv, const char* const* envp, const option_registry& reg) {
  config_result res;
  auto& cfg = res.config;
  const node_config defaults;
  auto fail = [&](std::string msg) {
    res.what = config_result::action::exit;
    res.exit_code = 2;
    res.output = "colonyd: " + msg + "\n(run colonyd --help for the options)\n";
    return res;
  };

  // Collect flags first (so --help works with a broken file).
  std::vector<std::pair<std::string, std::string>> flags;
  bool want_help = false, want_dump = false, want_template = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      want_help = true;
      continue;
    }
    if (arg == "--dump-config") {
      want_dump = true;
      continue;
    }
    if (arg == "--config-template") {
      want_template = true;
      continue;
    }
    if (!arg.starts_with("--"))
      return fail("unexpected argument '" + arg + "'");
    auto eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc)
        return fail("option --" + name + " needs a value");
      value = argv[++i];
    }
    flags.emplace_back(name, value);
  }
  if (want_help) {
    res.what = config_result::action::exit;
    res.output = help_text(reg, defaults);
    return res;
  }

  std::map<std::string, std::string> env;
  for (auto e = envp; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && kv.starts_with("COLONY_"))
      env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }

  // The config file: --config, else COLONY_CONFIG.
  for (const auto& [name, value] : flags)
    if (name == "config")
      cfg.config_file = value;
  if (cfg.config_file.empty())
    if (auto it = env.find("COLONY_CONFIG"); it != env.end())
      cfg.config_file = it->second;

  auto apply = [&](const option& o, const std::string& value,
                   const std::string& source) -> std::optional<config_result> {
    if (auto err = o.set(cfg, value))
      return fail("invalid value for " + o.name + " (from " + source +
                  "): " + *err); // secrets' errors never quote them
    return std::nullopt;
  };

  if (!cfg.config_file.empty()) {
    std::ifstream in{cfg.config_file};
    if (!in)
      return fail("cannot read config file '" + cfg.config_file + "'");
    auto parsed = caf::actor_system_config::parse_config(in);
    if (!parsed)
      return fail("config file '" + cfg.config_file +
                  "' is not valid CAF config syntax: " + caf::to_string(parsed.error()));
    auto& file = *parsed;
    if (auto err = unknown_key(reg, file))
      return fail(*err + " in " + cfg.config_file);
    for (const auto& o : reg.all()) {
      auto* v = caf::get_if(&file, "colony." + o.name);
      if (v == nullptr)
        continue;
      auto text = file_value_text(*v);
      if (!text)
        return fail("invalid value for " + o.name + " (from " + cfg.config_file + "): unsupported value type");
      if (auto r = apply(o, *text, cfg.config_file + " key colony." + o.name))
        return *r;
    }
    if (auto err = load_plans(file, cfg))
      return fail("invalid plans in " + cfg.config_file + ": " + *err);
  }
  for (const auto& o : reg.all()) {
    if (auto it = env.find(env_name(o.name)); it != env.end())
      if (auto r = apply(o, it->second, "environment variable " + env_name(o.name)))
        return *r;
  }
  for (const auto& [name, value] : flags) {
    if (name == "config")
      continue;
    const option* found = reg.find(name);
    if (found == nullptr)
      return fail("unknown option --" + name);
    if (auto r = apply(*found, value, "flag --" + name))
      return *r;
  }
  for (const auto& check : reg.checks())
    if (auto err = check(cfg))
      return fail(*err);

  if (want_dump || want_template) {
    res.what = config_result::action::exit;
    res.output = render_config(reg, want_template ? defaults : cfg, want_template);
  }
  return res;
}

} // namespace colony::runtime
