#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/adapters/webhooks.hpp"
#include "colony/actors/integrations/webhook_model.hpp"

#include <openssl/rand.h>

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

void register_webhook(api_core& a, const std::shared_ptr<call>& c, webhook_endpoint e);

void webhook_store(api_core& a, const std::shared_ptr<call>& c, webhook_op op,
                   std::function<void(webhook_result&)> ok) {
  a.ask_store<webhook_result>(c, webhook_atom::value, std::move(op), "the webhooks", std::move(ok));
}

nlohmann::json endpoint_json(const webhook_endpoint& e) {
  return {{"id", e.id},
          {"tenantId", e.tenant_id},
          {"url", e.url},
          {"eventTypes", e.event_types},
          {"description", e.description},
          {"createdAt", protocol::format_rfc3339(e.created_us)}};
}

std::optional<std::string> webhook_id(api_core& a, const std::shared_ptr<call>& c) {
  auto raw = c->path["webhookId"];
  if (!protocol::is_uuid(raw)) {
    a.fail(c, 400, "invalid-id", "Invalid webhook id", "'" + raw.substr(0, 64) + "' is not a webhook id (UUID)");
    return std::nullopt;
  }
  return normalize_email(raw);
}

void create_webhook(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, false, false))
    return;
  auto spec = webhook_spec_from_json(c->req.body,
                                     [](const std::string& url) { return protocol::parse_http_url(url).has_value(); });
  if (!spec) {
    c->respond(api::failure_response(spec.error(), c->req.request_id));
    return;
  }
  webhook_endpoint e;
  e.url = std::move(spec.value().url);
  e.description = std::move(spec.value().description);
  e.event_types = std::move(spec.value().event_types);
  if (a.opts.allow_private_webhook_targets) {
    register_webhook(a, c, std::move(e));
    return;
  }
  // The name is resolved (getaddrinfo blocks) on a body worker thread.
  a.bridges.post_blocking(c, [&a, c, e](caf::event_based_actor*) mutable {
    if (auto why = check_webhook_target(*protocol::parse_http_url(e.url), true)) {
      failure f = actors::fail(errc::invalid, "url: " + *why + "; webhooks go to public addresses only");
      f.errors.push_back({"url", *why});
      c->respond(api::failure_response(f, c->req.request_id));
      return;
    }
    register_webhook(a, c, std::move(e));
  });
}

void register_webhook(api_core& a, const std::shared_ptr<call>& c, webhook_endpoint e) {
  a.with_existing_tenant(c, [&a, c, e](std::string tid) mutable {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
      a.fail(c, 500, "internal-error", "Internal error", "no randomness for the webhook secret");
      return;
    }
    static const char* hex = "0123456789abcdef";
    e.secret = "whsec_";
    for (unsigned char b : raw) {
      e.secret += hex[b >> 4];
      e.secret += hex[b & 15];
    }
    e.id = protocol::new_uuid_v7();
    e.tenant_id = tid;
    e.created_us = protocol::now_us();
    webhook_op op;
    op.what = webhook_op::kind::create_endpoint;
    op.endpoint = e;
    if (a.ctx.secrets) // stored sealed: a copy of the database alone does not reveal it
      op.endpoint.secret = a.ctx.secrets->seal(e.secret);
    op.audit.push_back(audit_of(*c, tid, "webhook.created", "webhook:" + e.id, "success", 201, e.url));
    auto doc = endpoint_json(e);
    doc["secret"] = e.secret; // shown once
    auto answer = http::created(doc, "/v1/tenants/" + e.tenant_id + "/webhooks/" + e.id);
    op.answer = a.answer_in_transaction(c, answer);
    webhook_store(a, c, std::move(op), send_stored_answer<webhook_result>(c, std::move(answer)));
  });
}

void list_webhooks(api_core& a, std::shared_ptr<call> c) {
  a.with_existing_tenant(c, [&a, c](std::string tid) {
    webhook_op op;
    op.what = webhook_op::kind::list_endpoints;
    op.tenant_id = tid;
    webhook_store(a, c, std::move(op), [c](webhook_result& r) {
      auto arr = nlohmann::json::array();
      for (const auto& e : r.endpoints)
        arr.push_back(endpoint_json(e));
      c->respond(json(200, nlohmann::json{{"data", arr}}.dump(-1, ' ', false, replace_invalid)));
    });
  });
}

void get_webhook(api_core& a, std::shared_ptr<call> c) {
  auto wid = webhook_id(a, c);
  if (!wid)
    return;
  a.with_existing_tenant(c, [&a, c, wid = *wid](std::string tid) {
    webhook_op op;
    op.what = webhook_op::kind::get_endpoint;
    op.tenant_id = tid;
    op.endpoint_id = wid;
    webhook_store(a, c, std::move(op), [&a, c, wid](webhook_result& r) {
      if (r.endpoints.empty())
        a.fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
      else
        c->respond(json(200, endpoint_json(r.endpoints.front()).dump(-1, ' ', false, replace_invalid)));
    });
  });
}

void delete_webhook(api_core& a, std::shared_ptr<call> c) {
  auto wid = webhook_id(a, c);
  if (!wid)
    return;
  a.with_existing_tenant(c, [&a, c, wid = *wid](std::string tid) {
    webhook_op op;
    op.what = webhook_op::kind::delete_endpoint;
    op.tenant_id = tid;
    op.endpoint_id = wid;
    op.audit.push_back(audit_of(*c, tid, "webhook.deleted", "webhook:" + wid, "success", 204, {}));
    op.now_us = protocol::now_us();
    webhook_store(a, c, std::move(op), [&a, c, wid](webhook_result& r) {
      if (r.status == store_status::not_found)
        a.fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
      else
        c->respond(no_content());
    });
  });
}

void list_deliveries(api_core& a, std::shared_ptr<call> c) {
  auto wid = webhook_id(a, c);
  if (!wid)
    return;
  int limit = 100;
  if (!a.int_param(c, "limit", 1, 500, limit))
    return;
  std::string after;
  if (auto it = c->query.find("after"); it != c->query.end()) {
    if (!protocol::is_uuid(it->second)) {
      a.invalid_param(c, "after", "must be a delivery id");
      return;
    }
    after = normalize_email(it->second);
  }
  auto status_filter = c->query.contains("status") ? c->query["status"] : std::string{};
  if (!status_filter.empty() && status_filter != "pending" && status_filter != "delivered" && status_filter != "dead") {
    a.invalid_param(c, "status", "must be pending, delivered or dead");
    return;
  }
  a.with_existing_tenant(c, [&a, c, wid = *wid, limit, after, status_filter](std::string tid) {
    webhook_op get;
    get.what = webhook_op::kind::get_endpoint;
    get.tenant_id = tid;
    get.endpoint_id = wid;
    webhook_store(a, c, std::move(get), [&a, c, wid, tid, limit, after, status_filter](webhook_result& r) {
      if (r.endpoints.empty()) {
        a.fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
        return;
      }
      webhook_op op;
      op.what = webhook_op::kind::list_deliveries;
      op.tenant_id = tid;
      op.endpoint_id = wid;
      op.after = after;
      op.limit = limit;
      webhook_store(a, c, std::move(op), [c, status_filter, limit](webhook_result& page) {
        auto arr = nlohmann::json::array();
        for (const auto& d : page.deliveries) {
          if (!status_filter.empty() && d.status != status_filter)
            continue;
          arr.push_back({{"id", d.id},
                         {"eventId", d.event_id},
                         {"eventType", d.event_type},
                         {"status", d.status},
                         {"attempts", d.attempts},
                         {"lastStatus", d.last_status},
                         {"lastError", d.last_error},
                         {"nextAttemptAt",
                          d.status == "pending" ? nlohmann::json(protocol::format_rfc3339(d.next_attempt_us))
                                                : nlohmann::json(nullptr)},
                         {"createdAt", protocol::format_rfc3339(d.created_us)},
                         {"updatedAt", protocol::format_rfc3339(d.updated_us)}});
        }
        nlohmann::json doc{{"data", arr}};
        doc["nextAfter"] = static_cast<int>(page.deliveries.size()) == limit ? nlohmann::json(page.deliveries.back().id)
                                                                             : nlohmann::json(nullptr);
        c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
      });
    });
  });
}

} // namespace

void add_webhook_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/tenants/{tenantId}/webhooks", p::manage, create_webhook);
  r.add("GET", "/v1/tenants/{tenantId}/webhooks", p::tenant_inspect, list_webhooks);
  r.add("GET", "/v1/tenants/{tenantId}/webhooks/{webhookId}", p::tenant_inspect, get_webhook);
  r.add("DELETE", "/v1/tenants/{tenantId}/webhooks/{webhookId}", p::manage, delete_webhook);
  r.add("GET", "/v1/tenants/{tenantId}/webhooks/{webhookId}/deliveries", p::tenant_inspect, list_deliveries);
}

} // namespace colony::adapters::http
