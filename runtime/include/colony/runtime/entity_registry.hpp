// The entity registry: activation on demand, passivation and supervision of
// entity actors (virtual actors, as in Orleans).
//
// Send it `(entity_key, command)`; it activates the entity if needed and
// delegates the command, so the entity replies straight to the sender. It
// monitors every entity: a crash is logged and counted, and the next command
// activates a fresh instance that reloads from the store. An entity asks to be
// passivated when idle; the registry agrees only if it has forwarded nothing
// the entity has not yet seen, so no command is lost to passivation.
//
// It also answers `(stats_atom)` with registry_stats.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <cstdint>
#include <memory>

#include "colony/actors/entities.hpp"
#include "colony/runtime/metrics.hpp"

namespace colony::runtime {

struct registry_stats {
  std::int64_t live_tenants = 0;
  std::int64_t live_users = 0;
  std::int64_t activations = 0;
  std::int64_t passivations = 0;
  std::int64_t crashes = 0;
};

/// Spawns the registry. `env.registry` is filled in with the registry itself.
[[nodiscard]] caf::actor spawn_entity_registry(caf::actor_system& sys, actors::entity_env env,
                                               std::shared_ptr<metrics> m);

} // namespace colony::runtime

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::runtime::registry_stats)
