#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/adapters/auth.hpp"
#include "colony/actors/integrations/api_key_model.hpp"

#include <google/protobuf/util/time_util.h>

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

void revoke_key(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& kid);

void api_key_store(api_core& a, const std::shared_ptr<call>& c, api_key_op op,
                   std::function<void(api_key_result&)> ok) {
  a.ask_store<api_key_result>(c, api_key_atom::value, std::move(op), "the API keys", std::move(ok));
}

nlohmann::json api_key_json(const api_key_row& k, std::int64_t now_us) {
  auto status = k.revoked_us != 0 ? "revoked" : (k.expires_us != 0 && now_us >= k.expires_us ? "expired" : "active");
  return {
    {"id", k.id},
    {"tenantId", k.tenant_id},
    {"name", k.name},
    {"roles", k.roles},
    {"status", status},
    {"createdBy", k.created_by},
    {"createdAt", protocol::format_rfc3339(k.created_us)},
    {"expiresAt", k.expires_us ? nlohmann::json(protocol::format_rfc3339(k.expires_us)) : nlohmann::json(nullptr)},
    {"revokedAt", k.revoked_us ? nlohmann::json(protocol::format_rfc3339(k.revoked_us)) : nlohmann::json(nullptr)}};
}

void create_api_key(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, false, false))
    return;
  auto now = protocol::now_us();
  auto spec = api_key_spec_from_json(c->req.body, now);
  if (!spec) {
    c->respond(api::failure_response(spec.error(), c->req.request_id));
    return;
  }
  auto name = spec.value().name;
  auto roles = spec.value().roles;
  auto expires_us = spec.value().expires_us;
  if (auto r = access::first_ungrantable(c->who, roles); !r.empty()) {
    a.forbidden(c, "this credential may not grant the role '" + r + "'");
    return;
  }
  a.with_existing_tenant(c, [&a, c, name, roles, expires_us, now](std::string tid) {
    minted_key m;
    try {
      m = mint_api_key(tid, roles, name, c->who.credential, now, expires_us);
    } catch (const std::exception&) {
      a.fail(c, 500, "internal-error", "Internal error", "no randomness for the API key");
      return;
    }
    api_key_op op;
    op.what = api_key_op::kind::create;
    op.key = m.row;
    op.audit.push_back(audit_of(*c, tid, "api_key.created", "api_key:" + m.row.id, "success", 201,
                                "roles " + nlohmann::json(m.row.roles).dump(-1, ' ', false, replace_invalid)));
    auto doc = api_key_json(m.row, now);
    doc["key"] = m.key; // shown once: only its hash is kept
    auto answer = http::created(doc, "/v1/tenants/" + m.row.tenant_id + "/api-keys/" + m.row.id);
    op.answer = a.answer_in_transaction(c, answer);
    api_key_store(a, c, std::move(op), send_stored_answer<api_key_result>(c, std::move(answer)));
  });
}

void list_api_keys(api_core& a, std::shared_ptr<call> c) {
  a.with_existing_tenant(c, [&a, c](std::string tid) {
    api_key_op op;
    op.what = api_key_op::kind::list;
    op.tenant_id = tid;
    api_key_store(a, c, std::move(op), [c](api_key_result& r) {
      auto now = protocol::now_us();
      auto arr = nlohmann::json::array();
      for (const auto& k : r.keys)
        arr.push_back(api_key_json(k, now));
      c->respond(json(200, nlohmann::json{{"data", arr}}.dump(-1, ' ', false, replace_invalid)));
    });
  });
}

void revoke_api_key(api_core& a, std::shared_ptr<call> c) {
  auto kid = c->path["keyId"];
  if (kid.size() != 32 || kid.find_first_not_of("0123456789abcdef") != std::string::npos) {
    a.fail(c, 400, "invalid-id", "Invalid API key id", "'" + kid.substr(0, 64) + "' is not an API key id");
    return;
  }
  a.with_existing_tenant(c, [&a, c, kid](std::string tid) {
    if (!owner_powers(*c)) {
      // An admin may not revoke an owner's key: look at its roles first
      // (they never change after creation).
      api_key_op get;
      get.what = api_key_op::kind::get;
      get.id = kid;
      api_key_store(a, c, std::move(get), [&a, c, kid, tid](api_key_result& r) {
        bool owners = !r.keys.empty() && r.keys.front().tenant_id == tid &&
          std::find(r.keys.front().roles.begin(), r.keys.front().roles.end(), "owner") != r.keys.front().roles.end();
        if (owners) {
          a.forbidden(c, "only an owner may revoke a key with the owner role");
          return;
        }
        revoke_key(a, c, tid, kid);
      });
      return;
    }
    revoke_key(a, c, tid, kid);
  });
}

void revoke_key(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& kid) {
  {
    api_key_op op;
    op.what = api_key_op::kind::revoke;
    op.tenant_id = tid;
    op.id = kid;
    op.now_us = protocol::now_us();
    op.audit.push_back(audit_of(*c, tid, "api_key.revoked", "api_key:" + kid, "success", 204, {}));
    api_key_store(a, c, std::move(op), [&a, c, kid](api_key_result& r) {
      a.revoke_everywhere(kid); // stops working at once here, and within a moment on every node
      if (r.status == store_status::not_found)
        a.fail(c, 404, "not-found", "Not found", "no active API key " + kid + " in this tenant");
      else
        c->respond(no_content());
    });
  }
}

} // namespace

void add_api_key_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/tenants/{tenantId}/api-keys", p::manage, create_api_key);
  r.add("GET", "/v1/tenants/{tenantId}/api-keys", p::manage, list_api_keys);
  r.add("DELETE", "/v1/tenants/{tenantId}/api-keys/{keyId}", p::manage, revoke_api_key);
}

} // namespace colony::adapters::http
