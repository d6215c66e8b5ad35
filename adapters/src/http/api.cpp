// The API facade: a request in, through the pipeline (CORS, fault injection,
// routing, authentication, platform check or tenant scope, Idempotency-Key)
// to its route group's handler; the answer out with the refusal audit and
// the CORS headers. The steps live in pipeline/, the handlers in routes/.
#include "api.hpp"
#include "core.hpp"
#include "console.hpp"
#include "params.hpp"
#include "pipeline/cors.hpp"
#include "pipeline/fault_injection.hpp"

#include <caf/all.hpp>

#include "colony/protocol/problem.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "routes/groups.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;

namespace {

// Bodies up to this size are checked and parsed on the io thread that read
// them: well under a millisecond (measured: check_json ~120 MB/s, protobuf's
// parser ~30 MB/s on a document that passed it); larger ones on a body worker.
constexpr std::size_t inline_body_limit = 16 * 1024;

} // namespace

void api_core::dispatch(std::shared_ptr<call> c) {
  std::string_view target = c->req.target;
  auto qpos = target.find('?');
  auto path = target.substr(0, qpos);
  if (qpos != std::string_view::npos)
    c->query = parse_query(target.substr(qpos + 1));
  if (serve_console_page(c, path))
    return;
  auto segs = split_path(path);
  std::vector<std::string> methods; // of routes whose path matches, for 405
  if (const auto* r = routes.match(c->req.method, segs, methods)) {
    // The parameters only of the route taken (building them for every
    // candidate cost ~20 allocations per request).
    for (std::size_t i = 0; i < segs.size() && i < r->segs.size(); ++i)
      if (r->tail && i + 1 == r->segs.size()) { // the rest of the path
        auto& rest = c->path[r->segs[i].substr(1, r->segs[i].size() - 2)];
        for (std::size_t j = i; j < segs.size(); ++j)
          rest += (j == i ? "" : "/") + segs[j];
      } else if (is_param(r->segs[i]))
        c->path[r->segs[i].substr(1, r->segs[i].size() - 2)] = std::move(segs[i]);
    c->route = r->path;
    auto fn = r->fn;
    bool open = !r->perm || std::find(ctx.open_paths.begin(), ctx.open_paths.end(), r->path) != ctx.open_paths.end();
    if (open) {
      fn(*this, c);
      return;
    }
    c->perm = *r->perm;
    authenticate(c, [this, c, fn] {
      // Platform routes are decided here; tenant routes once the tenant is
      // known (with_tenant), but a tenant id in the path that is not the
      // caller's is refused before the body is even looked at.
      if (c->perm == permission::platform || c->perm == permission::observe || c->perm == permission::operate ||
          c->perm == permission::catalog) {
        if (access::authorize(c->who, c->perm, {}) != decision::allow) {
          const char* who = c->perm == permission::platform ? "a platform administrator"
            : c->perm == permission::observe                ? "a platform administrator or operator"
            : c->perm == permission::catalog                ? "a platform administrator or a tenant's owner or admin"
                                                            : "a platform operator (role platform_operator)";
          forbidden(c, std::string{"only "} + who + " may " + c->req.method + " " + c->route);
          return;
        }
      } else if (auto raw = c->path["tenantId"]; protocol::is_uuid(raw)) {
        if (!allowed(c, normalize_email(raw), "no tenant with id " + normalize_email(raw)))
          return;
      }
      if (c->req.method == "POST" && !c->req.idempotency_key.empty()) {
        with_idempotency(c, [this, c, fn] { fn(*this, c); });
        return;
      }
      fn(*this, c);
    });
    return;
  }
  if (!methods.empty()) {
    std::string allow;
    for (const auto& m : methods)
      allow += (allow.empty() ? "" : ", ") + m;
    auto resp = api::problem(405, "method-not-allowed", "Method not allowed",
                             c->req.method + " is not allowed here; use " + allow, c->req.request_id);
    resp.headers.emplace_back("Allow", allow);
    c->respond(std::move(resp));
    return;
  }
  fail(c, 404, "not-found", "Not found", "no route for " + std::string{path.substr(0, 200)});
}

struct api::impl : api_core {
  using api_core::api_core;
};

api::api(caf::actor_system& sys, const http_options& opts, api_context ctx)
  : impl_(std::make_unique<impl>(sys, opts, std::move(ctx))) {
  impl_->draining = &draining_;
}

api::~api() = default;

void api::set_bound_port(std::uint16_t port) { impl_->opts.port = port; }

void api::flush(std::chrono::milliseconds timeout) {
  impl_->meter->flush_now(timeout);
  impl_->audit->flush_now(timeout);
}

void api::stop(std::chrono::milliseconds timeout) { impl_->bridges.stop(timeout); }

void api::handle(api_request req, responder done) {
  if (auto preflight = cors_preflight(req, impl_->routes, impl_->opts.cors_origins)) {
    done(std::move(*preflight));
    return;
  }
  if (impl_->opts.fault_injection)
    inject_faults(req, done);
  bool cors_ok = !req.origin.empty() && origin_allowed(impl_->opts.cors_origins, req.origin);
  auto c = std::make_shared<call>();
  c->req = std::move(req);
  // The call owns this callback, so the raw pointer lives as long as it.
  c->done = [done = std::move(done), cors_origin = cors_ok ? c->req.origin : std::string{}, self = c.get(),
             core = static_cast<api_core*>(impl_.get())](api_response r) {
    core->audit_answer(*self, r);
    core->traffic.count(self->who.tenant_id, r.status, r.problem_type, tenant_traffic::clock::now());
    if (!cors_origin.empty())
      add_cors_headers(r, cors_origin);
    done(std::move(r));
  };
  api_core* core = impl_.get();
  if (c->req.body.size() > inline_body_limit) {
    core->bridges.post_blocking(c, [core, c](caf::event_based_actor*) { core->dispatch(c); });
    return;
  }
  guarded(c, [&] { core->dispatch(c); });
}

api_response api::problem(int status, std::string_view type, std::string_view title, std::string_view detail,
                          const std::string& request_id) {
  auto p = protocol::problem_of(status, type, title, detail, request_id);
  api_response r;
  r.status = p.status;
  r.content_type = "application/problem+json";
  r.body = std::move(p.body);
  r.problem_type = std::string{type};
  return r;
}

api_response api::failure_response(const failure& f, const std::string& request_id) {
  auto p = protocol::problem_of(f, request_id);
  api_response r;
  r.status = p.status;
  r.content_type = "application/problem+json";
  r.body = std::move(p.body);
  r.problem_type = std::string{protocol::kind_of(f.code).type};
  if (p.retry_after)
    r.headers.emplace_back("Retry-After", "1");
  return r;
}

std::vector<route_info> api::routes() {
  router r;
  add_all_routes(r);
  std::vector<route_info> out;
  for (const auto& x : r.routes())
    out.push_back(route_info{x.method, x.path});
  return out;
}

} // namespace colony::adapters::http

namespace colony::adapters {
std::vector<route_info> api_routes() { return http::api::routes(); }
} // namespace colony::adapters
