#include "colony/runtime/plugin_pump.hpp"

#include <caf/all.hpp>

#include "colony/protocol/time.hpp"

namespace colony::runtime {
namespace {

using namespace actors;

struct pump_state {
  actors::store_port store;
  caf::actor registry;
  plugin_pump_options opts;
  bool polling = false;
  static inline const char* name = "colony.plugin-pump";
};

using self_ptr = caf::stateful_actor<pump_state>*;

void poll(self_ptr self) {
  auto& st = self->state;
  plugin_op op;
  op.what = plugin_op::kind::due_cursors;
  op.now_us = protocol::now_us();
  op.limit = st.opts.batch;
  if (st.opts.owner) {
    if (auto mine = st.opts.owner->shards()) {
      op.scope.all = false;
      op.scope.shards = std::move(*mine);
      if (op.scope.shards.empty())
        return;
    }
  }
  st.polling = true;
  self->request(caf::actor_cast<plugin_store>(st.store), std::chrono::seconds(10), plugin_atom::value, std::move(op))
    .then(
      [self](plugin_result& r) {
        self->state.polling = false;
        if (r.status != store_status::ok)
          return;
        for (const auto& c : r.cursors) {
          command cmd;
          cmd.what = op::plugin_events;
          // The plugin answers at once (it pumps on its own); nothing to wait for.
          self->send(self->state.registry, entity_key{entity_kind::plugin, c.tenant_id, c.plugin}, std::move(cmd));
        }
      },
      [self](caf::error&) { self->state.polling = false; });
}

caf::behavior plugin_pump(self_ptr self, actors::store_port store, caf::actor registry, plugin_pump_options opts) {
  self->state.store = std::move(store);
  self->state.registry = std::move(registry);
  self->state.opts = std::move(opts);
  self->set_default_handler(caf::drop); // the plugins' answers
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) {
      self->delayed_send(self, self->state.opts.poll_interval, tick_atom::value);
      if (!self->state.polling)
        poll(self);
    },
    [self](stop_atom) { self->quit(); },
  };
}

} // namespace

caf::actor spawn_plugin_pump(caf::actor_system& sys, actors::store_port store, caf::actor registry,
                             plugin_pump_options opts) {
  return sys.spawn(plugin_pump, std::move(store), std::move(registry), std::move(opts));
}

} // namespace colony::runtime
