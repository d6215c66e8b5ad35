// A node of modules. Each subsystem of colonyd (secrets, metrics, store,
// relay, entities, timers, webhooks, commands, billing, auth, HTTP) is a
// `module`: it registers its options, starts (in the order colonyd lists the
// modules), contributes its readiness lines and its metrics, and stops (in
// the reverse order) within a deadline. `run_node` is the whole life of a
// node: configuration, logging, the actor system, start, the signal, one
// shutdown sequence. Only colonyd's module list names adapters; runtime/
// knows modules by this interface.
#pragma once

#include <caf/fwd.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/cluster.hpp"
#include "colony/runtime/config.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/log.hpp"
#include "colony/runtime/metrics.hpp"
#include "colony/runtime/options.hpp"
#include "colony/runtime/singleton.hpp"

namespace colony::runtime {

/// One line of /readyz?verbose: "[+]events relay: off (...)".
struct readiness_line {
  char mark = '+'; // + fine, ! degraded (still ready), - not ready
  std::string text;
};

/// The readiness lines modules contribute (the store's own line is asked
/// of the store actor by the HTTP module). Thread-safe.
class readiness_board {
public:
  void add(std::function<readiness_line()> probe);
  [[nodiscard]] std::vector<readiness_line> lines() const;

private:
  mutable std::mutex mu_;
  std::vector<std::function<readiness_line()>> probes_;
};

/// A start that cannot go on: the node stops what it started and exits with
/// `exit_code` (2: a bad option, named in the message; 1: anything else).
struct start_error : std::runtime_error {
  start_error(const std::string& what, int code) : std::runtime_error(what), exit_code(code) {}
  int exit_code;
};

/// What the modules of one node share. Each field is set by the module
/// that owns it, before any module that starts later reads it.
struct node_context {
  node_context(caf::actor_system& s, const node_config& c) : sys(s), cfg(c) {}

  caf::actor_system& sys;
  const node_config& cfg;
  std::string version;
  std::shared_ptr<runtime::metrics> metrics;                           // metrics module; may stay null
  std::shared_ptr<chore_seam> chores = std::make_shared<chore_seam>(); // who may run node-wide chores
  std::shared_ptr<readiness_board> readiness = std::make_shared<readiness_board>();
  actors::store_port store; // store module
  // The cluster write fence the store checks in every entity commit: the
  // store module hands it to the store, the cluster module arms it.
  std::shared_ptr<cluster::write_fence> fence = std::make_shared<cluster::write_fence>();
  entity_registry entities; // entities module

  /// Services whose types only adapters know (the secrets box, the token
  /// verifier): one per type.
  template <class T>
  void provide(std::shared_ptr<T> service) {
    services_[std::type_index{typeid(T)}] = std::move(service);
  }
  template <class T>
  [[nodiscard]] std::shared_ptr<T> find() const {
    auto it = services_.find(std::type_index{typeid(T)});
    return it == services_.end() ? nullptr : std::static_pointer_cast<T>(std::const_pointer_cast<void>(it->second));
  }

private:
  std::unordered_map<std::type_index, std::shared_ptr<const void>> services_;
};

class module {
public:
  virtual ~module() = default;
  /// Short name, for logs and the shutdown watchdog ("store", "http").
  [[nodiscard]] virtual std::string_view name() const = 0;
  /// What it is, for the shutdown watchdog's "stopping the HTTP server".
  [[nodiscard]] virtual std::string_view title() const { return name(); }
  /// Registers the module's options and checks.
  virtual void options(option_registry&) {}
  /// Fields for the "colonyd starting" line (never secrets).
  virtual void describe(const node_config&, std::vector<log::field>&) const {}
  /// Adjusts the actor system's configuration before the system starts
  /// (the cluster module sets the middleman's heartbeats there).
  virtual void system_config(caf::actor_system_config&, const node_config&) const {}
  /// Starts; throws start_error when it cannot.
  virtual void start(node_context& node) = 0;
  /// Stops by `deadline` (a module that cannot logs what it left).
  virtual void stop(node_context&, std::chrono::steady_clock::time_point /*deadline*/) {}
  /// How long stop() may take at most, counted from when it is called.
  [[nodiscard]] virtual std::chrono::milliseconds stop_budget(const node_config&) const {
    return std::chrono::seconds(5);
  }
};

using module_list = std::vector<std::unique_ptr<module>>;

/// The options every node has (data directory, logging, time-outs, the
/// scheduler, debug switches) and those of `modules`, in that order.
[[nodiscard]] option_registry registry_of(const module_list& modules);

struct node_info {
  std::string version;
  std::string allocator;
};

/// The life of a node: reads the configuration from `argv`/`envp` (or
/// answers --help / --dump-config / --config-template), starts `modules`,
/// waits for SIGTERM/SIGINT and stops them in reverse order. Returns the
/// process's exit code.
int run_node(int argc, char** argv, char** envp, module_list modules, const node_info& info);

/// Sends stop_atom to `who` and waits until it is gone, at most until `deadline`.
void stop_and_wait(caf::actor_system& sys, const caf::actor& who, std::chrono::steady_clock::time_point deadline,
                   std::string_view what);

/// The entity registry (entity.*, tenant.*) and the durable timer poller
/// (timers.*): the modules of runtime/ itself.
[[nodiscard]] std::unique_ptr<module> entities_module();
[[nodiscard]] std::unique_ptr<module> timers_module();
[[nodiscard]] std::unique_ptr<module> plugin_events_module();

} // namespace colony::runtime
