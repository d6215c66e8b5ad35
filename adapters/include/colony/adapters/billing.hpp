// Billing (Stripe): webhook signature verification, the "t=…,v1=…" HMAC that
// outbound webhooks are signed with too, and the mapping of Stripe events
// to Colony billing changes. Pure functions, so they are unit-tested apart
// from HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "colony/runtime/module.hpp"
#include "colony/v1/tenant.pb.h"

namespace colony::adapters::billing {

/// Checks a Stripe-Signature header ("t=<unix>,v1=<hex>[,v1=...]") against
/// HMAC-SHA256(secret, "<t>.<body>"), comparing in constant time; any v1 may
/// match. Returns nullopt when valid, else why not (for logs, never secrets).
std::optional<std::string> verify_stripe_signature(std::string_view header, std::string_view body,
                                                   std::string_view secret, std::int64_t now_s,
                                                   std::int64_t tolerance_s);

/// Hex HMAC-SHA256 of "<t>.<body>", as Stripe computes v1 (for tests and tools).
std::string stripe_v1(std::string_view secret, std::int64_t t, std::string_view body);

/// A verified Stripe event, reduced to what Colony needs.
struct stripe_event {
  std::string id;                          // evt_...
  std::string type;                        // customer.subscription.updated, ...
  std::string tenant_id;                   // data.object.metadata.tenant_id, if any
  std::string customer_id;                 // data.object.customer
  std::optional<v1::BillingChange> change; // nullopt: nothing for Colony to do
  std::string ignored_because;             // when change is nullopt
};

/// Parses the event body. Returns nullopt (with `error`) if it is not a
/// Stripe event object.
std::optional<stripe_event> parse_stripe_event(std::string_view body, std::string& error);

} // namespace colony::adapters::billing

namespace colony::adapters {

/// The billing module (stripe-webhook-secret, billing.*).
[[nodiscard]] std::unique_ptr<runtime::module> billing_module();

} // namespace colony::adapters
