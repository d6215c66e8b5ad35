// The timer service: fires durable timers. Timers live in the store (written
// in the same transaction as the change that sets them, see
// actors::change::timers); the service polls for due ones, routes each to its
// entity through the registry like any command, and deletes it once the entity
// has answered. A timer whose entity could not be reached is retried with
// exponential backoff. Timers that fell due while the node was down fire on
// the first poll after start.
#pragma once

#include <memory>

#include "colony/runtime/singleton.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>

#include "colony/actors/ports/store_port.hpp"

namespace colony::runtime {

struct timer_options {
  std::chrono::milliseconds poll_interval{1000};
  int batch = 100;
  std::shared_ptr<singleton> owner = single_node_singleton(); // polls only while "timers" is granted
};

/// Stop it with actors::stop_atom.
[[nodiscard]] caf::actor spawn_timer_service(caf::actor_system& sys, actors::store_port store, caf::actor registry,
                                             timer_options opts);

} // namespace colony::runtime
