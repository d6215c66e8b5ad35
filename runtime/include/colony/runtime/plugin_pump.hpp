// The on_event pump: finds the (tenant, plugin) cursors whose tenant has
// events after their position (docs/plugins.md, "on_event") and nudges each
// plugin's activation through the registry, which reads and hands over the
// events itself. On a cluster each node pumps the cursors of the shards it
// owns, so a plugin's events are handed over on its tenant's owner node.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>

#include "colony/actors/ports/store_port.hpp"
#include "colony/runtime/singleton.hpp"

namespace colony::runtime {

struct plugin_pump_options {
  std::chrono::milliseconds poll_interval{200};
  int batch = 500; // cursors per poll
  std::shared_ptr<singleton> owner = single_node_singleton();
};

/// Stop it with actors::stop_atom.
[[nodiscard]] caf::actor spawn_plugin_pump(caf::actor_system& sys, actors::store_port store, caf::actor registry,
                                           plugin_pump_options opts);

} // namespace colony::runtime
