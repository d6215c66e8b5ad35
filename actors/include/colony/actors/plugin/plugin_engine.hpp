// What the plugin actors need from a sandbox, as an interface: the actors
// know no Lua, the lua adapter implements it (adapters/src/lua/engine.cpp)
// and the plugins module hands it to the entities (entity_env::plugins).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace colony::actors {

/// What a hook's call came to (one step: to its end, or to a host call it waits for).
struct plugin_run {
  enum class state : std::uint8_t { done, pending, failed } st = state::done;
  std::string results = "[]"; // done: the hook's return values, a JSON array
  std::string request;        // pending: {"fn": "kv.get", "args": [...]}
  std::string
    fault; // failed: syntax | load | no_such_hook | error | instructions | time | memory | output | host_calls
  std::string message;            // failed: the limit named, or the plugin's error with its line
  std::uint64_t instructions = 0; // spent by the call so far
  bool needs_reset = false;       // the state may be inconsistent: reset() before the next call
  bool lost = false;              // run_plugin_step: reset() was needed and failed, the state is gone
  /// A broken limit (not the plugin's own error): what the circuit breaker counts.
  [[nodiscard]] bool limit_broken() const { return st == state::failed && fault != "error" && fault != "no_such_hook"; }
};

/// The host functions the plugin actor serves (colony.<table>.<name>; table
/// "" for colony.<name>): each yields the hook until the actor answers.
inline const std::vector<std::pair<std::string, std::string>>& plugin_host_calls() {
  static const std::vector<std::pair<std::string, std::string>> calls{
    {"kv", "get"}, {"kv", "set"},    {"kv", "delete"},  {"kv", "list"},
    {"", "emit"},  {"users", "get"}, {"users", "list"}, {"http", "request"}};
  return calls;
}

/// One loaded plugin: its own Lua state. Not thread-safe: one actor owns it.
class plugin_code {
public:
  virtual ~plugin_code() = default;
  [[nodiscard]] virtual const std::vector<std::string>& hooks() const = 0;
  [[nodiscard]] virtual bool has(std::string_view hook) const = 0;
  /// Starts `hook` with `args_json` (a JSON array of its arguments).
  virtual plugin_run call(std::string_view hook, const std::string& args_json) = 0;
  /// Answers the pending host request: its value as JSON, or an error to raise in the plugin.
  virtual plugin_run resume(const std::string& value_json, const std::optional<std::string>& error) = 0;
  /// A fresh state from the same source.
  virtual bool reset(plugin_run* error) = 0;
  [[nodiscard]] virtual std::size_t memory() const = 0;
};

/// Makes sandboxes. Shared by every plugin actor of the node; const and thread-safe.
class plugin_engine {
public:
  virtual ~plugin_engine() = default;
  /// Compiles and runs `source` (text only); nullptr with `*error` set
  /// (fault syntax or load, the message naming the line) when it fails.
  /// `label` names the plugin in log lines ("<tenant>/<plugin>@<version>").
  [[nodiscard]] virtual std::unique_ptr<plugin_code> load(const std::string& label, const std::string& source,
                                                          plugin_run* error) const = 0;
  /// The limits as the docs and problems name them ("10000000 instructions, 50 ms, 16 MiB").
  [[nodiscard]] virtual std::string describe_limits() const = 0;
};

/// Where hook code runs: a pool of threads of its own, below the actor
/// system's workers in priority, so that a plugin spending its whole budget
/// never holds another tenant's requests (docs/plugins.md, "Noisy
/// neighbours"). `work` runs on a pool thread, in submission order.
class plugin_executor {
public:
  virtual ~plugin_executor() = default;
  virtual void post(std::function<void()> work) = 0;
};

/// One step of a hook call on `code` (call or resume), and the reset a
/// broken limit asks for right after it (so that it runs where the step ran).
[[nodiscard]] inline plugin_run run_plugin_step(plugin_code& code,
                                                const std::function<plugin_run(plugin_code&)>& step) {
  auto r = step(code);
  if (r.st != plugin_run::state::pending && r.needs_reset) {
    plugin_run err;
    r.lost = !code.reset(&err);
  }
  return r;
}

/// Where the plugin actors report what their calls came to (the node's
/// metrics, runtime/src/modules.cpp). Thread-safe: every actor calls it.
class plugin_observer {
public:
  virtual ~plugin_observer() = default;
  /// A hook call ended: `outcome` is "ok", or its fault (instruction-limit, error, kv-quota, load, ...).
  virtual void call_ended(std::string_view plugin, std::string_view hook, std::string_view outcome) = 0;
  /// The circuit breaker suspended `plugin` for a tenant.
  virtual void suspended(std::string_view plugin) = 0;
};

} // namespace colony::actors
