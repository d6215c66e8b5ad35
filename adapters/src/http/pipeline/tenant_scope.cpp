#include "../core.hpp"

#include <caf/all.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

/// Answers 404 or 403 unless the caller may use the route on tenant `id`.
/// Another tenant's resource is a 404 worded exactly like a tenant that
/// does not exist, so that no caller learns which tenants exist.
bool api_core::allowed(const std::shared_ptr<call>& c, const std::string& id, const std::string& shown_as) {
  auto uid = c->path.contains("userId") ? normalize_email(c->path["userId"]) : std::string{};
  switch (access::authorize(c->who, c->perm, id, uid)) {
    case decision::allow: c->tenant_id = id; return true;
    case decision::hidden:
      c->hidden = true;
      fail(c, 404, "not-found", "Not found", shown_as);
      return false;
    case decision::forbidden:
      forbidden(c, "this credential's roles do not allow " + c->req.method + " " + c->route);
      return false;
  }
  return false;
}

/// Resolves {tenantId} (a UUID as is, or a slug through the store) and
/// checks that the caller may use the route on that tenant.
void api_core::with_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next) {
  auto raw = c->path["tenantId"];
  if (protocol::is_uuid(raw)) {
    auto id = normalize_email(raw); // ASCII lower case
    if (allowed(c, id, "no tenant with id " + id))
      rate_limited(c, id, [next, id] { next(id); });
    return;
  }
  if (!valid_slug(raw)) {
    fail(c, 400, "invalid-id", "Invalid tenant id",
         "'" + raw.substr(0, 64) + "' is neither a tenant id (UUID) nor a slug");
    return;
  }
  ask_store_raw<std::string>(
    c,
    [this, c, raw, next = std::move(next)](std::string& id) {
      if (id.empty())
        fail(c, 404, "not-found", "Not found", "no tenant with slug '" + raw + "'");
      else if (allowed(c, id, "no tenant with slug '" + raw + "'"))
        rate_limited(c, id, [next, id] { next(id); });
    },
    resolve_atom::value, raw);
}

/// Runs `next` with the tenant's id once the tenant is known to exist (404 otherwise).
void api_core::with_existing_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next) {
  with_tenant(c, [this, c, next = std::move(next)](std::string id) {
    command cmd;
    cmd.what = op::get;
    call_entity(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [next, id](entity_reply&) { next(id); });
  });
}

std::optional<std::string> api_core::user_id(const std::shared_ptr<call>& c) {
  auto raw = c->path["userId"];
  if (!protocol::is_uuid(raw)) {
    fail(c, 400, "invalid-id", "Invalid user id", "'" + raw.substr(0, 64) + "' is not a user id (UUID)");
    return std::nullopt;
  }
  return normalize_email(raw);
}

} // namespace colony::adapters::http
