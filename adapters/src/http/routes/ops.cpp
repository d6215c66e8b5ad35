#include "groups.hpp"
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

namespace {

void livez(api_core&, std::shared_ptr<call> c) {
  auto r = json(200, "ok\n");
  r.content_type = "text/plain; charset=utf-8";
  c->respond(std::move(r));
}

void readyz(api_core& a, std::shared_ptr<call> c) {
  bool verbose = c->query.contains("verbose");
  bool draining_now = a.draining->load();
  auto store = a.ctx.store;
  std::string lines; // the modules' own (events relay, ...); a '-' line makes the node not ready
  bool blocked = false;
  if (a.ctx.readiness)
    for (const auto& l : a.ctx.readiness->lines()) {
      lines += std::string{"["} + l.mark + "]" + l.text + "\n";
      blocked = blocked || l.mark == '-';
    }
  a.bridges.post(c, [c, verbose, draining_now, blocked, store, lines](caf::event_based_actor* self) {
    auto answer = [c, verbose, draining_now, blocked, lines](bool store_ok, const std::string& detail) {
      bool ready = store_ok && !draining_now && !blocked;
      api_response r;
      r.status = ready ? 200 : 503;
      r.content_type = "text/plain; charset=utf-8";
      if (!ready)
        r.headers.emplace_back("Retry-After", "1");
      if (verbose) {
        r.body += (store_ok ? "[+]store " : "[-]store ") + detail + "\n";
        r.body += draining_now ? "[-]shutdown: draining in-flight requests\n" : "[+]shutdown: not shutting down\n";
        r.body += lines;
        r.body += ready ? "readyz check passed\n" : "readyz check failed\n";
      } else {
        r.body = ready ? "ok\n" : "not ready\n";
      }
      c->respond(std::move(r));
    };
    bridge_pool::request<store_health>(
      self, c, store, std::chrono::seconds(2), [answer](store_health& h) { answer(h.ready, h.detail); },
      [answer](const caf::error&) { answer(false, "the store actor did not answer"); }, health_atom::value);
  });
}

void metrics(api_core& a, std::shared_ptr<call> c) {
  auto r = json(200, a.ctx.metrics ? a.ctx.metrics->render() : std::string{});
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  c->respond(std::move(r));
}

void openapi(api_core&, std::shared_ptr<call> c) { c->respond(json(200, openapi_document())); }

} // namespace

void add_ops_routes(router& r) {
  using p = permission;
  r.add("GET", "/livez", p::platform, livez);
  r.add("GET", "/readyz", p::platform, readyz);
  r.add("GET", "/metrics", p::platform, metrics);
  r.add("GET", "/openapi.json", p::platform, openapi);
}

} // namespace colony::adapters::http
