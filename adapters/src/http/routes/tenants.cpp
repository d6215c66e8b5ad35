#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/tenant.pb.h"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

/// The usage as of `now`: the state's counters of this month (a new month
/// starts from 0, tenant_model: usage_at) plus the calls metered at the edge.
v1::TenantUsage month_usage(const v1::TenantUsage& state, std::int64_t now, std::int64_t metered) {
  auto u = actors::usage_at(state, now);
  u.set_api_calls_this_month(
    static_cast<std::int32_t>(std::min<std::int64_t>(INT32_MAX, std::int64_t{u.api_calls_this_month()} + metered)));
  return u;
}

void create_tenant(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, false, false))
    return;
  auto req = std::make_shared<v1::CreateTenantRequest>();
  if (!a.parse_body(c, *req))
    return;
  command cmd;
  cmd.what = op::create;
  cmd.payload = req;
  auto id = protocol::new_uuid_v7();
  a.send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [](entity_reply& r) {
    auto resp = entity_response(r, 201);
    resp.headers.emplace_back("Location", "/v1/tenants/" + static_cast<const v1::Tenant&>(*r.entity).id());
    return resp;
  });
}

void get_tenant(api_core& a, std::shared_ptr<call> c) {
  a.with_tenant(c, [&a, c](std::string id) {
    a.with_month_usage(c, id, [&a, c, id](std::int64_t now, std::int64_t metered) {
      command cmd;
      cmd.what = op::get;
      a.send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [c, now, metered](entity_reply& r) {
        if (none_match_hits(c->req.if_none_match, r.version) || !r.entity)
          return read_response(*c, r);
        auto t = std::make_shared<v1::Tenant>(static_cast<const v1::Tenant&>(*r.entity));
        *t->mutable_usage() = month_usage(t->usage(), now, metered);
        r.entity = std::move(t);
        return entity_response(r, 200);
      });
    });
  });
}

void patch_tenant(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, true, false))
    return;
  if (nlohmann::json::parse(c->req.body, nullptr, false).contains("plan")) {
    // The plan is what the tenant pays for: an admin may not change it,
    // and with billing connected an owner neither, unless allowed.
    bool platform = c->who.is_platform_admin() && c->who.tenant_id.empty();
    if (!platform && !c->who.has(access::owner)) {
      a.forbidden(c, "only an owner or the platform may change the plan");
      return;
    }
    if (!platform && !a.opts.stripe_webhook_secret.empty() && !a.opts.allow_tenant_plan_change) {
      a.forbidden(c, "the plan follows the tenant's subscription in billing; change it there");
      return;
    }
  }
  a.with_tenant(c, [&a, c](std::string id) {
    command cmd;
    cmd.what = op::patch;
    cmd.text = c->req.body;
    cmd.if_match = if_match(c);
    a.send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
  });
}

void transition(api_core& a, std::shared_ptr<call> c, op what) {
  if (!a.check_json_body(c, false, true))
    return;
  std::string reason;
  if (!c->req.body.empty()) {
    v1::TransitionRequest req;
    if (!a.parse_body(c, req))
      return;
    reason = req.reason();
  }
  a.with_tenant(c, [&a, c, what, reason](std::string id) {
    command cmd;
    cmd.what = what;
    cmd.text = reason;
    cmd.if_match = if_match(c);
    a.send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
  });
}

void activate_tenant(api_core& a, std::shared_ptr<call> c) { transition(a, std::move(c), op::activate); }
void suspend_tenant(api_core& a, std::shared_ptr<call> c) { transition(a, std::move(c), op::suspend); }
void cancel_tenant(api_core& a, std::shared_ptr<call> c) { transition(a, std::move(c), op::cancel); }
/// The tenant's usage: its state's counters plus the API calls metered at
/// the edge this month (stored and not yet flushed).
void tenant_usage(api_core& a, std::shared_ptr<call> c) {
  a.with_tenant(c, [&a, c](std::string id) {
    a.with_month_usage(c, id, [&a, c, id](std::int64_t now, std::int64_t metered) {
      command cmd;
      cmd.what = op::usage;
      a.send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [now, metered](entity_reply& r) {
        auto report = std::make_shared<v1::TenantUsageReport>(static_cast<const v1::TenantUsageReport&>(*r.entity));
        *report->mutable_usage() = month_usage(report->usage(), now, metered);
        return json(200, protocol::to_json(*report));
      });
    });
  });
}

void list_tenants(api_core& a, std::shared_ptr<call> c) {
  list_query q;
  q.kind = entity_kind::tenant;
  if (!a.page_params(c, q, {"createdAt", "name", "slug"}))
    return;
  if (auto it = c->query.find("status"); it != c->query.end()) {
    const auto& s = it->second;
    if (s != tenant_status::trial && s != tenant_status::active && s != tenant_status::suspended &&
        s != tenant_status::cancelled) {
      a.invalid_param(c, "status", "must be one of trial, active, suspended, cancelled");
      return;
    }
    q.status = s;
  }
  if (auto it = c->query.find("plan"); it != c->query.end()) {
    if (!a.ctx.rules.plans.contains(it->second)) {
      a.invalid_param(c, "plan", "'" + it->second.substr(0, 64) + "' is not a configured plan");
      return;
    }
    q.plan = it->second;
  }
  auto rules = a.ctx.rules;
  a.run_list(c, std::move(q), [rules](const list_row& row) {
    v1::Tenant t;
    if (!t.ParseFromString(row.state)) {
      log::error("unreadable tenant state in the store", {{"tenant_id", row.id}});
      return std::string{"{\"id\":\""} + protocol::json_escape(row.id) + "\"}";
    }
    if (auto it = rules.plans.find(t.plan()); it != rules.plans.end())
      fill_limits(*t.mutable_limits(), it->second);
    t.mutable_usage()->set_users(row.user_count);
    return protocol::to_json(t);
  });
}

} // namespace

void add_tenant_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/tenants", p::platform, create_tenant);
  r.add("GET", "/v1/tenants", p::platform, list_tenants);
  r.add("GET", "/v1/tenants/{tenantId}", p::tenant_read, get_tenant);
  r.add("PATCH", "/v1/tenants/{tenantId}", p::manage, patch_tenant);
  r.add("POST", "/v1/tenants/{tenantId}/activate", p::platform, activate_tenant);
  r.add("POST", "/v1/tenants/{tenantId}/suspend", p::platform, suspend_tenant);
  r.add("POST", "/v1/tenants/{tenantId}/cancel", p::own, cancel_tenant);
  r.add("GET", "/v1/tenants/{tenantId}/usage", p::tenant_inspect, tenant_usage);
}

} // namespace colony::adapters::http
