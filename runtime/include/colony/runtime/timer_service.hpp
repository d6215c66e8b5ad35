// The timer service: fires durable timers. Timers live in the store (written
// in the same transaction as the change that sets them, see
// actors::change::timers); the service polls for due ones, routes each to its
// entity through the registry like any command, and deletes it once the entity
// has answered. A timer whose entity could not be reached is retried with
// exponential backoff. Timers that fell due while the node was down fire on
// the first poll after start.
#pragma once

#include <memory>

#include "colony/runtime/metrics.hpp"
#include "colony/runtime/singleton.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>

#include "colony/actors/ports/store_port.hpp"

namespace colony::runtime {

struct timer_options {
  std::chrono::milliseconds poll_interval{1000};
  int batch = 100;
  /// Whose timers: on a cluster those of the shards it owns (plus the
  /// unsharded ones of before, while "timers" is granted); alone, all.
  std::shared_ptr<singleton> owner = single_node_singleton();
  std::shared_ptr<runtime::metrics> metrics; // colony_timers_fired_total; may be null
};

/// Stop it with actors::stop_atom.
[[nodiscard]] caf::actor spawn_timer_service(caf::actor_system& sys, actors::store_port store, caf::actor registry,
                                             timer_options opts);

} // namespace colony::runtime
