// The web console's routes (docs/console.md): its sign-in session
// (POST/GET/DELETE /console/session) and its live stream
// (GET /v1/admin/stream, Server-Sent Events). The page's files are served
// by serve_console_page (console.cpp) before routing.
#include "groups.hpp"
#include "../console.hpp"
#include "../core.hpp"

#include <nlohmann/json.hpp>

#include "colony/protocol/time.hpp"

namespace colony::adapters::http {

using actors::access::decision;
using actors::access::permission;

namespace {

constexpr std::size_t max_streams = 100; // per node

/// A browser's request from another origin is refused (the session cookie
/// is SameSite=Strict anyway; this also covers a cookie-less sign-in form).
bool same_origin(api_core& a, const std::shared_ptr<call>& c) {
  if (c->req.origin.empty() || c->req.origin == "null")
    return c->req.origin.empty();
  auto scheme = a.opts.tls_cert.empty() ? "http://" : "https://";
  if (c->req.origin == scheme + c->req.host)
    return true;
  a.forbidden(c,
              "the console's session is only opened from its own origin (" + std::string{scheme} + c->req.host +
                "), not " + c->req.origin.substr(0, 100));
  return false;
}

std::string cookie(const api_core& a, const std::string& value, std::int64_t max_age) {
  return std::string{console_sessions::cookie_name} + "=" + value +
    "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age) +
    (a.opts.tls_cert.empty() ? "" : "; Secure");
}

void open_session(api_core& a, std::shared_ptr<call> c) {
  if (!same_origin(a, c))
    return;
  auto doc = nlohmann::json::parse(c->req.body, nullptr, false);
  if (c->req.body.size() > 16 * 1024 || !doc.is_object() || !doc.contains("token") || !doc["token"].is_string() ||
      doc["token"].get<std::string>().empty()) {
    a.fail(c, 400, "invalid-body", "Invalid body", "send {\"token\": \"<platform API key or token>\"}");
    return;
  }
  auto token = doc["token"].get<std::string>();
  if (token.size() > console_sessions::max_credential) {
    a.fail(c, 400, "invalid-body", "Invalid body",
           "the credential is longer than " + std::to_string(console_sessions::max_credential) +
             " bytes: too long to keep in a session cookie; use an API key");
    return;
  }
  c->req.authorization = "Bearer " + token;
  a.authenticate(c, [&a, c, token] {
    if (actors::access::authorize(c->who, permission::observe, {}) != decision::allow) {
      a.forbidden(c, "the console needs a platform credential (platform_admin or platform_operator)");
      return;
    }
    auto id = a.sessions->open(token);
    api_response r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back(
      "Set-Cookie",
      cookie(a, id, std::chrono::duration_cast<std::chrono::seconds>(console_sessions::lifetime).count()));
    c->respond(std::move(r));
  });
}

void session_info(api_core& a, std::shared_ptr<call> c) {
  auto cred = a.sessions->credential(console_sessions::value_in(c->req.cookie));
  if (!cred) { // not an error: the page asks this before it knows (a 401 would be a console error in the browser)
    c->respond(json(200, R"({"signedIn":false})"));
    return;
  }
  c->req.authorization = "Bearer " + *cred; // still valid? (a revoked key ends the session)
  a.authenticate(c, [&a, c] {
    if (actors::access::authorize(c->who, permission::observe, {}) != decision::allow) {
      a.forbidden(c, "the console needs a platform credential (platform_admin or platform_operator)");
      return;
    }
    // The page shows its action buttons only to a credential that may use
    // them, on a node that allows them (the routes decide either way).
    bool may_act =
      a.opts.operator_actions && actors::access::authorize(c->who, permission::operate, {}) == decision::allow;
    nlohmann::json doc{
      {"signedIn", true}, {"subject", c->who.subject}, {"node", a.opts.node_name}, {"operatorActions", may_act}};
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

void close_session(api_core& a, std::shared_ptr<call> c) {
  if (!same_origin(a, c))
    return;
  a.sessions->close(console_sessions::value_in(c->req.cookie));
  api_response r;
  r.status = 204;
  r.content_type.clear();
  r.headers.emplace_back("Set-Cookie", cookie(a, "", 0));
  c->respond(std::move(r));
}

void stream(api_core& a, std::shared_ptr<call> c) {
  if (!c->req.origin.empty() && !same_origin(a, c))
    return;
  console_hub::filter f;
  f.events = c->query["events"] == "1";
  f.snapshots = c->query.contains("snapshots") ? c->query["snapshots"] != "0" : !f.events;
  f.tenant_id = c->query["tenant"].substr(0, 64);
  f.type = c->query["type"].substr(0, 64);
  std::int64_t after = -1;
  if (!a.int_param<std::int64_t>(c, "after", 0, INT64_MAX, after))
    return;
  if (auto last = parse_int<std::int64_t>(c->req.last_event_id); last && *last >= 0)
    after = *last; // an EventSource reconnecting: resume after the last event it saw
  if (after >= 0)
    f.after = after;
  if (a.hub->subscribers() >= max_streams) {
    auto r =
      api::problem(503, "overloaded", "Too many console streams",
                   "this node serves at most " + std::to_string(max_streams) + " console streams", c->req.request_id);
    r.headers.emplace_back("Retry-After", "5");
    c->respond(std::move(r));
    return;
  }
  api_response r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = a.hub->subscribe(std::move(f));
  c->respond(std::move(r));
}

} // namespace

void add_console_routes(router& r) {
  r.add("POST", "/console/session", std::nullopt, open_session);
  r.add("GET", "/console/session", std::nullopt, session_info);
  r.add("DELETE", "/console/session", std::nullopt, close_session);
  r.add("GET", "/v1/admin/stream", permission::observe, stream);
}

} // namespace colony::adapters::http
