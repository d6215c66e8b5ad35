// The user kind: its activation (no timers of its own).
#include "colony/actors/entities.hpp"
#include "colony/actors/kinds.hpp"

namespace colony::actors {

kind_spec user_kind() {
  kind_spec k;
  k.kind = entity_kind::user;
  k.name = "user";
  k.spawn = [](caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env, activation how) {
    return spawn_user_actor(sys, std::move(key), std::move(env), how);
  };
  return k;
}

} // namespace colony::actors
