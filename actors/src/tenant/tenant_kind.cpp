// The tenant kind: its activation and the timers of its lifecycle.
#include "colony/actors/entities.hpp"
#include "colony/actors/kinds.hpp"
#include "colony/v1/tenant.pb.h"

namespace colony::actors {

kind_spec tenant_kind() {
  kind_spec k;
  k.kind = entity_kind::tenant;
  k.name = "tenant";
  k.spawn = [](caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env, activation how) {
    return spawn_tenant_actor(sys, std::move(key), std::move(env), how);
  };
  // The trial ends: the tenant decides (tenant_model: expire_trial).
  k.timers.push_back({"trial_expiry", [](const timer_row&) {
                        command cmd;
                        cmd.what = op::expire_trial;
                        return cmd;
                      }});
  // The payment grace period ends without a payment.
  k.timers.push_back({"payment_grace", [](const timer_row&) {
                        auto change = std::make_shared<v1::BillingChange>();
                        change->set_kind("grace_expired");
                        command cmd;
                        cmd.what = op::billing;
                        cmd.payload = std::move(change);
                        return cmd;
                      }});
  return k;
}

} // namespace colony::actors
