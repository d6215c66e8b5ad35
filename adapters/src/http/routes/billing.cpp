#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/adapters/billing.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

/// Stripe webhooks: verified, deduplicated by Stripe event id (recorded in
/// the same transaction as the change), applied through the tenant actor.
/// A verified event gets 200 even when Colony has nothing to do with it.
void stripe_webhook(api_core& a, std::shared_ptr<call> c) {
  if (a.opts.stripe_webhook_secret.empty()) {
    a.fail(c, 503, "not-configured", "Not configured",
           "Stripe webhooks are off: set stripe-webhook-secret (COLONY_STRIPE_WEBHOOK_SECRET)");
    return;
  }
  if (auto why = billing::verify_stripe_signature(c->req.stripe_signature, c->req.body, a.opts.stripe_webhook_secret,
                                                  protocol::now_us() / 1'000'000, a.opts.stripe_tolerance.count())) {
    log::warn("stripe webhook refused", {{"request_id", c->req.request_id}, {"reason", *why}});
    a.fail(c, 400, "invalid-signature", "Invalid signature", "the Stripe-Signature does not verify: " + *why);
    return;
  }
  std::string error;
  auto ev = billing::parse_stripe_event(c->req.body, error);
  if (!ev) {
    a.fail(c, 400, "malformed-request", "Malformed request", error);
    return;
  }
  auto answer = [c, id = ev->id](bool applied, const std::string& detail) {
    nlohmann::json doc{{"received", true}, {"eventId", id}, {"applied", applied}, {"detail", detail}};
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  };
  if (!ev->change) {
    answer(false, ev->ignored_because);
    return;
  }
  auto deliver = [&a, c, ev, answer](std::string tenant_id) {
    if (tenant_id.empty()) {
      log::warn("stripe event for no known tenant", {{"event", ev->id}, {"type", ev->type}});
      answer(false, "no tenant: neither metadata.tenant_id nor a known customer id");
      return;
    }
    command cmd;
    cmd.what = op::billing;
    cmd.meta.message_key = "stripe:" + ev->id;
    cmd.payload = std::make_shared<v1::BillingChange>(*ev->change);
    cmd.meta.actor = "stripe:" + ev->id;
    a.call_entity(
      c, entity_key{entity_kind::tenant, tenant_id, tenant_id}, std::move(cmd),
      [c, answer, ev, tenant_id](entity_reply& r) {
        if (!r.error) {
          answer(true, ev->change->kind() + " applied to tenant " + tenant_id);
          return;
        }
        if (r.error->code == errc::unavailable || r.error->code == errc::internal) {
          c->respond(api::failure_response(*r.error, c->req.request_id)); // Stripe retries
          return;
        }
        log::warn("stripe event refused by the tenant", {{"event", ev->id}, {"error", r.error->detail}});
        answer(false, r.error->detail);
      },
      true);
  };
  if (protocol::is_uuid(ev->tenant_id)) {
    deliver(normalize_email(ev->tenant_id));
    return;
  }
  if (ev->customer_id.empty()) {
    deliver({});
    return;
  }
  a.ask_store_raw<std::string>(
    c, [deliver](std::string& id) { deliver(std::move(id)); }, resolve_atom::value, std::string{"stripe-customer"},
    ev->customer_id);
}

} // namespace

void add_billing_routes(router& r) {
  // Open: the Stripe-Signature is its credential.
  r.add("POST", "/v1/billing/webhooks/stripe", std::nullopt, stripe_webhook);
}

} // namespace colony::adapters::http
