// The route groups: one file per resource group, each registering its routes
// (method, template, permission, handler) on the router. Adding a group is a
// new routes/<group>.cpp, its line here and its line in add_all_routes.
#pragma once

#include "../router.hpp"

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>

namespace colony::adapters::http {

void add_ops_routes(router& r);          // livez, readyz, metrics, openapi.json
void add_tenant_routes(router& r);       // tenants: create, list, read, patch, lifecycle, usage
void add_user_routes(router& r);         // users: create, list, read, patch
void add_gdpr_routes(router& r);         // delete (with ?erase) and export of a user
void add_event_routes(router& r);        // the event feeds
void add_billing_routes(router& r);      // the Stripe webhook
void add_webhook_routes(router& r);      // outbound webhook endpoints and deliveries
void add_api_key_routes(router& r);      // API keys
void add_audit_routes(router& r);        // the audit logs
void add_cluster_routes(router& r);      // the cluster view and placement
void add_admin_routes(router& r);        // the introspection API (console, colonyctl)
void add_admin_action_routes(router& r); // the console's operator actions (drain, passivate)
void add_console_routes(router& r);      // the console's session and live stream
void add_plugin_routes(router& r);       // the plugin registry and a tenant's plugins

/// What this node answers other members gathering GET /v1/admin/* (routes/admin.cpp).
void serve_admin_topics(api_core& a);
/// The documents of GET /v1/admin/nodes, /actors?top= and /crashes?limit=,
/// gathered from every member; `done` runs once, on any thread.
void admin_nodes(api_core& a, std::function<void(nlohmann::json)> done);
void admin_actors(api_core& a, std::int64_t top, std::function<void(nlohmann::json)> done);
void admin_crashes(api_core& a, std::int64_t limit, std::function<void(nlohmann::json)> done);
void admin_stores(api_core& a, std::function<void(nlohmann::json)> done);
void admin_mailboxes(api_core& a, std::int64_t top, std::function<void(nlohmann::json)> done);
/// Drains (on) or undrains the member {nodeName}, audited (routes/cluster.cpp).
void drain_member(api_core& a, std::shared_ptr<call> c, bool on);
/// What this node answers a member asking it to passivate one of its actors
/// (routes/admin_actions.cpp).
void serve_passivate_topic(api_core& a);

inline void add_all_routes(router& r) {
  add_ops_routes(r);
  add_tenant_routes(r);
  add_user_routes(r);
  add_gdpr_routes(r);
  add_event_routes(r);
  add_billing_routes(r);
  add_webhook_routes(r);
  add_api_key_routes(r);
  add_audit_routes(r);
  add_cluster_routes(r);
  add_admin_routes(r);
  add_admin_action_routes(r);
  add_console_routes(r);
  add_plugin_routes(r);
}

} // namespace colony::adapters::http
