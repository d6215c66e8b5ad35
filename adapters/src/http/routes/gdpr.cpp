#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"
#include "colony/actors/user/personal_data.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

void erase_user(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& uid);
void answer_export(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& uid,
                   const nlohmann::json& user, const user_data& d);

void delete_user(api_core& a, std::shared_ptr<call> c) {
  auto uid = a.user_id(c);
  if (!uid)
    return;
  bool erase = false;
  if (auto it = c->query.find("erase"); it != c->query.end()) {
    if (it->second != "true" && it->second != "false") {
      a.invalid_param(c, "erase", "must be true or false");
      return;
    }
    erase = it->second == "true";
  }
  a.with_tenant(c, [&a, c, uid = *uid, erase](std::string tid) {
    command cmd;
    cmd.what = op::remove_user;
    cmd.meta.owner_powers = owner_powers(*c);
    cmd.user_id = uid;
    cmd.if_match = if_match(c);
    if (!erase) {
      a.send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [](entity_reply&) { return no_content(); });
      return;
    }
    // GDPR erasure: delete the user (if still there), then remove its
    // personal data from every event, delivery and audit detail, leaving
    // a user.erased tombstone. A user deleted earlier can still be erased.
    cmd.meta.actor = c->who.credential;
    a.call_entity(
      c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd),
      [&a, c, tid, uid](entity_reply& r) {
        if (r.error && r.error->code != errc::not_found) {
          c->respond(api::failure_response(*r.error, c->req.request_id));
          return;
        }
        erase_user(a, c, tid, uid);
      },
      true);
  });
}

void erase_user(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& uid) {
  auto now = protocol::now_us();
  auto ev = erased_event(tid, uid, c->req.request_id, c->req.traceparent, now);
  user_data_op op;
  op.erase = true;
  op.tenant_id = tid;
  op.user_id = uid;
  op.now_us = now;
  op.tombstone.push_back(outbox_event{ev.id(), ev.type(), ev.SerializeAsString()});
  op.audit.push_back(audit_of(*c, tid, "user.erased", "user:" + uid, "success", 204, {}));
  a.ask_store_raw<user_data>(
    c,
    [&a, c, uid](user_data& r) {
      if (r.status == store_status::not_found) {
        // No user of this tenant by that id (another tenant's, or
        // none), or erased before: the store wrote nothing.
        a.fail(c, 404, "not-found", "Not found", "no user with id " + uid + " in this tenant");
        return;
      }
      if (r.status != store_status::ok) {
        c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                         c->req.request_id));
        return;
      }
      log::info("user erased",
                {{"request_id", c->req.request_id},
                 {"events", static_cast<int>(r.events_scrubbed)},
                 {"deliveries", static_cast<int>(r.deliveries_scrubbed)},
                 {"audit_records", static_cast<int>(r.audit_scrubbed)}});
      c->respond(no_content());
    },
    user_data_atom::value, std::move(op));
}

/// GDPR export: the user's state, its events and the audit records about
/// it, as one JSON document.
void export_user(api_core& a, std::shared_ptr<call> c) {
  auto uid = a.user_id(c);
  if (!uid)
    return;
  a.with_tenant(c, [&a, c, uid = *uid](std::string tid) {
    command cmd;
    cmd.what = op::get;
    cmd.meta.request_id = c->req.request_id;
    a.call_entity(
      c, entity_key{entity_kind::user, tid, uid}, std::move(cmd),
      [&a, c, tid, uid](entity_reply& r) {
        if (r.error && r.error->code != errc::not_found) {
          c->respond(api::failure_response(*r.error, c->req.request_id));
          return;
        }
        auto user = r.error
          ? nlohmann::json(nullptr)
          : nlohmann::json::parse(r.entity ? protocol::to_json(*r.entity) : protocol::bytes_to_json(r.type, *r.bytes));
        user_data_op op;
        op.tenant_id = tid;
        op.user_id = uid;
        a.ask_store_raw<user_data>(
          c, [&a, c, tid, uid, user](user_data& d) { answer_export(a, c, tid, uid, user, d); }, user_data_atom::value,
          std::move(op));
      },
      true);
  });
}

/// The export document, once the user's state and data are read.
void answer_export(api_core& a, const std::shared_ptr<call>& c, const std::string& tid, const std::string& uid,
                   const nlohmann::json& user, const user_data& d) {
  if (d.status != store_status::ok) {
    c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                     c->req.request_id));
    return;
  }
  if (user.is_null() && d.events.empty()) {
    a.fail(c, 404, "not-found", "Not found", "no user with id " + uid + " in this tenant");
    return;
  }
  auto events = nlohmann::json::array();
  v1::Event ev;
  for (const auto& e : d.events)
    if (ev.ParseFromString(e))
      events.push_back(nlohmann::json::parse(protocol::to_json(ev)));
  auto audit_records = nlohmann::json::array();
  for (const auto& rec : d.audit)
    audit_records.push_back({{"id", rec.id},
                             {"at", protocol::format_rfc3339(rec.at_us)},
                             {"actor", rec.actor},
                             {"action", rec.action},
                             {"target", rec.target},
                             {"requestId", rec.request_id},
                             {"outcome", rec.outcome},
                             {"status", rec.status},
                             {"detail", rec.detail}});
  nlohmann::json doc{{"exportedAt", protocol::format_rfc3339(protocol::now_us())},
                     {"tenantId", tid},
                     {"userId", uid},
                     {"user", user},
                     {"events", events},
                     {"auditRecords", audit_records}};
  auto resp = json(200, doc.dump(-1, ' ', false, replace_invalid));
  resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"user-" + uid + ".json\"");
  c->respond(std::move(resp));
}

} // namespace

void add_gdpr_routes(router& r) {
  using p = permission;
  r.add("DELETE", "/v1/tenants/{tenantId}/users/{userId}", p::manage, delete_user);
  r.add("GET", "/v1/tenants/{tenantId}/users/{userId}/export", p::self_write, export_user);
}

} // namespace colony::adapters::http
