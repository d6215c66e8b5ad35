#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/user.pb.h"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

void list_users(api_core& a, std::shared_ptr<call> c) {
  list_query q;
  q.kind = entity_kind::user;
  if (!a.page_params(c, q, {"createdAt", "email", "name"}))
    return;
  if (auto it = c->query.find("status"); it != c->query.end()) {
    if (it->second != user_status::active && it->second != user_status::disabled) {
      a.invalid_param(c, "status", "must be active or disabled");
      return;
    }
    q.status = it->second;
  }
  if (auto it = c->query.find("role"); it != c->query.end()) {
    const auto& r = it->second;
    if (!access::is_tenant_role(r)) {
      a.invalid_param(c, "role", "must be one of owner, admin, member, viewer");
      return;
    }
    q.role = r;
  }
  if (auto it = c->query.find("q"); it != c->query.end()) {
    if (it->second.size() > 200) {
      a.invalid_param(c, "q", "must be at most 200 characters");
      return;
    }
    q.q = it->second;
  }
  a.with_tenant(c, [&a, c, q](std::string id) mutable {
    q.tenant_id = id;
    // A list of a tenant that does not exist is a 404, not an empty page.
    command cmd;
    cmd.what = op::get;
    a.call_entity(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [&a, c, q](entity_reply&) {
      a.run_list(c, q, [](const list_row& row) {
        v1::User u;
        if (!u.ParseFromString(row.state)) {
          log::error("unreadable user state in the store", {{"user_id", row.id}});
          return std::string{"{\"id\":\""} + protocol::json_escape(row.id) + "\"}";
        }
        return protocol::to_json(u);
      });
    });
  });
}

void create_user(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, false, false))
    return;
  auto req = std::make_shared<v1::CreateUserRequest>();
  if (!a.parse_body(c, *req))
    return;
  a.with_tenant(c, [&a, c, req](std::string tid) {
    std::vector<std::string> roles{req->roles().begin(), req->roles().end()};
    if (auto r = access::first_ungrantable(c->who, roles); !r.empty() && access::is_tenant_role(r)) {
      a.forbidden(c, "this credential may not grant the role '" + r + "'");
      return;
    }
    command cmd;
    cmd.what = op::create_user;
    cmd.payload = req;
    cmd.user_id = protocol::new_uuid_v7();
    cmd.new_id = true;
    a.send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [](entity_reply& r) {
      const auto& u = static_cast<const v1::User&>(*r.entity);
      auto resp = entity_response(r, 201);
      resp.headers.emplace_back("Location", "/v1/tenants/" + u.tenant_id() + "/users/" + u.id());
      return resp;
    });
  });
}

void get_user(api_core& a, std::shared_ptr<call> c) {
  auto uid = a.user_id(c);
  if (!uid)
    return;
  a.with_tenant(c, [&a, c, uid = *uid](std::string tid) {
    command cmd;
    cmd.what = op::get;
    a.send(c, entity_key{entity_kind::user, tid, uid}, std::move(cmd),
           [c](entity_reply& r) { return read_response(*c, r); });
  });
}

void patch_user(api_core& a, std::shared_ptr<call> c) {
  auto uid = a.user_id(c);
  if (!uid || !a.check_json_body(c, true, false))
    return;
  a.with_tenant(c, [&a, c, uid = *uid](std::string tid) {
    // A member updating itself may not touch its roles or status; an admin
    // may not make anyone an owner.
    auto doc = nlohmann::json::parse(c->req.body, nullptr, false);
    std::vector<std::string> fields;
    for (auto& [k, v] : doc.items())
      fields.push_back(k);
    bool manager = access::authorize(c->who, permission::manage, tid) == decision::allow;
    if (auto f = access::first_field_not_self_writable(fields); !manager && !f.empty()) {
      a.forbidden(c, "a member may change its own name, email and attributes, not '" + f + "'");
      return;
    }
    if (manager && doc.contains("roles") && doc["roles"].is_array()) {
      std::vector<std::string> roles;
      for (const auto& r : doc["roles"])
        if (r.is_string())
          roles.push_back(r.get<std::string>());
      if (auto r = access::first_ungrantable(c->who, roles); !r.empty() && access::is_tenant_role(r)) {
        a.forbidden(c, "this credential may not grant the role '" + r + "'");
        return;
      }
    }
    command cmd;
    cmd.what = op::patch_user;
    cmd.meta.owner_powers = owner_powers(*c);
    cmd.user_id = uid;
    cmd.text = c->req.body;
    cmd.if_match = if_match(c);
    a.send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
  });
}

} // namespace

void add_user_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/tenants/{tenantId}/users", p::manage, create_user);
  r.add("GET", "/v1/tenants/{tenantId}/users", p::users_read, list_users);
  r.add("GET", "/v1/tenants/{tenantId}/users/{userId}", p::users_read, get_user);
  r.add("PATCH", "/v1/tenants/{tenantId}/users/{userId}", p::self_write, patch_user);
}

} // namespace colony::adapters::http
