#include "colony/runtime/entity_registry.hpp"

#include <caf/all.hpp>
#include <unordered_map>

#include "colony/runtime/log.hpp"

namespace colony::runtime {
namespace {

using actors::entity_key;
using actors::entity_kind;

struct slot {
  caf::actor actor;
  entity_kind kind;
  std::uint64_t forwarded = 0; // commands delegated to this activation
};

struct registry_state {
  std::shared_ptr<const actors::entity_env> env;
  std::shared_ptr<metrics> m;
  std::unordered_map<std::string, slot> live;
  std::unordered_map<caf::actor_addr, std::string> names;
  registry_stats stats;
  static inline const char* name = "colony.registry";
};

using self_ptr = caf::stateful_actor<registry_state>*;

void count_live(self_ptr self, entity_kind kind, int delta) {
  auto& st = self->state;
  auto& n = kind == entity_kind::tenant ? st.stats.live_tenants : st.stats.live_users;
  n += delta;
  if (st.m)
    st.m->live_entities(kind, n);
}

caf::behavior registry(self_ptr self, actors::entity_env env, std::shared_ptr<metrics> m) {
  env.registry = caf::actor_cast<caf::actor>(self);
  self->state.env = std::make_shared<const actors::entity_env>(std::move(env));
  self->state.m = std::move(m);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.names.find(dm.source);
    if (it == st.names.end())
      return;
    auto name = std::move(it->second);
    st.names.erase(it);
    auto sit = st.live.find(name);
    if (sit == st.live.end() || sit->second.actor.address() != dm.source)
      return; // passivated already
    auto kind = sit->second.kind;
    st.live.erase(sit);
    count_live(self, kind, -1);
    if (dm.reason && dm.reason != caf::exit_reason::normal) {
      ++st.stats.crashes;
      if (st.m)
        st.m->entity_crashed(kind);
      log::error("entity crashed; it will be re-activated by its next message",
                 {{"entity", name}, {"reason", self->system().render(dm.reason)}});
    }
  });
  return {
    [self](entity_key& key, actors::command& cmd) -> caf::result<actors::entity_reply> {
      auto& st = self->state;
      auto name = key.str();
      auto it = st.live.find(name);
      if (it == st.live.end()) {
        auto actor = key.kind == entity_kind::tenant ? actors::spawn_tenant_actor(self->system(), key, st.env)
                                                     : actors::spawn_user_actor(self->system(), key, st.env);
        self->monitor(actor);
        st.names.emplace(actor.address(), name);
        it = st.live.emplace(name, slot{std::move(actor), key.kind, 0}).first;
        ++st.stats.activations;
        count_live(self, key.kind, +1);
        if (st.m)
          st.m->entity_activated(key.kind);
      }
      ++it->second.forwarded;
      self->delegate(it->second.actor, std::move(cmd));
      return caf::delegated<actors::entity_reply>{};
    },
    [self](actors::idle_atom, entity_key& key, std::uint64_t handled) {
      auto& st = self->state;
      auto it = st.live.find(key.str());
      if (it == st.live.end() || it->second.actor.address() != caf::actor_cast<caf::actor_addr>(self->current_sender()))
        return;
      if (it->second.forwarded != handled)
        return; // commands are on their way to it: stay active
      auto actor = std::move(it->second.actor);
      auto kind = it->second.kind;
      st.live.erase(it);
      st.names.erase(actor.address());
      self->demonitor(actor);
      self->send(actor, actors::stop_atom::value);
      ++st.stats.passivations;
      count_live(self, kind, -1);
      if (st.m)
        st.m->entity_passivated(kind);
    },
    [self](actors::stats_atom) { return self->state.stats; },
    [self](actors::stop_atom) {
      // Node shutdown: every commit has been answered, so entities can go.
      for (auto& [_, s] : self->state.live)
        self->send_exit(s.actor, caf::exit_reason::user_shutdown);
      self->state.live.clear();
      self->state.names.clear();
      self->quit();
    },
  };
}

} // namespace

caf::actor spawn_entity_registry(caf::actor_system& sys, actors::entity_env env, std::shared_ptr<metrics> m) {
  return sys.spawn(registry, std::move(env), std::move(m));
}

} // namespace colony::runtime
