// The plugin kind's activation: one per (tenant, plugin), placed with its
// tenant. It owns the plugin's sandbox (one Lua state, made by the node's
// plugin_engine from the version's source, loaded from the registry on
// first use and again when the tenant's binding names another version),
// runs the hooks its tenant sends it one at a time, and counts broken
// limits: after env.plugin_fault_threshold in a row it asks the tenant to
// suspend the plugin (the circuit breaker).
#include "../entity_common.hpp"
#include "colony/actors/plugin/plugin_model.hpp"
#include "colony/v1/plugin.pb.h"
#include "colony/v1/tenant.pb.h"

namespace colony::actors {
namespace {

struct plugin_state {
  entity_key key; // kind plugin, the tenant, the plugin's name
  std::shared_ptr<const entity_env> env;
  std::unique_ptr<plugin_code> code;
  std::string version; // of `code`
  int faults_in_a_row = 0;
  bool suspension_asked = false;
  std::int64_t binding_at_us = 0; // the binding's updatedAt: enabling again starts the count anew
  std::uint64_t handled = 0;
  activation_cell* cell = nullptr;
  bool committing = false; // never: a plugin writes nothing itself (offer_passivation reads it)
  static inline const char* name = "colony.plugin";
};

using self_ptr = caf::stateful_actor<plugin_state>*;

entity_reply answer(v1::PluginOutcome o) {
  entity_reply r;
  r.entity = std::make_shared<const v1::PluginOutcome>(std::move(o));
  return r;
}

v1::PluginOutcome failed(std::string fault, std::string message) {
  v1::PluginOutcome o;
  o.set_outcome("failed");
  o.set_fault(std::move(fault));
  o.set_reason(std::move(message));
  return o;
}

std::string label(const plugin_state& st, const std::string& version) {
  return st.key.tenant_id + "/" + st.key.id + "@" + version;
}

/// The circuit breaker: asks the tenant once to suspend the plugin.
void count_fault(self_ptr self, const plugin_run& r) {
  auto& st = self->state;
  if (!r.limit_broken()) {
    if (r.st == plugin_run::state::done)
      st.faults_in_a_row = 0;
    return;
  }
  if (++st.faults_in_a_row < st.env->plugin_fault_threshold || st.suspension_asked)
    return;
  auto router = st.env->router.lock();
  if (!router)
    return;
  st.suspension_asked = true;
  command cmd;
  cmd.what = op::suspend_plugin;
  cmd.text = st.key.id;
  cmd.meta.actor = "plugin:" + st.key.id;
  cmd.meta.request_id = protocol::new_uuid_v7();
  auto reason = std::to_string(st.faults_in_a_row) + " broken limits in a row, the last: " + r.message;
  auto why = std::make_shared<v1::TransitionRequest>();
  why->set_reason(reason.size() > 300 ? reason.substr(0, 300) : reason);
  cmd.payload = std::move(why);
  auto tenant = router->route(entity_key{entity_kind::tenant, st.key.tenant_id, st.key.tenant_id});
  if (tenant)
    self->request(tenant, st.env->store_timeout * 2, std::move(cmd))
      .then([self](entity_reply& rep) { self->state.suspension_asked = !rep.error.has_value(); },
            [self](caf::error&) { self->state.suspension_asked = false; });
}

v1::PluginOutcome run(self_ptr self, const v1::PluginCall& call, const command& cmd) {
  auto& st = self->state;
  const auto& args = call.args_json();
  auto ctx = hook_context(st.key.tenant_id, call.binding(), cmd.meta.request_id, cmd.meta.traceparent);
  std::string all = args.size() > 2 ? "[" + ctx + "," + args.substr(1) : "[" + ctx + "]";
  auto r = st.code->call(call.hook(), all);
  // No host function of this version waits for the actor; a request would be a bug of the engine.
  for (int guard = 0; r.st == plugin_run::state::pending && guard < 1000; ++guard)
    r = st.code->resume("null", std::string{"this host function is not available"});
  count_fault(self, r);
  if (r.needs_reset) {
    plugin_run err;
    if (!st.code->reset(&err))
      st.code.reset();
  }
  v1::PluginOutcome o;
  o.set_instructions(static_cast<std::int64_t>(r.instructions));
  if (r.st == plugin_run::state::done) {
    o.set_outcome("ok");
    o.set_results_json(std::move(r.results));
    return o;
  }
  o.set_outcome("failed");
  o.set_fault(r.st == plugin_run::state::pending ? "host-call-limit" : r.fault);
  o.set_reason(std::move(r.message));
  return o;
}

caf::result<entity_reply> handle(self_ptr self, command& cmd) {
  auto& st = self->state;
  if (cmd.inject_crash && st.env->fault_injection)
    throw std::runtime_error("fault injection: crash requested for " + st.key.str());
  if (cmd.what != op::plugin_call)
    return entity_reply::fail(fail(errc::malformed, "operation not supported on a plugin"));
  const auto* call = dynamic_cast<const v1::PluginCall*>(cmd.payload.get());
  if (call == nullptr)
    return entity_reply::fail(fail(errc::malformed, "a plugin call needs a payload"));
  if (!st.env->plugins)
    return answer(failed("load", "plugins cannot run on this node"));
  if (auto at = protocol::timestamp_us(call->binding().updated_at()); at != st.binding_at_us) {
    st.binding_at_us = at;
    st.faults_in_a_row = 0;
    st.suspension_asked = false;
  }
  if (st.code && st.version == call->binding().version())
    return answer(run(self, *call, cmd));
  // Load the binding's version from the registry; the mailbox waits meanwhile.
  auto rp = self->make_response_promise<entity_reply>();
  plugin_op op;
  op.what = plugin_op::kind::get;
  op.name = st.key.id;
  op.version = call->binding().version();
  auto keep = std::make_shared<command>(std::move(cmd));
  self->request(caf::actor_cast<plugin_store>(st.env->store), st.env->store_timeout, plugin_atom::value, std::move(op))
    .await(
      [self, rp, keep](plugin_result& res) mutable {
        auto& s = self->state;
        const auto& c = *static_cast<const v1::PluginCall*>(keep->payload.get());
        if (res.status != store_status::ok || res.rows.empty()) {
          rp.deliver(answer(failed("load",
                                   res.status == store_status::not_found
                                     ? "version " + c.binding().version() + " is not in the registry"
                                     : "the registry could not be read; retry later")));
          return;
        }
        v1::PluginVersion v;
        if (!v.ParseFromString(res.rows.front().state)) {
          rp.deliver(answer(failed("load", "the registry's record of this version does not parse")));
          return;
        }
        plugin_run err;
        s.code = s.env->plugins->load(label(s, v.version()), v.source(), &err);
        if (!s.code) {
          rp.deliver(answer(failed(err.fault, err.message)));
          return;
        }
        s.version = v.version();
        rp.deliver(answer(run(self, c, *keep)));
      },
      [rp](caf::error&) mutable { rp.deliver(answer(failed("load", "the registry did not answer; retry later"))); });
  return rp;
}

caf::behavior plugin_actor(self_ptr self, entity_key key, std::shared_ptr<const entity_env> env,
                           activation_cell* cell) {
  self->state.key = std::move(key);
  self->state.cell = cell;
  self->state.env = std::move(env);
  detail::install_crash_handler(self);
  return {
    [self](command& cmd) -> caf::result<entity_reply> {
      detail::count_handled(self->state, cmd);
      return handle(self, cmd);
    },
    [self](idle_atom) { detail::offer_passivation(self); },
    [self](passivate_atom) { return detail::offer_passivation(self); },
  };
}

} // namespace

caf::actor spawn_plugin_actor(caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env,
                              activation how) {
  return sys.spawn(plugin_actor, std::move(key), std::move(env), how.cell);
}

} // namespace colony::actors
