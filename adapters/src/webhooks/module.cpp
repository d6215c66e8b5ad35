// The webhooks module (webhooks.*): the notifier that delivers events to the
// tenants' endpoints.
#include <caf/all.hpp>

#include "colony/adapters/webhooks.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

class webhooks_impl final : public runtime::module {
public:
  std::string_view name() const override { return "webhooks"; }
  std::string_view title() const override { return "the webhook notifier"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "webhooks";
    r.add(m,
          opt::integer("webhooks.max-attempts", "attempts of one webhook delivery before it is dead-lettered", 1, 50,
                       &node_config::webhook_max_attempts));
    r.add(m,
          opt::duration("webhooks.retry-base",
                        "wait before the first retry of a failed delivery; it doubles (with jitter) up to 1 h",
                        std::chrono::milliseconds(10), std::chrono::hours(1), &node_config::webhook_retry_base));
    r.add(m,
          opt::duration("webhooks.timeout", "time an endpoint has to answer one delivery",
                        std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::webhook_timeout));
    r.add(m,
          opt::string("webhooks.ca-file",
                      "PEM file of extra CAs trusted for https webhook endpoints (the system's are always trusted)",
                      &node_config::webhook_ca_file));
    r.add(m,
          opt::boolean("webhooks.allow-private-targets",
                       "let webhook endpoints be loopback, private (RFC 1918, fc00::/7), link-local or other "
                       "non-public addresses (refused otherwise, at registration and at every delivery)",
                       &node_config::webhook_allow_private_targets));
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    webhook_options o;
    o.owner = node.chores;
    o.max_attempts = cfg.webhook_max_attempts;
    o.retry_base = cfg.webhook_retry_base;
    o.timeout = cfg.webhook_timeout;
    o.ca_file = cfg.webhook_ca_file;
    o.allow_private_targets = cfg.webhook_allow_private_targets;
    o.secrets = node.find<const secret_box>();
    o.metrics = node.metrics;
    actor_ = spawn_webhook_notifier(node.sys, node.store, o);
  }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point deadline) override {
    runtime::stop_and_wait(node.sys, actor_, deadline, "the webhook notifier");
  }

private:
  caf::actor actor_;
};

} // namespace

std::unique_ptr<runtime::module> webhooks_module() { return std::make_unique<webhooks_impl>(); }

} // namespace colony::adapters
