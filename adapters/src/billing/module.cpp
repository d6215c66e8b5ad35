// The billing module (stripe-webhook-secret, billing.*): options only; the
// Stripe webhook route is served by the HTTP module.
#include "colony/adapters/billing.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

class billing_impl final : public runtime::module {
public:
  std::string_view name() const override { return "billing"; }
  std::string_view title() const override { return "billing"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "billing";
    r.add(m,
          opt::secret("stripe-webhook-secret",
                      "signing secret (whsec_...) of the Stripe webhook endpoint; empty turns the route off",
                      &node_config::stripe_webhook_secret));
    r.add(m,
          opt::duration("billing.payment-grace",
                        "after a failed payment, time until the tenant is suspended unless it pays",
                        std::chrono::milliseconds(0), std::chrono::hours(24 * 90), &node_config::payment_grace));
    r.add(m,
          opt::boolean("billing.allow-tenant-plan-change",
                       "with stripe-webhook-secret set, tenant owners may still change their own plan "
                       "(otherwise only billing events and platform credentials do)",
                       &node_config::billing_allow_tenant_plan_change));
    r.add_check([](node_config& c) -> std::optional<std::string> {
      c.rules.payment_grace_us = static_cast<std::int64_t>(c.payment_grace.count()) * 1000;
      return std::nullopt;
    });
  }

  void start(runtime::node_context&) override {}
};

} // namespace

std::unique_ptr<runtime::module> billing_module() { return std::make_unique<billing_impl>(); }

} // namespace colony::adapters
