// The modules of runtime/ itself: the entity registry and the durable timer
// poller (module.hpp).
#include <caf/all.hpp>

#include "colony/runtime/module.hpp"
#include "colony/runtime/introspection.hpp"
#include "colony/runtime/plugin_pump.hpp"
#include "colony/runtime/timer_service.hpp"

namespace colony::runtime {
namespace {

/// The plugin actors' reports as metrics (docs/plugins.md, "Metrics and audit").
class plugin_metrics final : public actors::plugin_observer {
public:
  explicit plugin_metrics(std::shared_ptr<metrics> m) : m_(std::move(m)) {}
  void call_ended(std::string_view plugin, std::string_view hook, std::string_view outcome) override {
    m_->count("colony_plugin_calls_total", "Plugin hook calls, by plugin, hook and outcome (ok, or the fault)",
              {{"plugin", std::string{plugin}}, {"hook", std::string{hook}}, {"outcome", std::string{outcome}}});
  }
  void suspended(std::string_view plugin) override {
    m_->count("colony_plugin_suspensions_total", "Plugins the circuit breaker suspended for a tenant, by plugin",
              {{"plugin", std::string{plugin}}});
  }

private:
  std::shared_ptr<metrics> m_;
};

class entities final : public module {
public:
  std::string_view name() const override { return "entities"; }
  std::string_view title() const override { return "the entities"; }

  void options(option_registry& r) override {
    r.add("entities",
          opt::duration("entity.idle-timeout",
                        "idle time after which an entity actor is passivated "
                        "(its state stays in the store)",
                        std::chrono::milliseconds(10), std::chrono::hours(24), &node_config::idle_timeout));
    r.add(
      "entities",
      opt::integer("tenant.trial-days", "length of a new tenant's trial in days", 0, 3650, &node_config::trial_days));
    r.add("entities",
          opt::custom(
            "tenant.default-plan", option_kind::string, "plan of a tenant created without one (one of [colony.plans])",
            [](node_config& c, const std::string& v) -> std::optional<std::string> {
              c.rules.default_plan = v; // checked against the plans once all sources are read
              return std::nullopt;
            },
            [](const node_config& c) { return c.rules.default_plan; }));
    r.add_check([](node_config& c) -> std::optional<std::string> {
      if (!c.rules.plans.contains(c.rules.default_plan))
        return "invalid value for tenant.default-plan: '" + c.rules.default_plan + "' is not a configured plan";
      c.rules.trial_us = static_cast<std::int64_t>(c.trial_days) * 24 * 3600 * 1'000'000;
      return std::nullopt;
    });
  }

  void start(node_context& node) override {
    actors::entity_env env;
    env.store = node.store;
    env.rules = node.cfg.rules;
    env.idle_timeout = node.cfg.idle_timeout;
    env.store_timeout = node.cfg.request_timeout;
    env.fault_injection = node.cfg.fault_injection;
    env.plugins = node.find<const actors::plugin_engine>(); // the plugins module, before this one
    env.plugin_fault_threshold = node.cfg.plugin_fault_threshold;
    env.plugin_event_attempts = node.cfg.plugin_event_attempts;
    env.plugin_event_batch = node.cfg.plugin_event_batch;
    env.plugin_kv_quota = node.cfg.plugin_kv_quota;
    env.plugin_http = node.find<const actors::outbound_http_service>(); // the plugins module's too
    env.plugin_pool = node.find<actors::plugin_executor>();             // the plugins module's
    env.plugin_inline_time = node.cfg.plugin_inline_time;
    if (node.metrics)
      env.plugin_reports = std::make_shared<plugin_metrics>(node.metrics);
    node.entities = spawn_entity_registry(node.sys, env, node.metrics);
    // The directory itself, for introspection, whatever the cluster module
    // puts in front of node.entities later.
    node.provide(std::make_shared<const local_entities>(local_entities{node.entities.router}));
  }

  void stop(node_context& node, std::chrono::steady_clock::time_point) override {
    if (node.entities.actor)
      stop_entity_registry(node.entities);
  }
};

class timers final : public module {
public:
  std::string_view name() const override { return "timers"; }
  std::string_view title() const override { return "the timer service"; }

  void options(option_registry& r) override {
    r.add("timers",
          opt::duration("timers.poll-interval", "how often due durable timers (trial expiry, ...) are looked for",
                        std::chrono::milliseconds(10), std::chrono::minutes(10), &node_config::timer_poll_interval));
  }

  void start(node_context& node) override {
    timer_options o;
    o.owner = node.chores;
    o.metrics = node.metrics;
    o.poll_interval = node.cfg.timer_poll_interval;
    actor_ = spawn_timer_service(node.sys, node.store, node.entities.actor, o);
  }

  void stop(node_context&, std::chrono::steady_clock::time_point) override {
    caf::anon_send(actor_, actors::stop_atom::value);
  }

private:
  caf::actor actor_;
};

} // namespace

std::unique_ptr<module> entities_module() { return std::make_unique<entities>(); }
/// The on_event pump (its options are the plugins module's plugins.event-*).
class plugin_events final : public module {
public:
  std::string_view name() const override { return "plugin-events"; }
  std::string_view title() const override { return "the on_event pump"; }

  void start(node_context& node) override {
    plugin_pump_options o;
    o.owner = node.chores;
    o.poll_interval = node.cfg.plugin_event_poll;
    actor_ = spawn_plugin_pump(node.sys, node.store, node.entities.actor, o);
  }

  void stop(node_context&, std::chrono::steady_clock::time_point) override {
    caf::anon_send(actor_, actors::stop_atom::value);
  }

private:
  caf::actor actor_;
};

std::unique_ptr<module> timers_module() { return std::make_unique<timers>(); }
std::unique_ptr<module> plugin_events_module() { return std::make_unique<plugin_events>(); }

} // namespace colony::runtime
