// The route groups: one file per resource group, each registering its routes
// (method, template, permission, handler) on the router. Adding a group is a
// new routes/<group>.cpp, its line here and its line in add_all_routes.
#pragma once

#include "../router.hpp"

namespace colony::adapters::http {

void add_ops_routes(router& r);     // livez, readyz, metrics, openapi.json
void add_tenant_routes(router& r);  // tenants: create, list, read, patch, lifecycle, usage
void add_user_routes(router& r);    // users: create, list, read, patch
void add_gdpr_routes(router& r);    // delete (with ?erase) and export of a user
void add_event_routes(router& r);   // the event feeds
void add_billing_routes(router& r); // the Stripe webhook
void add_webhook_routes(router& r); // outbound webhook endpoints and deliveries
void add_api_key_routes(router& r); // API keys
void add_audit_routes(router& r);   // the audit logs
void add_cluster_routes(router& r); // the cluster view and placement

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
}

} // namespace colony::adapters::http
