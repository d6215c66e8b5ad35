// Entity actors: one per live tenant and per live user.
//
// An entity actor is spawned by the entity registry on the first message for its
// key, loads its state from the store (other messages wait in the mailbox),
// answers reads from memory, and replies to a write only after the store has
// committed the new state with its outbox rows. It asks the registry to
// passivate it after `idle_timeout` without messages.
//
// The tenant actor gates writes to its users: it refuses them while the tenant
// is suspended or cancelled, counts seats against the plan, and forwards to the
// user actor through the registry.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>

#include "colony/actors/messages.hpp"
#include "colony/actors/ports/store_port.hpp"
#include "colony/actors/tenant/tenant_model.hpp"

namespace colony::actors {

/// What every entity actor of a node shares. Immutable once built.
struct entity_env {
  store_port store;
  caf::actor registry;
  tenant_rules rules;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds store_timeout{std::chrono::seconds(30)};
  bool fault_injection = false; // honour command::inject_crash (tests only)
};

[[nodiscard]] caf::actor spawn_tenant_actor(caf::actor_system& sys, entity_key key,
                                            std::shared_ptr<const entity_env> env);
[[nodiscard]] caf::actor spawn_user_actor(caf::actor_system& sys, entity_key key,
                                          std::shared_ptr<const entity_env> env);

/// Turns a transport-level CAF error (a crashed or vanished actor, a timeout)
/// into a failure for the client.
[[nodiscard]] failure failure_from(const caf::error& err);

} // namespace colony::actors
