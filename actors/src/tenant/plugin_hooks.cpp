#include "plugin_hooks.hpp"

#include <caf/all.hpp>

#include "colony/actors/plugin/plugin_model.hpp"
#include "colony/v1/plugin.pb.h"

namespace colony::actors::detail {
namespace {

failure failed_plugin(const v1::PluginBinding& b, const std::string& why, const std::string& fault) {
  failure f = fail(errc::plugin_failed, "plugin '" + b.name() + "' failed: " + why);
  f.strings.emplace_back("plugin", b.name());
  f.strings.emplace_back("fault", fault);
  return f;
}

void step(caf::event_based_actor* self, const entity_env& env, std::shared_ptr<user_hooks> h, int from) {
  const auto& plugins = h->tenant->plugins();
  int i = from;
  while (i < plugins.size() && (plugins[i].suspended() || !has_hook(plugins[i], h->hook)))
    ++i;
  if (i >= plugins.size()) {
    h->done(h->user);
    return;
  }
  const auto& b = plugins[i];
  auto router = env.router.lock();
  auto target = router ? router->route(entity_key{entity_kind::plugin, h->tenant->id(), b.name()}) : caf::actor{};
  if (!target) {
    h->done(fail(errc::unavailable, "the node is shutting down"));
    return;
  }
  auto call = std::make_shared<v1::PluginCall>();
  call->set_hook(h->hook);
  std::string args = "[" + h->user;
  for (const auto& a : h->more_args)
    args += "," + a;
  call->set_args_json(args + "]");
  *call->mutable_binding() = b;
  command cmd;
  cmd.what = op::plugin_call;
  cmd.payload = std::move(call);
  cmd.meta = h->meta;
  // A failure of plugin i: skipped (failurePolicy ignore) or the answer.
  auto failed = [self, &env, h, i](const std::string& why, const std::string& fault) {
    const auto& pb = h->tenant->plugins()[i];
    if (pb.failure_policy() == "ignore") {
      step(self, env, h, i + 1);
      return;
    }
    h->done(failed_plugin(pb, why, fault));
  };
  self->request(target, env.store_timeout * 2, std::move(cmd))
    .then(
      [self, &env, h, i, failed](entity_reply& r) {
        const auto* o = dynamic_cast<const v1::PluginOutcome*>(r.entity.get());
        if (r.error || o == nullptr) {
          failed(r.error ? r.error->detail : "no outcome", "unavailable");
          return;
        }
        if (o->outcome() != "ok") {
          failed(o->reason(), o->fault());
          return;
        }
        auto v = user_hook_verdict(o->results_json());
        const auto& pb = h->tenant->plugins()[i];
        switch (v.what) {
          case user_verdict::kind::reject: {
            failure f = fail(errc::plugin_rejected, "plugin '" + pb.name() + "' rejected the change: " + v.reason);
            f.strings.emplace_back("plugin", pb.name());
            f.strings.emplace_back("reason", v.reason);
            h->done(std::move(f));
            return;
          }
          case user_verdict::kind::invalid: failed(v.reason, "answer"); return;
          case user_verdict::kind::accept:
            if (auto why = h->check(v.user)) {
              failed(*why, "answer");
              return;
            }
            h->user = std::move(v.user);
            step(self, env, h, i + 1);
            return;
        }
      },
      [failed](caf::error& err) { failed("no answer: " + caf::to_string(err), "unavailable"); });
}

} // namespace

void run_user_hooks(caf::event_based_actor* self, const entity_env& env, std::shared_ptr<user_hooks> h) {
  step(self, env, std::move(h), 0);
}

} // namespace colony::actors::detail
