#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

/// POST with Idempotency-Key (IETF httpapi-idempotency-key, as Stripe does
/// it): the first answer is kept per credential, route, path and key for
/// http.idempotency-ttl; a repeat with the same request replays it, another
/// request with the key is 422, a repeat while the first runs is 409. An
/// entity change marks the key committed in its own transaction, so after
/// a crash between the commit and the stored answer the repeat is answered
/// from the entity instead of applying the change twice.
void api_core::with_idempotency(const std::shared_ptr<call>& c, std::function<void()> next) {
  const auto& key = c->req.idempotency_key;
  if (key.size() > 255 || std::any_of(key.begin(), key.end(), [](char ch) { return ch < 0x20 || ch > 0x7e; })) {
    fail(c, 400, "invalid-idempotency-key", "Invalid Idempotency-Key",
         "an Idempotency-Key is 1 to 255 printable ASCII characters (a UUID is a good choice)");
    return;
  }
  std::string_view target = c->req.target;
  auto path = target.substr(0, target.find('?'));
  auto scope = api_key_hash(c->who.credential + "\n" + c->route + "\n" + std::string{path} + "\n" + key);
  auto fingerprint = api_key_hash(c->req.method + "\n" + c->req.target + "\n" + c->req.body);
  idempotency_op op;
  op.what = idempotency_op::kind::begin;
  op.scope = scope;
  op.fingerprint = fingerprint;
  op.now_us = protocol::now_us();
  op.expires_us = op.now_us + std::chrono::duration_cast<std::chrono::microseconds>(opts.idempotency_ttl).count();
  op.stale_before_us =
    op.now_us - 2 * std::chrono::duration_cast<std::chrono::microseconds>(opts.request_timeout).count();
  ask_store<idempotency_result>(
    c, idempotency_atom::value, std::move(op), "idempotency keys", [this, c, scope, next](idempotency_result& r) {
      using o = idempotency_result::outcome;
      switch (r.what) {
        case o::mismatch:
          fail(c, 422, "idempotency-key-reused", "Idempotency-Key reused",
               "this Idempotency-Key was used with another request (method, path or body); use a new key");
          return;
        case o::running: {
          auto resp = api::problem(409, "idempotency-key-in-use", "Request in progress",
                                   "the first request with this Idempotency-Key is still in progress; retry later",
                                   c->req.request_id);
          resp.headers.emplace_back("Retry-After", "1");
          c->respond(std::move(resp));
          return;
        }
        case o::replay: c->respond(replayed(r)); return;
        case o::committed: answer_committed(c, r); return;
        case o::started: break;
      }
      c->idem_scope = scope;
      c->before_answer = [this, c, scope](api_response resp, std::function<void(api_response)> send_on) {
        store_answer(c, scope, std::move(resp), std::move(send_on));
      };
      next();
    });
}

/// The record of `resp` as the answer of Idempotency-Key `scope`.
idempotency_op api_core::answer_record(const std::string& scope, const api_response& resp) const {
  idempotency_op op;
  op.what = idempotency_op::kind::finish;
  op.scope = scope;
  op.status = resp.status;
  nlohmann::json h = nlohmann::json::array();
  for (const auto& [k, v] : resp.headers)
    if (k == "ETag" || k == "Location" || k == "Content-Location")
      h.push_back({k, v});
  op.headers = nlohmann::json{{"contentType", resp.content_type}, {"headers", h}}.dump();
  // Answers hold personal data and, for API keys, the key: sealed at rest.
  op.body = ctx.secrets ? ctx.secrets->seal(resp.body) : resp.body;
  return op;
}

/// A creation whose answer is known before its store operation (webhook
/// endpoints, API keys) stores it in that operation's own transaction:
/// the record to pass, and the hook no longer needed once it committed.
std::optional<idempotency_op> api_core::answer_in_transaction(const std::shared_ptr<call>& c,
                                                              const api_response& resp) {
  if (c->idem_scope.empty())
    return std::nullopt;
  return answer_record(c->idem_scope, resp);
}

/// Keeps the answer with the key, then lets it leave. Answers a retry may
/// change (5xx, 429) are not kept: the key is released instead. A change
/// whose outcome is unknown (no answer in time: it may yet commit) keeps
/// the key running: a retry gets 409 until the change commits (then its
/// answer, from the entity) or the key goes stale (then it runs again).
void api_core::store_answer(const std::shared_ptr<call>& c, const std::string& scope, api_response resp,
                            std::function<void(api_response)> send_on) {
  if (c->outcome_unknown) {
    send_on(std::move(resp));
    return;
  }
  idempotency_op op;
  if (resp.status >= 500 || resp.status == 429) {
    op.what = idempotency_op::kind::release;
    op.scope = scope;
  } else {
    op = answer_record(scope, resp);
  }
  bridges.post(c,
               [c, op = std::move(op), store = ctx.store, timeout = opts.request_timeout, resp = std::move(resp),
                send_on = std::move(send_on)](caf::event_based_actor* self) mutable {
                 auto not_stored = [c] {
                   log::warn("the answer of an Idempotency-Key was not stored; a repeat may run again",
                             {{"request_id", c->req.request_id}});
                 };
                 bridge_pool::request<idempotency_result>(
                   self, c, store, timeout,
                   [resp, send_on, not_stored](idempotency_result& r) {
                     if (r.status != store_status::ok)
                       not_stored();
                     send_on(resp);
                   },
                   [resp, send_on, not_stored](const caf::error&) {
                     not_stored();
                     send_on(resp);
                   },
                   idempotency_atom::value, std::move(op));
               });
}

api_response api_core::replayed(const idempotency_result& r) const {
  api_response resp;
  resp.status = r.answer_status;
  auto meta = nlohmann::json::parse(r.headers, nullptr, false);
  if (meta.is_object()) {
    resp.content_type = meta.value("contentType", std::string{"application/json"});
    for (const auto& h : meta.value("headers", nlohmann::json::array()))
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string())
        resp.headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
  }
  auto body = ctx.secrets ? ctx.secrets->open(r.body) : std::optional<std::string>{r.body};
  if (!body) {
    log::error("a stored Idempotency-Key answer does not open under the secrets key");
    return api::problem(500, "internal-error", "Internal error", "the stored answer cannot be read", {});
  }
  resp.body = std::move(*body);
  resp.headers.emplace_back("Idempotency-Replayed", "true");
  return resp;
}

/// The first request's change committed but its answer was lost (the
/// node stopped in between): answered from the entity as it is now.
void api_core::answer_committed(const std::shared_ptr<call>& c, const idempotency_result& r) {
  bool creation = c->route == "/v1/tenants" || c->route == "/v1/tenants/{tenantId}/users";
  auto kind = r.ref_kind == static_cast<int>(entity_kind::user) ? entity_kind::user : entity_kind::tenant;
  command cmd;
  cmd.what = op::get;
  auto tid = kind == entity_kind::user ? r.ref_tenant : r.ref_id;
  send(c, entity_key{kind, tid, r.ref_id}, std::move(cmd), [creation, kind, r](entity_reply& e) {
    auto resp = entity_response(e, creation ? 201 : 200);
    if (creation)
      resp.headers.emplace_back("Location",
                                kind == entity_kind::user ? "/v1/tenants/" + r.ref_tenant + "/users/" + r.ref_id
                                                          : "/v1/tenants/" + r.ref_id);
    resp.headers.emplace_back("Idempotency-Replayed", "true");
    return resp;
  });
}

} // namespace colony::adapters::http
