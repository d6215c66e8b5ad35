#include "modules.hpp"

#include "colony/adapters/auth.hpp"
#include "colony/adapters/billing.hpp"
#include "colony/adapters/cluster.hpp"
#include "colony/adapters/http.hpp"
#include "colony/adapters/kafka.hpp"
#include "colony/adapters/plugins.hpp"
#include "colony/adapters/prometheus_metrics.hpp"
#include "colony/adapters/secrets.hpp"
#include "colony/adapters/store.hpp"
#include "colony/adapters/webhooks.hpp"

namespace colony::colonyd {

runtime::module_list modules() {
  runtime::module_list m;
  m.push_back(adapters::secrets_module());
  m.push_back(adapters::metrics_module());
  m.push_back(adapters::store_module());
  m.push_back(adapters::relay_module());   // stops after the entities: their last events are published
  m.push_back(adapters::plugins_module()); // the sandbox engine the plugin entities run in
  m.push_back(runtime::entities_module());
  m.push_back(adapters::cluster_module()); // may put the cluster router in front of the entities
  m.push_back(runtime::timers_module());
  m.push_back(runtime::plugin_events_module());
  m.push_back(adapters::webhooks_module());
  m.push_back(adapters::commands_module()); // stops before the entities: the command in hand finishes
  m.push_back(adapters::billing_module());
  m.push_back(adapters::auth_module());
  m.push_back(adapters::http_module()); // serves once everything else runs; drains first
  return m;
}

} // namespace colony::colonyd
