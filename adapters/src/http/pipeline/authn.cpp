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

/// 401 with the RFC 6750 challenge. Without any credential the challenge
/// carries no error code (RFC 6750 §3.1).
void api_core::unauthorized(const std::shared_ptr<call>& c, const std::string& error, const std::string& reason) {
  log::info("authentication failed",
            {{"request_id", c->req.request_id},
             {"route", c->route},
             {"reason", error.empty() ? std::string{"no credentials"} : reason}});
  // The caller is anonymous: it learns what it can fix about its own
  // credential (expired, revoked, malformed), never how authentication is
  // configured (which algorithms, keys, claims or options); the log has
  // the precise reason.
  auto client_may_know = [](const std::string& why) {
    for (const char* ok : {"expired", "revoked", "not valid yet", "malformed", "not a JWS", "not base64url",
                           "longer than", "only the Bearer scheme", "unknown API key", "has no exp"})
      if (why.find(ok) != std::string::npos)
        return true;
    return false;
  };
  std::string description = client_may_know(reason) ? reason : std::string{"the credential is not accepted"};
  auto r =
    api::problem(401, "unauthorized", "Unauthorized",
                 error.empty() ? "send Authorization: Bearer <token or API key>" : description, c->req.request_id);
  std::string challenge = "Bearer realm=\"colony\"";
  if (!error.empty()) {
    std::string quoted;
    for (char ch : description) // RFC 6750: error_description is %x20-21 / %x23-5B / %x5D-7E
      if (ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\')
        quoted += ch;
    challenge += ", error=\"" + error + "\", error_description=\"" + quoted + "\"";
  }
  r.headers.emplace_back("WWW-Authenticate", challenge);
  c->respond(std::move(r));
}

/// Finds out who calls (c->who), then runs `next`; answers 401 otherwise.
void api_core::authenticate(const std::shared_ptr<call>& c, std::function<void()> next) {
  // The console's session (an HttpOnly cookie) stands for its credential on
  // reads, and on the console's operator actions when the request comes
  // from the console's own origin (a browser always sends Origin with a
  // POST; with SameSite=Strict that shuts out cross-site requests twice).
  // A cookie never authorizes any other change (docs/console.md).
  auto own_origin = [&] { return c->req.origin == (opts.tls_cert.empty() ? "http://" : "https://") + c->req.host; };
  bool cookie_may = c->req.method == "GET" || c->req.method == "HEAD" ||
    (c->perm == permission::operate && c->req.method == "POST" && own_origin());
  if (c->req.authorization.empty() && !c->req.cookie.empty() && cookie_may)
    if (auto cred = sessions->credential(console_sessions::value_in(c->req.cookie)))
      c->req.authorization = "Bearer " + *cred;
  std::string_view h = c->req.authorization;
  if (h.empty()) {
    unauthorized(c, {}, {});
    return;
  }
  if (h.size() < 7 || !(h.substr(0, 7) == "Bearer " || h.substr(0, 7) == "bearer ")) {
    unauthorized(c, "invalid_request", "only the Bearer scheme is accepted");
    return;
  }
  auto token = h.substr(7);
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  if (looks_like_api_key(token)) {
    with_api_key(c, std::string{token}, std::move(next));
    return;
  }
  if (!ctx.jwt) {
    unauthorized(c, "invalid_token",
                 "a JWT, but this node accepts API keys only (auth-jwt-hs256-secret, auth-jwks unset)");
    return;
  }
  auto res = ctx.jwt->verify(token, protocol::now_us() / 1'000'000);
  if (auto* err = std::get_if<auth_error>(&res)) {
    unauthorized(c, err->error, err->description);
    return;
  }
  c->who = std::move(std::get<principal>(res));
  next();
}

void api_core::with_api_key(const std::shared_ptr<call>& c, std::string token, std::function<void()> next) {
  auto id = api_key_id(token);
  if (!id) {
    unauthorized(c, "invalid_token", "the API key is malformed");
    return;
  }
  auto accept = [this, c, token, next](const api_key_row& row) {
    if (row.id.empty() || !same_hash(row.hash, api_key_hash(token))) {
      unauthorized(c, "invalid_token", "unknown API key");
      return;
    }
    auto res = api_key_principal(row, protocol::now_us());
    if (auto* err = std::get_if<auth_error>(&res)) {
      unauthorized(c, err->error, err->description);
      return;
    }
    c->who = std::move(std::get<principal>(res));
    next();
  };
  std::optional<api_key_row> cached;
  {
    std::lock_guard lock{keys_mu};
    if (auto it = keys.find(*id); it != keys.end()) {
      if (std::chrono::steady_clock::now() - it->second.fetched < ctx.api_key_cache_ttl)
        cached = it->second.row;
      else
        keys.erase(it);
    }
  }
  if (cached) {
    accept(*cached);
    return;
  }
  api_key_op op;
  op.what = api_key_op::kind::get;
  op.id = *id;
  auto generation = revocations.load();
  ask_store_raw<api_key_result>(
    c,
    [this, c, accept, generation](api_key_result& r) {
      if (r.status != store_status::ok) {
        c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                         c->req.request_id));
        return;
      }
      if (r.keys.empty()) {
        accept(api_key_row{});
        return;
      }
      {
        std::lock_guard lock{keys_mu};
        if (keys.size() >= 100'000) // bounded: a flood of distinct keys cannot grow memory
          keys.clear();
        if (revocations.load() == generation)
          keys[r.keys.front().id] = cached_key{r.keys.front(), std::chrono::steady_clock::now()};
      }
      accept(r.keys.front());
    },
    api_key_atom::value, std::move(op));
}

void api_core::revoke_everywhere(const std::string& key_id) {
  forget_api_key(key_id);
  if (ctx.cluster)
    ctx.cluster->broadcast(revoked_topic, key_id);
}

void api_core::forget_api_key(const std::string& key_id) {
  std::lock_guard lock{keys_mu};
  revocations.fetch_add(1);
  keys.erase(key_id);
}

} // namespace colony::adapters::http
