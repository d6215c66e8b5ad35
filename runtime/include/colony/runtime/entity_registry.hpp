// The entity registry: activation on demand, passivation and supervision of
// entity actors (virtual actors, as in Orleans).
//
// The directory (actors::entity_router) is a sharded, lock-protected map from
// entity key to live activation. A caller asks it for the actor of a key and
// sends straight to it: one hop per command, and no single actor that every
// request of the node must pass through (measured: the registry actor was the
// node's serialization point, see docs/performance.md).
//
// Passivation is a handshake under the shard lock: route() counts every
// command handed out for an activation; an idle entity is released only if
// it has handled all of them, so no command is lost to passivation. A crash
// (the activation ends with an error) is logged and counted; the next command
// activates a fresh instance that reloads from the store.
//
// The registry actor is the directory's face for actors that prefer a
// message: `(entity_key, command)` is routed and delegated (the entity
// replies to the sender), `(stats_atom)` answers registry_stats, and
// `(stop_atom)` ends every activation; at node shutdown stop_entity_registry()
// does that from the caller's thread, which is much faster for many entities.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <cstdint>
#include <functional>
#include <string>
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

struct entity_registry {
  caf::actor actor;                              // messages: (key, command), stats, stop
  std::shared_ptr<actors::entity_router> router; // direct routing for hot paths
};

/// Spawns the registry; `env.registry` and `env.router` are filled in.
[[nodiscard]] entity_registry spawn_entity_registry(caf::actor_system& sys, actors::entity_env env,
                                                    std::shared_ptr<metrics> m);

/// Ends every activation of a tenant `tenant_pred` accepts (the cluster's
/// lost or regained shards); returns how many.
std::size_t evict_where(const entity_registry& r, const std::function<bool(const std::string&)>& tenant_pred);

/// Node shutdown: ends every activation (every commit has been answered),
/// then the registry actor. Call it from outside the actor system.
void stop_entity_registry(const entity_registry& r);

} // namespace colony::runtime

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::runtime::registry_stats)
