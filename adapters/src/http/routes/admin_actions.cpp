// The console's operator actions (docs/console.md, "Operator actions"):
//   POST /v1/admin/nodes/{nodeName}/drain and .../undrain
//   POST /v1/admin/actors/{kind}/{actorId}/passivate[?tenantId=]
// Each needs a platform credential with the platform_operator role (the
// router's `operate` permission; platform_admin alone does not do) and the
// node's console.operator-actions switch; each answer, success or not, is
// audited (call::audited_action). The console's session cookie stands for
// its credential here when the request comes from the console's own origin.
#include "admin_gather.hpp"
#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/runtime/cluster.hpp"
#include "colony/runtime/introspection.hpp"

namespace colony::adapters::http {

using namespace actors;
using actors::access::permission;

namespace {

using admin::njson;

constexpr auto passivate_timeout = std::chrono::milliseconds(3000);

/// Off by default: the console is read-only until an operator turns it on.
bool actions_enabled(api_core& a, const std::shared_ptr<call>& c) {
  if (a.opts.operator_actions)
    return true;
  a.fail(c, 403, "operator-actions-disabled", "Operator actions are off",
         "this node's console is read-only: start it with console.operator-actions = true to drain, undrain and "
         "passivate from the console and /v1/admin");
  return false;
}

/// The owner's side: asks the live activation of `payload`'s key to go (the
/// passivation handshake: it goes only if no command is on its way to it and
/// no commit is awaited). `done` gets {"nodeName", "outcome"}: passivated,
/// not-live or busy.
void passivate_here(api_core& a, const std::string& payload, std::function<void(njson)> done) {
  auto key = admin::key_of_payload(payload);
  auto actor = key && a.ctx.local ? a.ctx.local->activation(*key) : caf::actor{};
  auto answer = [node = a.opts.node_name, done](const char* outcome) {
    done(njson{{"nodeName", node}, {"outcome", outcome}});
  };
  if (!actor) {
    answer("not-live");
    return;
  }
  auto c = std::make_shared<call>();
  c->route = "admin.passivate";
  c->done = [answer](api_response) { answer("busy"); }; // the bridges are stopping
  a.bridges.post(c, [c, actor, answer](caf::event_based_actor* self) {
    bridge_pool::request<bool>(
      self, c, actor, passivate_timeout, [answer](bool went) { answer(went ? "passivated" : "busy"); },
      // An activation that ends meanwhile (passivated, crashed) is gone too;
      // one that does not answer in time is busy handling something.
      [answer](const caf::error& err) { answer(err == caf::sec::request_timeout ? "busy" : "passivated"); },
      passivate_atom::value);
  });
}

void passivate(api_core& a, std::shared_ptr<call> c) {
  auto parsed = admin::actor_key_of(a, c);
  if (!parsed)
    return;
  auto key = *parsed;
  c->audited_action = "actor.passivate";
  c->audited_target = "actor:" + std::string{to_string(key.kind)} + "/" + key.tenant_id + "/" + key.id;
  if (!actions_enabled(a, c))
    return;
  auto finish = [c, key](njson r) {
    auto outcome = r.value("outcome", std::string{});
    auto node = r.value("nodeName", std::string{});
    if (outcome == "passivated") {
      njson doc{{"kind", to_string(key.kind)},
                {"id", key.id},
                {"tenantId", key.tenant_id},
                {"node", node},
                {"passivated", true}};
      c->respond(json(200, admin::dump(doc)));
    } else if (outcome == "busy") {
      auto p =
        api::problem(409, "actor-busy", "Actor busy",
                     "it has commands on their way or a commit in flight on " + node + "; retry", c->req.request_id);
      p.headers.emplace_back("Retry-After", "1");
      c->respond(std::move(p));
    } else {
      c->respond(api::problem(404, "actor-not-live", "Actor not live",
                              "no live activation of " + c->audited_target.substr(6) + " on its owner " + node +
                                ": there is nothing to passivate",
                              c->req.request_id));
    }
  };
  auto payload = admin::key_payload(key);
  if (!a.ctx.cluster || a.ctx.cluster->owned_here(key.tenant_id)) {
    passivate_here(a, payload, finish);
    return;
  }
  admin::ask_owner_json(a, c, key.tenant_id, "admin.passivate", payload, std::move(finish));
}

void drain_node(api_core& a, std::shared_ptr<call> c, bool on) {
  c->audited_action = on ? "node.drain" : "node.undrain";
  c->audited_target = "node:" + c->path["nodeName"].substr(0, 100);
  if (!actions_enabled(a, c))
    return;
  drain_member(a, std::move(c), on);
}

} // namespace

void serve_passivate_topic(api_core& a) {
  if (!a.ctx.cluster)
    return;
  a.admin_subs.push_back(
    a.ctx.cluster->serve("admin.passivate", [&a](const std::string& payload, std::function<void(std::string)> reply) {
      passivate_here(a, payload, [reply](njson doc) { reply(admin::dump(doc)); });
    }));
}

void add_admin_action_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/admin/nodes/{nodeName}/drain", p::operate,
        [](api_core& a, std::shared_ptr<call> c) { drain_node(a, std::move(c), true); });
  r.add("POST", "/v1/admin/nodes/{nodeName}/undrain", p::operate,
        [](api_core& a, std::shared_ptr<call> c) { drain_node(a, std::move(c), false); });
  r.add("POST", "/v1/admin/actors/{kind}/{actorId}/passivate", p::operate, passivate);
}

} // namespace colony::adapters::http
