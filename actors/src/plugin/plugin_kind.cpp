// The plugin kind: an activation per (tenant, plugin), placed with its tenant (no timers).
#include "colony/actors/entities.hpp"
#include "colony/actors/kinds.hpp"

namespace colony::actors {

kind_spec plugin_kind() {
  kind_spec k;
  k.kind = entity_kind::plugin;
  k.name = "plugin";
  k.spawn = [](caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env, activation how) {
    return spawn_plugin_actor(sys, std::move(key), std::move(env), how);
  };
  return k;
}

} // namespace colony::actors
