#include "api.hpp"
#include "audit_trail.hpp"
#include "metering.hpp"
#include "rate_limiter.hpp"

#include "../billing/stripe.hpp"
#include "colony/adapters/webhooks.hpp"
#include <openssl/rand.h>

#include <algorithm>
#include <caf/all.hpp>
#include <charconv>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <nlohmann/json.hpp>
#include <random>

#include "colony/actors/access/access_model.hpp"
#include "colony/actors/entities.hpp"
#include "colony/actors/user/user_model.hpp"
#include "colony/protocol/base64url.hpp"
#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"
#include <google/protobuf/util/time_util.h>

namespace colony::adapters::http {

namespace {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;
using protocol::base64url_decode;
using protocol::base64url_encode;

/// A unit of work run inside a bridge actor, so that Asio threads can start
/// actor requests without blocking and get the answer through a callback.
struct bridge_job {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace
} // namespace colony::adapters::http

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::adapters::http::bridge_job)

namespace colony::adapters::http {
namespace {

constexpr std::string_view problem_base = "https://colony.dev/problems/";
// Bodies up to this size are checked and parsed on the io thread that read
// them: well under a millisecond (measured: check_json ~120 MB/s, protobuf's
// parser ~30 MB/s on a document that passed it); larger ones on a body worker.
constexpr std::size_t inline_body_limit = 16 * 1024;
// Answers may quote client text that is not UTF-8 (a path, a parameter):
// such bytes become U+FFFD instead of making the JSON encoder throw.
constexpr auto replace_invalid = nlohmann::json::error_handler_t::replace;

std::string pct_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc{} && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
      out += c;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segs;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    segs.push_back(pct_decode(path.substr(i, j - i), false));
    i = j;
  }
  return segs;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    auto j = q.find('&', i);
    if (j == std::string_view::npos)
      j = q.size();
    auto part = q.substr(i, j - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      auto key = pct_decode(part.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::string{} : pct_decode(part.substr(eq + 1), true);
      out[key] = value; // last one wins
    }
    if (j == q.size())
      break;
    i = j + 1;
  }
  return out;
}

/// The value of parameter `name` in the parameters of a media type
/// ("; charset=UTF-8; x=y"), lower-cased and unquoted; nullopt when absent.
std::optional<std::string> media_type_param(std::string_view params, std::string_view name) {
  std::size_t i = 0;
  while (i < params.size()) {
    auto semi = params.find(';', i);
    auto part = params.substr(i, semi == std::string_view::npos ? std::string_view::npos : semi - i);
    i = semi == std::string_view::npos ? params.size() : semi + 1;
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
      return v;
    };
    auto key = trim(part.substr(0, eq));
    auto value = trim(part.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    std::string k{key}, v{value};
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char ch) { return std::tolower(ch); });
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (k == name)
      return v;
  }
  return std::nullopt;
}

struct call {
  api_request req;
  responder done;
  std::map<std::string, std::string> path;
  std::map<std::string, std::string> query;
  std::string route = "unmatched";
  principal who;                     // set unless the route is open
  permission perm = permission::platform;
  std::vector<std::pair<std::string, std::string>> rate_headers; // RateLimit-Policy, RateLimit
  std::string tenant_id; // the tenant the caller was allowed into (for the audit log)
  bool hidden = false;   // refused as another tenant's resource (404)
  std::string idem_scope; // Idempotency-Key taken for this request: its changes mark it committed
  // Runs before the answer leaves (Idempotency-Key: store it first), then
  // calls `send` with it; set once, taken by the first answer.
  std::function<void(api_response, std::function<void(api_response)>)> before_answer;

  void respond(api_response r) {
    // status < 0: "answered elsewhere" (a continuation answers), no answer.
    if (r.status >= 0 && before_answer) {
      auto hook = std::exchange(before_answer, nullptr);
      hook(std::move(r), [this](api_response a) { send_answer(std::move(a)); });
      return;
    }
    send_answer(std::move(r));
  }

  void send_answer(api_response r) {
    r.route = route;
    for (auto& h : rate_headers)
      r.headers.push_back(h);
    done(std::move(r));
  }
};

/// A bridge runs jobs for the Asio threads and keeps the deadlines of the
/// entity commands it sent. Commands go without a CAF request timeout: in
/// CAF 0.17 each one is an entry in the clock's maps, taken under the
/// clock's mutex, that outlives the answer and comes back as a stale timeout
/// message when it expires (a clock insertion and an extra message per
/// request). The bridge instead keeps its waiting calls in a map and looks
/// at them every quarter of the timeout (at most 250 ms); a call past its
/// deadline is answered 503 and its late answer, if any, is dropped.
struct bridge_state {
  struct waiting {
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<call> c;
  };
  std::unordered_map<std::uint64_t, waiting> calls;
  std::uint64_t next_id = 0;
  bool ticking = false;
  std::chrono::milliseconds period{250};
  static inline const char* name = "colony.http.bridge";
};
using bridge_actor = caf::stateful_actor<bridge_state>;

/// Registers `c` until its answer or its deadline; returns the id to forget it by.
std::uint64_t watch(bridge_actor* self, const std::shared_ptr<call>& c, std::chrono::milliseconds timeout) {
  auto& st = self->state;
  auto id = st.next_id++;
  st.calls.emplace(id, bridge_state::waiting{std::chrono::steady_clock::now() + timeout, c});
  if (!st.ticking) {
    st.ticking = true;
    st.period = std::clamp(timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
    self->delayed_send(self, st.period, tick_atom::value);
  }
  return id;
}

/// True if the call was still waiting (its answer is due now), false if its
/// deadline already answered it.
bool unwatch(bridge_actor* self, std::uint64_t id) {
  return self->state.calls.erase(id) > 0;
}

// The index argument is not used; CAF 0.17 spawns a function actor without
// arguments by dereferencing a null std::shared_ptr<std::tuple<>> (harmless,
// but undefined behaviour that UBSan rightly reports), so every spawned
// function here takes at least one.
caf::behavior bridge(bridge_actor* self, int /*index*/) {
  self->set_default_handler(caf::drop);
  return {
    [self](bridge_job& job) { job.run(self); },
    [self](tick_atom) {
      auto& st = self->state;
      auto now = std::chrono::steady_clock::now();
      std::vector<std::shared_ptr<call>> late;
      for (auto it = st.calls.begin(); it != st.calls.end();) {
        if (it->second.deadline <= now) {
          late.push_back(std::move(it->second.c));
          it = st.calls.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& c : late)
        c->respond(api::failure_response(failure_from(caf::sec::request_timeout), c->req.request_id));
      st.ticking = !st.calls.empty();
      if (st.ticking)
        self->delayed_send(self, st.period, tick_atom::value);
    },
  };
}

} // namespace

struct api::impl {
  caf::actor_system& sys;
  http_options opts;
  api_context ctx;
  std::vector<caf::actor> bridges;
  std::atomic<std::size_t> next_bridge{0};
  // Requests with bodies over inline_body_limit are routed, checked and
  // parsed here instead of on an io thread (each on its own thread: a
  // megabyte of JSON takes milliseconds, which no other connection waits for).
  std::vector<caf::actor> body_workers;
  std::atomic<std::size_t> next_body_worker{0};
  const std::atomic<bool>* draining = nullptr;

  struct route {
    std::string method;
    std::string path;
    std::vector<std::string> segs;
    void (impl::*fn)(std::shared_ptr<call>);
    std::optional<permission> perm; // nullopt: open (no credentials)
  };
  struct cached_key {
    api_key_row row;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex keys_mu;
  std::unordered_map<std::string, cached_key> keys; // API key id → row, for api_key_cache_ttl
  std::atomic<std::uint64_t> revocations{0};        // a lookup that raced a revocation is not cached
  rate_limiter limiter;
  std::unique_ptr<api_meter> meter;
  std::unique_ptr<audit_trail> audit;
  struct cached_plan {
    std::string plan;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex plans_mu;
  std::unordered_map<std::string, cached_plan> tenant_plans; // tenant id → plan, for rate limits
  std::vector<route> routes;

  impl(caf::actor_system& s, const http_options& o, api_context c)
    : sys(s), opts(o), ctx(std::move(c)), routes(make_routes()) {
    meter = std::make_unique<api_meter>(s, ctx.store, ctx.metering_interval);
    audit = std::make_unique<audit_trail>(s, ctx.store, std::chrono::milliseconds(200));
    int n = std::max(1, o.threads);
    for (int i = 0; i < n; ++i)
      bridges.push_back(sys.spawn(bridge, i));
    for (int i = 0; i < 2; ++i)
      body_workers.push_back(sys.spawn<caf::detached>(bridge, i));
  }

  /// The route table: the single source for the router and for api_routes().
  static std::vector<route> make_routes() {
    std::vector<route> routes;
    auto add = [&routes](std::string method, std::string path, void (impl::*fn)(std::shared_ptr<call>),
                         std::optional<permission> perm) {
      auto segs = split_path(path);
      routes.push_back(route{std::move(method), std::move(path), std::move(segs), fn, perm});
    };
    using p = permission;
    // Operational routes need platform_admin unless listed in open_paths
    // (auth.open-routes); the Stripe webhook is open: its signature is its credential.
    add("GET", "/livez", &impl::livez, p::platform);
    add("GET", "/readyz", &impl::readyz, p::platform);
    add("GET", "/metrics", &impl::metrics, p::platform);
    add("GET", "/openapi.json", &impl::openapi, p::platform);
    add("POST", "/v1/tenants", &impl::create_tenant, p::platform);
    add("GET", "/v1/tenants", &impl::list_tenants, p::platform);
    add("GET", "/v1/tenants/{tenantId}", &impl::get_tenant, p::tenant_read);
    add("PATCH", "/v1/tenants/{tenantId}", &impl::patch_tenant, p::manage);
    add("POST", "/v1/tenants/{tenantId}/activate", &impl::activate_tenant, p::platform);
    add("POST", "/v1/tenants/{tenantId}/suspend", &impl::suspend_tenant, p::platform);
    add("POST", "/v1/tenants/{tenantId}/cancel", &impl::cancel_tenant, p::own);
    add("GET", "/v1/tenants/{tenantId}/usage", &impl::tenant_usage, p::tenant_inspect);
    add("POST", "/v1/tenants/{tenantId}/users", &impl::create_user, p::manage);
    add("GET", "/v1/tenants/{tenantId}/users", &impl::list_users, p::users_read);
    add("GET", "/v1/tenants/{tenantId}/users/{userId}", &impl::get_user, p::users_read);
    add("PATCH", "/v1/tenants/{tenantId}/users/{userId}", &impl::patch_user, p::self_write);
    add("DELETE", "/v1/tenants/{tenantId}/users/{userId}", &impl::delete_user, p::manage);
    add("GET", "/v1/events", &impl::list_events, p::platform);
    add("POST", "/v1/billing/webhooks/stripe", &impl::stripe_webhook, std::nullopt);
    add("POST", "/v1/tenants/{tenantId}/webhooks", &impl::create_webhook, p::manage);
    add("GET", "/v1/tenants/{tenantId}/webhooks", &impl::list_webhooks, p::tenant_inspect);
    add("GET", "/v1/tenants/{tenantId}/webhooks/{webhookId}", &impl::get_webhook, p::tenant_inspect);
    add("DELETE", "/v1/tenants/{tenantId}/webhooks/{webhookId}", &impl::delete_webhook, p::manage);
    add("GET", "/v1/tenants/{tenantId}/webhooks/{webhookId}/deliveries", &impl::list_deliveries, p::tenant_inspect);
    add("GET", "/v1/tenants/{tenantId}/events", &impl::list_tenant_events, p::tenant_inspect);
    add("POST", "/v1/tenants/{tenantId}/api-keys", &impl::create_api_key, p::manage);
    add("GET", "/v1/tenants/{tenantId}/api-keys", &impl::list_api_keys, p::manage);
    add("DELETE", "/v1/tenants/{tenantId}/api-keys/{keyId}", &impl::revoke_api_key, p::manage);
    add("GET", "/v1/tenants/{tenantId}/audit-log", &impl::tenant_audit_log, p::manage);
    add("GET", "/v1/tenants/{tenantId}/users/{userId}/export", &impl::export_user, p::self_write);
    add("GET", "/v1/audit-log", &impl::platform_audit_log, p::platform);
    return routes;
  }

  ~impl() {
    for (auto& b : bridges)
      caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    for (auto& b : body_workers)
      caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  }

  // -- plumbing --------------------------------------------------------------

  /// Runs `job` on a body worker (its own thread): for work that may take
  /// milliseconds or block (large bodies, DNS), never on an io thread.
  void post_blocking(std::function<void(caf::event_based_actor*)> job) {
    auto& w = body_workers[next_body_worker.fetch_add(1, std::memory_order_relaxed) % body_workers.size()];
    caf::anon_send(w, bridge_job{std::move(job)});
  }

  void post(std::function<void(caf::event_based_actor*)> job) {
    auto& b = bridges[next_bridge.fetch_add(1, std::memory_order_relaxed) % bridges.size()];
    caf::anon_send(b, bridge_job{std::move(job)});
  }

  static api_response json(int status, std::string body) {
    api_response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

  static api_response entity_response(const entity_reply& r, int status) {
    auto resp = json(status, r.entity ? protocol::to_json(*r.entity) : protocol::bytes_to_json(r.type, *r.bytes));
    resp.headers.emplace_back("ETag", "\"" + std::to_string(r.version) + "\"");
    return resp;
  }

  void fail(const std::shared_ptr<call>& c, int status, std::string_view type, std::string_view title,
            std::string detail) {
    c->respond(api::problem(status, type, title, detail, c->req.request_id));
  }

  void invalid_param(const std::shared_ptr<call>& c, const std::string& name, const std::string& message) {
    auto r = api::problem(400, "invalid-parameter", "Invalid query parameter", name + ": " + message, c->req.request_id);
    auto doc = nlohmann::json::parse(r.body);
    doc["errors"] = nlohmann::json::array({{{"field", name}, {"message", message}}});
    r.body = doc.dump(-1, ' ', false, replace_invalid);
    c->respond(std::move(r));
  }

  /// Sends a command to an entity and answers with `ok` or the failure.
  void send(const std::shared_ptr<call>& c, entity_key key, command cmd,
            std::function<api_response(entity_reply&)> ok) {
    cmd.meta.request_id = c->req.request_id;
    cmd.meta.traceparent = c->req.traceparent;
    if (cmd.what != op::get && cmd.what != op::usage) { // changes are audited with their commit
      cmd.meta.actor = c->who.credential.empty() ? std::string{"anonymous"} : c->who.credential;
      cmd.meta.client = c->req.client_addr;
    }
    if (!c->idem_scope.empty() && cmd.what != op::get && cmd.what != op::usage) {
      cmd.meta.idempotency_scope = c->idem_scope;
      if (cmd.meta.message_key.empty())
        cmd.meta.message_key = "idem:" + c->idem_scope; // a late first attempt and its retry cannot both apply
    }
    cmd.inject_crash = opts.fault_injection && c->req.fault == "crash";
    if (opts.fault_injection && c->req.fault.starts_with("stall="))
      cmd.inject_stall_ms = std::atoi(c->req.fault.c_str() + 6);
    auto timeout = opts.request_timeout;
    post([c, key = std::move(key), cmd = std::move(cmd), ok = std::move(ok), timeout,
          entities = ctx.entities](caf::event_based_actor* self) mutable {
      auto target = entities->route(key);
      if (!target) {
        c->respond(api::failure_response(actors::fail(errc::unavailable, "the node is shutting down"), c->req.request_id));
        return;
      }
      auto* b = static_cast<bridge_actor*>(self); // jobs run only in bridges
      auto id = watch(b, c, timeout);
      self->request(target, caf::infinite, std::move(cmd))
        .then(
          [b, id, c, ok](entity_reply& r) {
            if (!unwatch(b, id))
              return;
            if (r.error)
              c->respond(api::failure_response(*r.error, c->req.request_id));
            else
              c->respond(ok(r));
          },
          [b, id, c](caf::error& err) {
            if (unwatch(b, id))
              c->respond(api::failure_response(failure_from(err), c->req.request_id));
          });
    });
  }

  /// Answers 404 or 403 unless the caller may use the route on tenant `id`.
  /// Another tenant's resource is a 404 worded exactly like a tenant that
  /// does not exist, so that no caller learns which tenants exist.
  bool allowed(const std::shared_ptr<call>& c, const std::string& id, const std::string& shown_as) {
    auto uid = c->path.contains("userId") ? normalize_email(c->path["userId"]) : std::string{};
    switch (access::authorize(c->who, c->perm, id, uid)) {
      case decision::allow:
        c->tenant_id = id;
        return true;
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

  void forbidden(const std::shared_ptr<call>& c, std::string detail) {
    log::info("permission denied", {{"request_id", c->req.request_id}, {"credential", c->who.credential},
                                    {"route", c->route}, {"method", c->req.method}});
    fail(c, 403, "forbidden", "Forbidden", std::move(detail));
  }

  // -- rate limits -------------------------------------------------------------

  /// Runs `next` if the tenant's bucket and the credential's bucket (sized by
  /// the tenant's plan) each give a token; 429 otherwise. Either way the
  /// answer carries RateLimit-Policy and RateLimit (IETF draft
  /// httpapi-ratelimit-headers). Platform credentials are not limited here:
  /// they are the operator's, and must not eat a tenant's budget.
  void rate_limited(const std::shared_ptr<call>& c, const std::string& tid, std::function<void()> next) {
    if (c->who.tenant_id.empty()) {
      next();
      return;
    }
    with_plan(c, tid, [this, c, next](const std::string& plan) {
      auto it = ctx.rules.plans.find(plan);
      if (it == ctx.rules.plans.end() || !it->second.requests_per_second) {
        metered(c, c->who.tenant_id, plan, next, true);
        return;
      }
      double rate = *it->second.requests_per_second;
      double burst = std::max(1.0, static_cast<double>(it->second.burst.value_or(*it->second.requests_per_second)));
      if (rate <= 0) {
        fail(c, 429, "rate-limited", "Too many requests", "the plan '" + plan + "' allows no API calls");
        return;
      }
      double share = ctx.credential_rate_percent / 100.0;
      double crate = std::max(0.1, rate * share), cburst = std::max(1.0, std::floor(burst * share));
      auto now = rate_limiter::clock::now();
      auto t = limiter.take("t:" + c->who.tenant_id, rate, burst, now);
      auto k = limiter.take("c:" + c->who.credential, crate, cburst, now);
      auto window = [](double b, double r) { return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(b / r))); };
      c->rate_headers = {
        {"RateLimit-Policy", "\"tenant\";q=" + std::to_string(static_cast<std::int64_t>(burst)) + ";w=" +
                               std::to_string(window(burst, rate)) + ", \"credential\";q=" +
                               std::to_string(static_cast<std::int64_t>(cburst)) + ";w=" + std::to_string(window(cburst, crate))},
        {"RateLimit", "\"tenant\";r=" + std::to_string(t.remaining) + ";t=" + std::to_string(t.reset_s) +
                        ", \"credential\";r=" + std::to_string(k.remaining) + ";t=" + std::to_string(k.reset_s)}};
      if (t.allowed && k.allowed) {
        metered(c, c->who.tenant_id, plan, next, true);
        return;
      }
      auto retry = std::max(t.allowed ? 0 : t.retry_after_s, k.allowed ? 0 : k.retry_after_s);
      auto r = api::problem(429, "rate-limited", "Too many requests",
                            std::string{"over the "} + (t.allowed ? "credential's" : "tenant's") +
                              " request rate of the plan '" + plan + "'; retry after " + std::to_string(retry) + " s",
                            c->req.request_id);
      r.headers.emplace_back("Retry-After", std::to_string(retry));
      c->respond(std::move(r));
    });
  }

  /// Counts the call against the tenant's apiCallsPerMonth (no store write
  /// here: the meter flushes counts in batches); 429 quota-exceeded once the
  /// month's calls reach the plan's limit.
  void metered(const std::shared_ptr<call>& c, const std::string& tid, const std::string& plan,
               std::function<void()> next, bool first_try) {
    std::optional<std::int64_t> limit;
    if (auto it = ctx.rules.plans.find(plan); it != ctx.rules.plans.end() && it->second.api_calls_per_month)
      limit = *it->second.api_calls_per_month;
    auto now = protocol::now_us();
    auto month = month_of(now);
    switch (meter->count(tid, month, limit)) {
      case api_meter::verdict::counted: next(); return;
      case api_meter::verdict::over_quota: {
        auto wait = seconds_to_next_month(now);
        auto r = api::problem(429, "quota-exceeded", "Monthly API quota exceeded",
                              "the plan '" + plan + "' allows " + std::to_string(limit.value_or(0)) +
                                " API calls per month; they are used up until the month ends",
                              c->req.request_id);
        auto doc = nlohmann::json::parse(r.body);
        doc["limit"] = limit.value_or(0);
        r.body = doc.dump(-1, ' ', false, replace_invalid);
        r.headers.emplace_back("Retry-After", std::to_string(wait));
        c->respond(std::move(r));
        return;
      }
      case api_meter::verdict::unknown:
        if (!first_try) { // cannot happen unless the month turned in between: do not block the call
          next();
          return;
        }
        load_usage(c, tid, month, [this, c, tid, plan, next] { metered(c, tid, plan, next, false); });
        return;
    }
  }

  /// Reads the tenant's stored API calls of `month` into the meter.
  void load_usage(const std::shared_ptr<call>& c, const std::string& tid, const std::string& month,
                  std::function<void()> next) {
    api_usage_op op;
    op.rows.push_back(api_usage_row{tid, month, 0});
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([this, c, op = std::move(op), store, timeout, next](caf::event_based_actor* self) mutable {
      self->request(store, timeout, usage_atom::value, std::move(op))
        .then(
          [this, c, next](api_usage_result& r) {
            if (r.status != store_status::ok || r.rows.empty()) {
              c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                               c->req.request_id));
              return;
            }
            meter->loaded(r.rows.front().tenant_id, r.rows.front().month, r.rows.front().calls);
            next();
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  /// The tenant's plan, cached for 30 s (a plan change applies within that).
  void with_plan(const std::shared_ptr<call>& c, const std::string& tid, std::function<void(const std::string&)> next) {
    std::optional<std::string> cached;
    {
      std::lock_guard lock{plans_mu};
      if (auto it = tenant_plans.find(tid);
          it != tenant_plans.end() && std::chrono::steady_clock::now() - it->second.fetched < std::chrono::seconds(30))
        cached = it->second.plan;
    }
    if (cached) {
      next(*cached);
      return;
    }
    command cmd;
    cmd.what = op::get;
    send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [this, tid, next](entity_reply& r) {
      v1::Tenant parsed;
      if (!r.entity && r.bytes)
        parsed.ParseFromString(*r.bytes);
      auto plan = r.entity ? static_cast<const v1::Tenant&>(*r.entity).plan() : parsed.plan();
      {
        std::lock_guard lock{plans_mu};
        if (tenant_plans.size() >= 100'000)
          tenant_plans.clear();
        tenant_plans[tid] = cached_plan{plan, std::chrono::steady_clock::now()};
      }
      next(plan);
      return api_response{-1, {}, {}, {}, {}}; // answered by next
    });
  }

  /// Resolves {tenantId} (a UUID as is, or a slug through the store) and
  /// checks that the caller may use the route on that tenant.
  void with_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next) {
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
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([this, c, raw, next = std::move(next), store, timeout](caf::event_based_actor* self) {
      self->request(store, timeout, resolve_atom::value, raw)
        .then(
          [this, c, raw, next](std::string& id) {
            if (id.empty())
              fail(c, 404, "not-found", "Not found", "no tenant with slug '" + raw + "'");
            else if (allowed(c, id, "no tenant with slug '" + raw + "'"))
              rate_limited(c, id, [next, id] { next(id); });
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  std::optional<std::string> user_id(const std::shared_ptr<call>& c) {
    auto raw = c->path["userId"];
    if (!protocol::is_uuid(raw)) {
      fail(c, 400, "invalid-id", "Invalid user id", "'" + raw.substr(0, 64) + "' is not a user id (UUID)");
      return std::nullopt;
    }
    return normalize_email(raw);
  }

  /// The gate of every JSON body the API takes (docs/api.md, "Request
  /// bodies"): the media type (application/json, or merge-patch with
  /// `merge`; a charset other than UTF-8 is 415), then protocol::check_json,
  /// linear in the size, before any parser sees the body: too deep, too many
  /// values, a duplicate key or bad syntax are a 400 naming the limit.
  bool check_json_body(const std::shared_ptr<call>& c, bool merge, bool optional_body) {
    if (optional_body && c->req.body.empty())
      return true;
    auto ct = c->req.content_type;
    auto semi = ct.find(';');
    auto mt = normalize_email(ct.substr(0, semi));
    while (!mt.empty() && mt.back() == ' ')
      mt.pop_back();
    if (mt != "application/json" && !(merge && mt == "application/merge-patch+json")) {
      fail(c, 415, "unsupported-media-type", "Unsupported media type",
           std::string{"send the body as application/json"} + (merge ? " or application/merge-patch+json" : "") +
             (ct.empty() ? " (no Content-Type was given)" : " (got '" + ct.substr(0, 100) + "')"));
      return false;
    }
    if (semi != std::string::npos) {
      auto charset = media_type_param(std::string_view{ct}.substr(semi), "charset");
      if (charset && *charset != "utf-8" && *charset != "utf8") {
        fail(c, 415, "unsupported-media-type", "Unsupported media type",
             "JSON bodies are UTF-8 (RFC 8259); send charset=utf-8 or no charset");
        return false;
      }
    }
    if (auto err = protocol::check_json(c->req.body, true)) {
      failure f = actors::fail(errc::malformed, err->field.empty() ? err->message : err->field + ": " + err->message);
      f.errors.push_back(*err);
      if (err->kind == protocol::json_error::too_deep)
        f.numbers.emplace_back("maxDepth", static_cast<std::int64_t>(protocol::json_limits{}.max_depth));
      if (err->kind == protocol::json_error::too_many_values)
        f.numbers.emplace_back("maxValues", static_cast<std::int64_t>(protocol::json_limits{}.max_values));
      c->respond(api::failure_response(f, c->req.request_id));
      return false;
    }
    return true;
  }

  bool parse_body(const std::shared_ptr<call>& c, google::protobuf::Message& msg) {
    if (auto err = protocol::from_json(c->req.body, msg)) {
      failure f = actors::fail(errc::malformed, err->field.empty() ? err->message : err->field + ": " + err->message);
      f.errors.push_back(*err);
      c->respond(api::failure_response(f, c->req.request_id));
      return false;
    }
    return true;
  }

  /// If-Match (RFC 9110 13.1.1): empty or "*" is no condition; otherwise
  /// the list of versions any of which may match, with strong comparison:
  /// a weak tag (W/"3") or one that is not ours never matches, so a header
  /// with nothing usable is {0} (version 0 never exists: 412).
  std::vector<std::uint32_t> if_match(const std::shared_ptr<call>& c) {
    const auto& v = c->req.if_match;
    if (v.find_first_not_of(" \t") == std::string::npos || v.find_first_not_of(" \t*") == std::string::npos)
      return {};
    auto tags = entity_tags(v);
    std::vector<std::uint32_t> out;
    for (const auto& [weak, version] : tags)
      if (!weak && version)
        out.push_back(*version);
    if (out.empty())
      out.push_back(0);
    return out;
  }

  /// The entity tags of an If-Match / If-None-Match list: (weak, version),
  /// version nullopt for a tag that is not one of ours.
  static std::vector<std::pair<bool, std::optional<std::uint32_t>>> entity_tags(std::string_view v) {
    std::vector<std::pair<bool, std::optional<std::uint32_t>>> out;
    std::size_t i = 0;
    while (i < v.size() && out.size() < 64) {
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
        ++i;
      if (i >= v.size())
        break;
      bool weak = v.substr(i, 2) == "W/";
      if (weak)
        i += 2;
      std::optional<std::uint32_t> version;
      if (i < v.size() && v[i] == '"') {
        auto close = v.find('"', i + 1);
        if (close == std::string_view::npos)
          break;
        auto inner = v.substr(i + 1, close - i - 1);
        std::uint32_t n = 0;
        auto [p, ec] = std::from_chars(inner.data(), inner.data() + inner.size(), n);
        if (ec == std::errc{} && p == inner.data() + inner.size() && !inner.empty())
          version = n;
        i = close + 1;
      } else {
        auto comma = v.find(',', i);
        i = comma == std::string_view::npos ? v.size() : comma;
      }
      out.emplace_back(weak, version);
    }
    return out;
  }

  /// If-None-Match on a read (RFC 9110 13.1.2, weak comparison): true if
  /// the entity at `version` matches, so the answer is 304.
  static bool none_match_hits(const std::string& header, std::uint32_t version) {
    if (header.find_first_not_of(" \t") == std::string::npos)
      return false;
    if (header.find_first_not_of(" \t*") == std::string::npos)
      return true;
    for (const auto& [weak, v] : entity_tags(header))
      if (v && *v == version)
        return true;
    return false;
  }

  /// The answer to a read: the entity, or 304 when If-None-Match matches it.
  static api_response read_response(const call& c, const entity_reply& r) {
    if (none_match_hits(c.req.if_none_match, r.version)) {
      api_response resp{304, "", "", {}, {}};
      resp.headers.emplace_back("ETag", "\"" + std::to_string(r.version) + "\"");
      return resp;
    }
    return entity_response(r, 200);
  }

  // -- operational routes ----------------------------------------------------

  void livez(std::shared_ptr<call> c) {
    auto r = json(200, "ok\n");
    r.content_type = "text/plain; charset=utf-8";
    c->respond(std::move(r));
  }

  void readyz(std::shared_ptr<call> c) {
    bool verbose = c->query.contains("verbose");
    bool draining_now = draining->load();
    auto store = ctx.store;
    std::string relay_line;
    if (ctx.relay) {
      auto r = ctx.relay->get();
      auto age = r.oldest_us ? static_cast<double>(protocol::now_us() - r.oldest_us) / 1e6 : 0.0;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f", age);
      relay_line = std::string{r.brokers_up ? "[+]" : "[!]"} + "events relay: kafka " +
                   (r.brokers_up ? "reachable" : "unreachable" + (r.detail.empty() ? "" : " (" + r.detail + ")")) +
                   "; backlog " + std::to_string(r.backlog) + " events, oldest " + buf + " s; published " +
                   std::to_string(r.published) + "\n";
    } else {
      relay_line = "[+]events relay: off (no kafka-brokers); GET /v1/events serves the outbox\n";
    }
    post([c, verbose, draining_now, store, relay_line](caf::event_based_actor* self) {
      auto answer = [c, verbose, draining_now, relay_line](bool store_ok, const std::string& detail) {
        bool ready = store_ok && !draining_now;
        api_response r;
        r.status = ready ? 200 : 503;
        r.content_type = "text/plain; charset=utf-8";
        if (!ready)
          r.headers.emplace_back("Retry-After", "1");
        if (verbose) {
          r.body += (store_ok ? "[+]store " : "[-]store ") + detail + "\n";
          r.body += draining_now ? "[-]shutdown: draining in-flight requests\n" : "[+]shutdown: not shutting down\n";
          r.body += relay_line;
          r.body += ready ? "readyz check passed\n" : "readyz check failed\n";
        } else {
          r.body = ready ? "ok\n" : "not ready\n";
        }
        c->respond(std::move(r));
      };
      self->request(store, std::chrono::seconds(2), health_atom::value)
        .then([answer](store_health& h) { answer(h.ready, h.detail); },
              [answer](caf::error&) { answer(false, "the store actor did not answer"); });
    });
  }

  void metrics(std::shared_ptr<call> c) {
    auto r = json(200, ctx.metrics ? ctx.metrics->render() : std::string{});
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    c->respond(std::move(r));
  }

  void openapi(std::shared_ptr<call> c) { c->respond(json(200, openapi_document())); }

  // -- tenants ---------------------------------------------------------------

  void create_tenant(std::shared_ptr<call> c) {
    if (!check_json_body(c, false, false))
      return;
    auto req = std::make_shared<v1::CreateTenantRequest>();
    if (!parse_body(c, *req))
      return;
    command cmd;
    cmd.what = op::create;
    cmd.payload = req;
    auto id = protocol::new_uuid_v7();
    send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [](entity_reply& r) {
      auto resp = entity_response(r, 201);
      resp.headers.emplace_back("Location", "/v1/tenants/" + static_cast<const v1::Tenant&>(*r.entity).id());
      return resp;
    });
  }

  void get_tenant(std::shared_ptr<call> c) {
    with_tenant(c, [this, c](std::string id) {
      with_month_usage(c, id, [this, c, id](std::int64_t now, std::int64_t metered) {
        command cmd;
        cmd.what = op::get;
        send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [c, now, metered](entity_reply& r) {
          if (none_match_hits(c->req.if_none_match, r.version) || !r.entity)
            return read_response(*c, r);
          auto t = std::make_shared<v1::Tenant>(static_cast<const v1::Tenant&>(*r.entity));
          *t->mutable_usage() = month_usage(t->usage(), now, metered);
          r.entity = std::move(t);
          return entity_response(r, 200);
        });
      });
    });
  }

  /// The usage as of `now`: the state's counters of this month (a new month
  /// starts from 0, tenant_model: usage_at) plus the calls metered at the edge.
  static v1::TenantUsage month_usage(const v1::TenantUsage& state, std::int64_t now, std::int64_t metered) {
    auto u = actors::usage_at(state, now);
    u.set_api_calls_this_month(static_cast<std::int32_t>(
      std::min<std::int64_t>(INT32_MAX, std::int64_t{u.api_calls_this_month()} + metered)));
    return u;
  }

  /// Runs `next(now, calls metered this month)` once the meter knows the
  /// tenant's stored count for this month. GET /v1/tenants/{t} and
  /// GET /v1/tenants/{t}/usage both report through it, so they agree.
  void with_month_usage(const std::shared_ptr<call>& c, const std::string& id,
                        std::function<void(std::int64_t, std::int64_t)> next) {
    auto now = protocol::now_us();
    auto month = month_of(now);
    auto report = [this, id, month, now, next] { next(now, meter->used(id, month).value_or(0)); };
    if (meter->used(id, month))
      report();
    else
      load_usage(c, id, month, report);
  }

  void patch_tenant(std::shared_ptr<call> c) {
    if (!check_json_body(c, true, false))
      return;
    if (nlohmann::json::parse(c->req.body, nullptr, false).contains("plan")) {
      // The plan is what the tenant pays for: an admin may not change it,
      // and with billing connected an owner neither, unless allowed.
      bool platform = c->who.is_platform_admin() && c->who.tenant_id.empty();
      if (!platform && !c->who.has(access::owner)) {
        forbidden(c, "only an owner or the platform may change the plan");
        return;
      }
      if (!platform && !opts.stripe_webhook_secret.empty() && !opts.allow_tenant_plan_change) {
        forbidden(c, "the plan follows the tenant's subscription in billing; change it there");
        return;
      }
    }
    with_tenant(c, [this, c](std::string id) {
      command cmd;
      cmd.what = op::patch;
      cmd.text = c->req.body;
      cmd.if_match = if_match(c);
      send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
    });
  }

  void transition(std::shared_ptr<call> c, op what) {
    if (!check_json_body(c, false, true))
      return;
    std::string reason;
    if (!c->req.body.empty()) {
      v1::TransitionRequest req;
      if (!parse_body(c, req))
        return;
      reason = req.reason();
    }
    with_tenant(c, [this, c, what, reason](std::string id) {
      command cmd;
      cmd.what = what;
      cmd.text = reason;
      cmd.if_match = if_match(c);
      send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
    });
  }
  void activate_tenant(std::shared_ptr<call> c) { transition(std::move(c), op::activate); }
  void suspend_tenant(std::shared_ptr<call> c) { transition(std::move(c), op::suspend); }
  void cancel_tenant(std::shared_ptr<call> c) { transition(std::move(c), op::cancel); }

  /// The tenant's usage: its state's counters plus the API calls metered at
  /// the edge this month (stored and not yet flushed).
  void tenant_usage(std::shared_ptr<call> c) {
    with_tenant(c, [this, c](std::string id) {
      with_month_usage(c, id, [this, c, id](std::int64_t now, std::int64_t metered) {
        command cmd;
        cmd.what = op::usage;
        send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [now, metered](entity_reply& r) {
          auto report = std::make_shared<v1::TenantUsageReport>(static_cast<const v1::TenantUsageReport&>(*r.entity));
          *report->mutable_usage() = month_usage(report->usage(), now, metered);
          return json(200, protocol::to_json(*report));
        });
      });
    });
  }

  // -- lists -----------------------------------------------------------------

  /// Reads limit, sort and cursor; false if an answer was already sent.
  bool page_params(const std::shared_ptr<call>& c, list_query& q, const std::vector<std::string>& sortable) {
    if (auto it = c->query.find("limit"); it != c->query.end()) {
      int n = 0;
      auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
      if (ec != std::errc{} || p != it->second.data() + it->second.size() || n < 1 || n > 500) {
        invalid_param(c, "limit", "must be an integer from 1 to 500");
        return false;
      }
      q.limit = n;
    }
    if (auto it = c->query.find("sort"); it != c->query.end()) {
      auto s = it->second;
      q.descending = !s.empty() && s.front() == '-';
      if (q.descending)
        s.erase(0, 1);
      if (std::find(sortable.begin(), sortable.end(), s) == sortable.end()) {
        std::string list;
        for (const auto& f : sortable)
          list += (list.empty() ? "" : ", ") + f;
        invalid_param(c, "sort", "must be one of " + list + " (prefix - for descending)");
        return false;
      }
      q.sort_field = s;
    }
    if (auto it = c->query.find("cursor"); it != c->query.end()) {
      if (auto err = decode_list_cursor(it->second, q)) {
        invalid_param(c, "cursor", *err);
        return false;
      }
    }
    return true;
  }

  template <class Render>
  void run_list(const std::shared_ptr<call>& c, list_query q, Render render) {
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([c, q, render, store, timeout](caf::event_based_actor* self) {
      self->request(store, timeout, list_atom::value, q)
        .then(
          [c, q, render](row_page& page) {
            if (page.status != store_status::ok) {
              c->respond(api::failure_response(
                page.status == store_status::unavailable ? actors::fail(errc::unavailable, "the store is unavailable; retry later")
                                                         : actors::fail(errc::internal, "the list could not be read"),
                c->req.request_id));
              return;
            }
            bool more = page.rows.size() > static_cast<std::size_t>(q.limit);
            if (more)
              page.rows.resize(static_cast<std::size_t>(q.limit));
            std::string body = "{\"data\":[";
            bool first = true;
            for (const auto& row : page.rows) {
              if (!first)
                body += ',';
              first = false;
              body += render(row);
            }
            body += "],\"nextCursor\":";
            if (more) {
              body += "\"" + encode_list_cursor(q, page.rows.back()) + "\"";
            } else {
              body += "null";
            }
            body += "}";
            c->respond(json(200, std::move(body)));
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  void list_tenants(std::shared_ptr<call> c) {
    list_query q;
    q.kind = entity_kind::tenant;
    if (!page_params(c, q, {"createdAt", "name", "slug"}))
      return;
    if (auto it = c->query.find("status"); it != c->query.end()) {
      const auto& s = it->second;
      if (s != tenant_status::trial && s != tenant_status::active && s != tenant_status::suspended &&
          s != tenant_status::cancelled) {
        invalid_param(c, "status", "must be one of trial, active, suspended, cancelled");
        return;
      }
      q.status = s;
    }
    if (auto it = c->query.find("plan"); it != c->query.end()) {
      if (!ctx.rules.plans.contains(it->second)) {
        invalid_param(c, "plan", "'" + it->second.substr(0, 64) + "' is not a configured plan");
        return;
      }
      q.plan = it->second;
    }
    auto rules = ctx.rules;
    run_list(c, std::move(q), [rules](const list_row& row) {
      v1::Tenant t;
      if (!t.ParseFromString(row.state)) {
        log::error("unreadable tenant state in the store", {{"tenant_id", row.id}});
        return std::string{"{\"id\":\""} + protocol::json_escape(row.id) + "\"}";
      }
      if (auto it = rules.plans.find(t.plan()); it != rules.plans.end())
        fill_limits(*t.mutable_limits(), it->second);
      t.mutable_usage()->set_users(row.user_count);
      return protocol::to_json(t);
    });
  }

  // -- billing ---------------------------------------------------------------

  /// Stripe webhooks: verified, deduplicated by Stripe event id (recorded in
  /// the same transaction as the change), applied through the tenant actor.
  /// A verified event gets 200 even when Colony has nothing to do with it.
  void stripe_webhook(std::shared_ptr<call> c) {
    if (opts.stripe_webhook_secret.empty()) {
      fail(c, 503, "not-configured", "Not configured",
           "Stripe webhooks are off: set stripe-webhook-secret (COLONY_STRIPE_WEBHOOK_SECRET)");
      return;
    }
    if (auto why = billing::verify_stripe_signature(c->req.stripe_signature, c->req.body, opts.stripe_webhook_secret,
                                                    protocol::now_us() / 1'000'000, opts.stripe_tolerance.count())) {
      log::warn("stripe webhook refused", {{"request_id", c->req.request_id}, {"reason", *why}});
      fail(c, 400, "invalid-signature", "Invalid signature", "the Stripe-Signature does not verify: " + *why);
      return;
    }
    std::string error;
    auto ev = billing::parse_stripe_event(c->req.body, error);
    if (!ev) {
      fail(c, 400, "malformed-request", "Malformed request", error);
      return;
    }
    auto answer = [c, id = ev->id](bool applied, const std::string& detail) {
      nlohmann::json doc{{"received", true}, {"eventId", id}, {"applied", applied}, {"detail", detail}};
      c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
    };
    if (!ev->change) {
      answer(false, ev->ignored_because);
      return;
    }
    auto deliver = [this, c, ev, answer](std::string tenant_id) {
      if (tenant_id.empty()) {
        log::warn("stripe event for no known tenant", {{"event", ev->id}, {"type", ev->type}});
        answer(false, "no tenant: neither metadata.tenant_id nor a known customer id");
        return;
      }
      command cmd;
      cmd.what = op::billing;
      cmd.meta.message_key = "stripe:" + ev->id;
      cmd.payload = std::make_shared<v1::BillingChange>(*ev->change);
      cmd.meta.request_id = c->req.request_id;
      cmd.meta.traceparent = c->req.traceparent;
      cmd.meta.actor = "stripe:" + ev->id;
      cmd.meta.client = c->req.client_addr;
      auto timeout = opts.request_timeout;
      post([c, tenant_id, cmd = std::move(cmd), entities = ctx.entities, timeout, answer,
            ev](caf::event_based_actor* self) mutable {
        auto target = entities->route(entity_key{entity_kind::tenant, tenant_id, tenant_id});
        if (!target) {
          c->respond(api::failure_response(actors::fail(errc::unavailable, "the node is shutting down"), c->req.request_id));
          return;
        }
        self->request(target, timeout, std::move(cmd))
          .then(
            [c, answer, ev, tenant_id](entity_reply& r) {
              if (!r.error) {
                answer(true, ev->change->kind() + " applied to tenant " + tenant_id);
                return;
              }
              if (r.error->code == errc::unavailable || r.error->code == errc::internal) {
                c->respond(api::failure_response(*r.error, c->req.request_id)); // Stripe retries
                return;
              }
              log::warn("stripe event refused by the tenant", {{"event", ev->id}, {"error", r.error->detail}});
              answer(false, r.error->detail);
            },
            [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
      });
    };
    if (protocol::is_uuid(ev->tenant_id)) {
      deliver(normalize_email(ev->tenant_id));
      return;
    }
    if (ev->customer_id.empty()) {
      deliver({});
      return;
    }
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([c, store, timeout, deliver, customer = ev->customer_id](caf::event_based_actor* self) {
      self->request(store, timeout, resolve_atom::value, std::string{"stripe-customer"}, customer)
        .then([deliver](std::string& id) { deliver(std::move(id)); },
              [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  // -- outbound webhooks -----------------------------------------------------

  /// Runs `next` with the tenant's id once the tenant is known to exist (404 otherwise).
  void with_existing_tenant(const std::shared_ptr<call>& c, std::function<void(std::string)> next) {
    with_tenant(c, [this, c, next = std::move(next)](std::string id) {
      command cmd;
      cmd.what = op::get;
      send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [next, id](entity_reply&) {
        next(id);
        return api_response{-1, {}, {}, {}, {}}; // answered by next
      });
    });
  }

  /// Asks the store; `ok` gets ok and not_found answers, anything else becomes
  /// 503 (unavailable) or 500 ("<what> could not be read").
  template <class Result, class Atom, class Op>
  void ask_store(const std::shared_ptr<call>& c, Atom atom, Op op, const char* what, std::function<void(Result&)> ok) {
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([c, atom, op = std::move(op), what, ok = std::move(ok), store, timeout](caf::event_based_actor* self) mutable {
      self->request(store, timeout, atom, std::move(op))
        .then(
          [c, what, ok](Result& r) {
            if (r.status == store_status::ok || r.status == store_status::not_found) {
              ok(r);
              return;
            }
            c->respond(api::failure_response(
              r.status == store_status::unavailable
                ? actors::fail(errc::unavailable, "the store is unavailable; retry later")
                : actors::fail(errc::internal, std::string{what} + " could not be read"),
              c->req.request_id));
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  void webhook_store(const std::shared_ptr<call>& c, webhook_op op, std::function<void(webhook_result&)> ok) {
    ask_store<webhook_result>(c, webhook_atom::value, std::move(op), "the webhooks", std::move(ok));
  }

  static nlohmann::json endpoint_json(const webhook_endpoint& e) {
    return {{"id", e.id},
            {"tenantId", e.tenant_id},
            {"url", e.url},
            {"eventTypes", e.event_types},
            {"description", e.description},
            {"createdAt", protocol::format_rfc3339(e.created_us)}};
  }

  std::optional<std::string> webhook_id(const std::shared_ptr<call>& c) {
    auto raw = c->path["webhookId"];
    if (!protocol::is_uuid(raw)) {
      fail(c, 400, "invalid-id", "Invalid webhook id", "'" + raw.substr(0, 64) + "' is not a webhook id (UUID)");
      return std::nullopt;
    }
    return normalize_email(raw);
  }

  void create_webhook(std::shared_ptr<call> c) {
    if (!check_json_body(c, false, false))
      return;
    auto doc = nlohmann::json::parse(c->req.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      fail(c, 400, "malformed-request", "Malformed request", "the body must be a JSON object");
      return;
    }
    webhook_endpoint e;
    std::vector<protocol::field_error> errors;
    for (auto& [key, value] : doc.items()) {
      if (key == "url" && value.is_string())
        e.url = value.get<std::string>();
      else if (key == "description" && value.is_string() && value.get<std::string>().size() <= 500)
        e.description = value.get<std::string>();
      else if (key == "eventTypes" && value.is_array() && value.size() <= 50) {
        for (const auto& t : value) {
          auto ok = t.is_string() && !t.get<std::string>().empty() && t.get<std::string>().size() <= 100 &&
                    t.get<std::string>().find_first_not_of("abcdefghijklmnopqrstuvwxyz_.*") == std::string::npos;
          if (!ok) {
            errors.push_back({"eventTypes", "each must be an event type such as user.created, tenant.* or *"});
            break;
          }
          e.event_types.push_back(t.get<std::string>());
        }
      } else if (key == "url" || key == "description" || key == "eventTypes")
        errors.push_back({key, key == "eventTypes" ? "must be an array of at most 50 event types"
                                                   : "must be a string" + std::string{key == "description" ? " of at most 500 characters" : ""}});
      else
        errors.push_back({key, "unknown field"});
    }
    if (e.url.empty() && errors.empty())
      errors.push_back({"url", "is required"});
    else if (!e.url.empty() && !parse_webhook_url(e.url))
      errors.push_back({"url", "must be an http:// or https:// URL with a host"});
    if (!errors.empty()) {
      failure f = actors::fail(errc::invalid, errors.front().field + ": " + errors.front().message);
      f.errors = errors;
      c->respond(api::failure_response(f, c->req.request_id));
      return;
    }
    if (opts.allow_private_webhook_targets) {
      register_webhook(c, std::move(e));
      return;
    }
    // The name is resolved (getaddrinfo blocks) on a body worker thread.
    post_blocking([this, c, e](caf::event_based_actor*) mutable {
      if (auto why = check_webhook_target(*parse_webhook_url(e.url), true)) {
        failure f = actors::fail(errc::invalid, "url: " + *why + "; webhooks go to public addresses only");
        f.errors.push_back({"url", *why});
        c->respond(api::failure_response(f, c->req.request_id));
        return;
      }
      register_webhook(c, std::move(e));
    });
  }

  void register_webhook(const std::shared_ptr<call>& c, webhook_endpoint e) {
    with_existing_tenant(c, [this, c, e](std::string tid) mutable {
      unsigned char raw[32];
      if (RAND_bytes(raw, sizeof raw) != 1) {
        fail(c, 500, "internal-error", "Internal error", "no randomness for the webhook secret");
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
      if (ctx.secrets) // stored sealed: a copy of the database alone does not reveal it
        op.endpoint.secret = ctx.secrets->seal(e.secret);
      op.audit.push_back(audit_of(*c, tid, "webhook.created", "webhook:" + e.id, "success", 201, e.url));
      auto created = endpoint_json(e);
      created["secret"] = e.secret; // shown once
      auto answer = json(201, created.dump(-1, ' ', false, replace_invalid));
      answer.headers.emplace_back("Location", "/v1/tenants/" + e.tenant_id + "/webhooks/" + e.id);
      op.answer = answer_in_transaction(c, answer);
      webhook_store(c, std::move(op), [c, answer](webhook_result&) {
        c->before_answer = nullptr; // the answer committed with the endpoint
        c->respond(answer);
      });
    });
  }

  void list_webhooks(std::shared_ptr<call> c) {
    with_existing_tenant(c, [this, c](std::string tid) {
      webhook_op op;
      op.what = webhook_op::kind::list_endpoints;
      op.tenant_id = tid;
      webhook_store(c, std::move(op), [c](webhook_result& r) {
        auto arr = nlohmann::json::array();
        for (const auto& e : r.endpoints)
          arr.push_back(endpoint_json(e));
        c->respond(json(200, nlohmann::json{{"data", arr}}.dump(-1, ' ', false, replace_invalid)));
      });
    });
  }

  void get_webhook(std::shared_ptr<call> c) {
    auto wid = webhook_id(c);
    if (!wid)
      return;
    with_existing_tenant(c, [this, c, wid = *wid](std::string tid) {
      webhook_op op;
      op.what = webhook_op::kind::get_endpoint;
      op.tenant_id = tid;
      op.endpoint_id = wid;
      webhook_store(c, std::move(op), [this, c, wid](webhook_result& r) {
        if (r.endpoints.empty())
          fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
        else
          c->respond(json(200, endpoint_json(r.endpoints.front()).dump(-1, ' ', false, replace_invalid)));
      });
    });
  }

  void delete_webhook(std::shared_ptr<call> c) {
    auto wid = webhook_id(c);
    if (!wid)
      return;
    with_existing_tenant(c, [this, c, wid = *wid](std::string tid) {
      webhook_op op;
      op.what = webhook_op::kind::delete_endpoint;
      op.tenant_id = tid;
      op.endpoint_id = wid;
      op.audit.push_back(audit_of(*c, tid, "webhook.deleted", "webhook:" + wid, "success", 204, {}));
      op.now_us = protocol::now_us();
      webhook_store(c, std::move(op), [this, c, wid](webhook_result& r) {
        if (r.status == store_status::not_found)
          fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
        else
          c->respond(api_response{204, "", "", {}, {}});
      });
    });
  }

  void list_deliveries(std::shared_ptr<call> c) {
    auto wid = webhook_id(c);
    if (!wid)
      return;
    int limit = 100;
    if (auto it = c->query.find("limit"); it != c->query.end()) {
      auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
      if (ec != std::errc{} || p != it->second.data() + it->second.size() || limit < 1 || limit > 500) {
        invalid_param(c, "limit", "must be an integer from 1 to 500");
        return;
      }
    }
    std::string after;
    if (auto it = c->query.find("after"); it != c->query.end()) {
      if (!protocol::is_uuid(it->second)) {
        invalid_param(c, "after", "must be a delivery id");
        return;
      }
      after = normalize_email(it->second);
    }
    auto status_filter = c->query.contains("status") ? c->query["status"] : std::string{};
    if (!status_filter.empty() && status_filter != "pending" && status_filter != "delivered" && status_filter != "dead") {
      invalid_param(c, "status", "must be pending, delivered or dead");
      return;
    }
    with_existing_tenant(c, [this, c, wid = *wid, limit, after, status_filter](std::string tid) {
      webhook_op get;
      get.what = webhook_op::kind::get_endpoint;
      get.tenant_id = tid;
      get.endpoint_id = wid;
      webhook_store(c, std::move(get), [this, c, wid, tid, limit, after, status_filter](webhook_result& r) {
        if (r.endpoints.empty()) {
          fail(c, 404, "not-found", "Not found", "no webhook " + wid + " in this tenant");
          return;
        }
        webhook_op op;
        op.what = webhook_op::kind::list_deliveries;
        op.tenant_id = tid;
        op.endpoint_id = wid;
        op.after = after;
        op.limit = limit;
        webhook_store(c, std::move(op), [c, status_filter, limit](webhook_result& page) {
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
                           {"nextAttemptAt", d.status == "pending" ? nlohmann::json(protocol::format_rfc3339(d.next_attempt_us))
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

  // -- API keys --------------------------------------------------------------

  void api_key_store(const std::shared_ptr<call>& c, api_key_op op, std::function<void(api_key_result&)> ok) {
    ask_store<api_key_result>(c, api_key_atom::value, std::move(op), "the API keys", std::move(ok));
  }

  static nlohmann::json api_key_json(const api_key_row& k, std::int64_t now_us) {
    auto status = k.revoked_us != 0 ? "revoked" : (k.expires_us != 0 && now_us >= k.expires_us ? "expired" : "active");
    return {{"id", k.id},
            {"tenantId", k.tenant_id},
            {"name", k.name},
            {"roles", k.roles},
            {"status", status},
            {"createdBy", k.created_by},
            {"createdAt", protocol::format_rfc3339(k.created_us)},
            {"expiresAt", k.expires_us ? nlohmann::json(protocol::format_rfc3339(k.expires_us)) : nlohmann::json(nullptr)},
            {"revokedAt", k.revoked_us ? nlohmann::json(protocol::format_rfc3339(k.revoked_us)) : nlohmann::json(nullptr)}};
  }

  void create_api_key(std::shared_ptr<call> c) {
    if (!check_json_body(c, false, false))
      return;
    auto doc = nlohmann::json::parse(c->req.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      fail(c, 400, "malformed-request", "Malformed request", "the body must be a JSON object");
      return;
    }
    std::string name;
    std::vector<std::string> roles;
    std::int64_t expires_us = 0;
    std::vector<protocol::field_error> errors;
    auto now = protocol::now_us();
    for (auto& [key, value] : doc.items()) {
      if (key == "name") {
        if (value.is_string() && value.get<std::string>().size() <= 100)
          name = value.get<std::string>();
        else
          errors.push_back({"name", "must be a string of at most 100 characters"});
      } else if (key == "roles") {
        bool ok = value.is_array() && !value.empty() && value.size() <= 4;
        for (const auto& r : ok ? value : nlohmann::json::array()) {
          if (!r.is_string() || !access::is_tenant_role(r.get<std::string>()) ||
              std::find(roles.begin(), roles.end(), r.get<std::string>()) != roles.end()) {
            ok = false;
            break;
          }
          roles.push_back(r.get<std::string>());
        }
        if (!ok)
          errors.push_back({"roles", "must be a non-empty list of distinct roles: owner, admin, member, viewer"});
      } else if (key == "expiresAt") {
        google::protobuf::Timestamp ts;
        if (!value.is_string() || !google::protobuf::util::TimeUtil::FromString(value.get<std::string>(), &ts))
          errors.push_back({"expiresAt", "must be an RFC 3339 time such as 2027-01-01T00:00:00Z"});
        else if ((expires_us = protocol::timestamp_us(ts)) <= now)
          errors.push_back({"expiresAt", "must be in the future"});
      } else {
        errors.push_back({key, "unknown field"});
      }
    }
    if (roles.empty() && errors.empty())
      errors.push_back({"roles", "is required"});
    if (!errors.empty()) {
      failure f = actors::fail(errc::invalid, errors.front().field + ": " + errors.front().message);
      f.errors = errors;
      c->respond(api::failure_response(f, c->req.request_id));
      return;
    }
    if (auto r = access::first_ungrantable(c->who, roles); !r.empty()) {
      forbidden(c, "this credential may not grant the role '" + r + "'");
      return;
    }
    with_existing_tenant(c, [this, c, name, roles, expires_us, now](std::string tid) {
      minted_key m;
      try {
        m = mint_api_key(tid, roles, name, c->who.credential, now, expires_us);
      } catch (const std::exception&) {
        fail(c, 500, "internal-error", "Internal error", "no randomness for the API key");
        return;
      }
      api_key_op op;
      op.what = api_key_op::kind::create;
      op.key = m.row;
      op.audit.push_back(audit_of(*c, tid, "api_key.created", "api_key:" + m.row.id, "success", 201,
                                  "roles " + nlohmann::json(m.row.roles).dump(-1, ' ', false, replace_invalid)));
      auto created = api_key_json(m.row, now);
      created["key"] = m.key; // shown once: only its hash is kept
      auto answer = json(201, created.dump(-1, ' ', false, replace_invalid));
      answer.headers.emplace_back("Location", "/v1/tenants/" + m.row.tenant_id + "/api-keys/" + m.row.id);
      op.answer = answer_in_transaction(c, answer);
      api_key_store(c, std::move(op), [c, answer](api_key_result&) {
        c->before_answer = nullptr; // the answer committed with the key
        c->respond(answer);
      });
    });
  }

  void list_api_keys(std::shared_ptr<call> c) {
    with_existing_tenant(c, [this, c](std::string tid) {
      api_key_op op;
      op.what = api_key_op::kind::list;
      op.tenant_id = tid;
      api_key_store(c, std::move(op), [c](api_key_result& r) {
        auto now = protocol::now_us();
        auto arr = nlohmann::json::array();
        for (const auto& k : r.keys)
          arr.push_back(api_key_json(k, now));
        c->respond(json(200, nlohmann::json{{"data", arr}}.dump(-1, ' ', false, replace_invalid)));
      });
    });
  }

  void revoke_api_key(std::shared_ptr<call> c) {
    auto kid = c->path["keyId"];
    if (kid.size() != 32 || kid.find_first_not_of("0123456789abcdef") != std::string::npos) {
      fail(c, 400, "invalid-id", "Invalid API key id", "'" + kid.substr(0, 64) + "' is not an API key id");
      return;
    }
    with_existing_tenant(c, [this, c, kid](std::string tid) {
      if (!owner_powers(*c)) {
        // An admin may not revoke an owner's key: look at its roles first
        // (they never change after creation).
        api_key_op get;
        get.what = api_key_op::kind::get;
        get.id = kid;
        api_key_store(c, std::move(get), [this, c, kid, tid](api_key_result& r) {
          bool owners = !r.keys.empty() && r.keys.front().tenant_id == tid &&
                        std::find(r.keys.front().roles.begin(), r.keys.front().roles.end(), "owner") !=
                          r.keys.front().roles.end();
          if (owners) {
            forbidden(c, "only an owner may revoke a key with the owner role");
            return;
          }
          revoke_key(c, tid, kid);
        });
        return;
      }
      revoke_key(c, tid, kid);
    });
  }

  void revoke_key(const std::shared_ptr<call>& c, const std::string& tid, const std::string& kid) {
    {
      api_key_op op;
      op.what = api_key_op::kind::revoke;
      op.tenant_id = tid;
      op.id = kid;
      op.now_us = protocol::now_us();
      op.audit.push_back(audit_of(*c, tid, "api_key.revoked", "api_key:" + kid, "success", 204, {}));
      api_key_store(c, std::move(op), [this, c, kid](api_key_result& r) {
        {
          std::lock_guard lock{keys_mu}; // stops working at once on this node
          revocations.fetch_add(1);
          keys.erase(kid);
        }
        if (r.status == store_status::not_found)
          fail(c, 404, "not-found", "Not found", "no active API key " + kid + " in this tenant");
        else
          c->respond(api_response{204, "", "", {}, {}});
      });
    }
  }

  /// Does the caller hold an owner's powers in its tenant (an owner or a
  /// platform credential)? An admin does not (user_model: owner_guard).
  static bool owner_powers(const call& c) {
    return (c.who.is_platform_admin() && c.who.tenant_id.empty()) || c.who.has(access::owner);
  }

  // -- event feed ------------------------------------------------------------

  /// Reads `after` and `limit` of an event feed; false if an answer was sent.
  bool event_params(const std::shared_ptr<call>& c, event_query& q) {
    auto number = [&](const char* name, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
      auto it = c->query.find(name);
      if (it == c->query.end())
        return true;
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
      if (ec != std::errc{} || p != it->second.data() + it->second.size() || n < lo || n > hi) {
        invalid_param(c, name, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
        return false;
      }
      out = n;
      return true;
    };
    std::int64_t limit = 100;
    if (!number("after", 0, std::numeric_limits<std::int64_t>::max(), q.after) || !number("limit", 1, 1000, limit))
      return false;
    q.limit = static_cast<int>(limit);
    return true;
  }

  void run_events(const std::shared_ptr<call>& c, event_query q) {
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([c, q, store, timeout](caf::event_based_actor* self) {
      self->request(store, timeout, events_atom::value, q)
        .then(
          [c, q](event_page& page) {
            if (page.status != store_status::ok) {
              c->respond(api::failure_response(
                page.status == store_status::unavailable ? actors::fail(errc::unavailable, "the store is unavailable; retry later")
                                                         : actors::fail(errc::internal, "the events could not be read"),
                c->req.request_id));
              return;
            }
            std::string body = "{\"data\":[";
            v1::Event ev;
            for (std::size_t i = 0; i < page.rows.size(); ++i) {
              const auto& row = page.rows[i];
              if (i > 0)
                body += ',';
              body += "{\"position\":" + std::to_string(row.position) + ",\"event\":";
              if (ev.ParseFromString(row.payload)) {
                body += protocol::to_json(ev);
              } else {
                log::error("unreadable event in the outbox", {{"position", row.position}});
                body += "null";
              }
              body += '}';
            }
            auto next = page.rows.empty() ? q.after : page.rows.back().position;
            body += "],\"nextAfter\":" + std::to_string(next) + "}";
            c->respond(json(200, std::move(body)));
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  void list_events(std::shared_ptr<call> c) {
    event_query q;
    if (event_params(c, q))
      run_events(c, std::move(q));
  }

  void list_tenant_events(std::shared_ptr<call> c) {
    event_query q;
    if (!event_params(c, q))
      return;
    with_tenant(c, [this, c, q](std::string id) mutable {
      q.tenant_id = id;
      command cmd;
      cmd.what = op::get;
      send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [this, c, q](entity_reply&) {
        run_events(c, q);
        return api_response{-1, {}, {}, {}, {}}; // answered by run_events
      });
    });
  }

  void list_users(std::shared_ptr<call> c) {
    list_query q;
    q.kind = entity_kind::user;
    if (!page_params(c, q, {"createdAt", "email", "name"}))
      return;
    if (auto it = c->query.find("status"); it != c->query.end()) {
      if (it->second != user_status::active && it->second != user_status::disabled) {
        invalid_param(c, "status", "must be active or disabled");
        return;
      }
      q.status = it->second;
    }
    if (auto it = c->query.find("role"); it != c->query.end()) {
      const auto& r = it->second;
      if (r != "owner" && r != "admin" && r != "member" && r != "viewer") {
        invalid_param(c, "role", "must be one of owner, admin, member, viewer");
        return;
      }
      q.role = r;
    }
    if (auto it = c->query.find("q"); it != c->query.end()) {
      if (it->second.size() > 200) {
        invalid_param(c, "q", "must be at most 200 characters");
        return;
      }
      q.q = it->second;
    }
    with_tenant(c, [this, c, q](std::string id) mutable {
      q.tenant_id = id;
      // A list of a tenant that does not exist is a 404, not an empty page.
      command cmd;
      cmd.what = op::get;
      send(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd), [this, c, q](entity_reply&) {
        run_list(c, q, [](const list_row& row) {
          v1::User u;
          if (!u.ParseFromString(row.state)) {
            log::error("unreadable user state in the store", {{"user_id", row.id}});
            return std::string{"{\"id\":\""} + protocol::json_escape(row.id) + "\"}";
          }
          return protocol::to_json(u);
        });
        return api_response{-1, {}, {}, {}, {}}; // answered by run_list
      });
    });
  }

  // -- users -----------------------------------------------------------------

  void create_user(std::shared_ptr<call> c) {
    if (!check_json_body(c, false, false))
      return;
    auto req = std::make_shared<v1::CreateUserRequest>();
    if (!parse_body(c, *req))
      return;
    with_tenant(c, [this, c, req](std::string tid) {
      std::vector<std::string> roles{req->roles().begin(), req->roles().end()};
      if (auto r = access::first_ungrantable(c->who, roles); !r.empty() && access::is_tenant_role(r)) {
        forbidden(c, "this credential may not grant the role '" + r + "'");
        return;
      }
      command cmd;
      cmd.what = op::create_user;
      cmd.payload = req;
      cmd.user_id = protocol::new_uuid_v7();
      cmd.new_id = true;
      send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [](entity_reply& r) {
        const auto& u = static_cast<const v1::User&>(*r.entity);
        auto resp = entity_response(r, 201);
        resp.headers.emplace_back("Location", "/v1/tenants/" + u.tenant_id() + "/users/" + u.id());
        return resp;
      });
    });
  }

  void get_user(std::shared_ptr<call> c) {
    auto uid = user_id(c);
    if (!uid)
      return;
    with_tenant(c, [this, c, uid = *uid](std::string tid) {
      command cmd;
      cmd.what = op::get;
      send(c, entity_key{entity_kind::user, tid, uid}, std::move(cmd),
           [c](entity_reply& r) { return read_response(*c, r); });
    });
  }

  void patch_user(std::shared_ptr<call> c) {
    auto uid = user_id(c);
    if (!uid || !check_json_body(c, true, false))
      return;
    with_tenant(c, [this, c, uid = *uid](std::string tid) {
      // A member updating itself may not touch its roles or status; an admin
      // may not make anyone an owner.
      auto doc = nlohmann::json::parse(c->req.body, nullptr, false);
      std::vector<std::string> fields;
      for (auto& [k, v] : doc.items())
        fields.push_back(k);
      bool manager = access::authorize(c->who, permission::manage, tid) == decision::allow;
      if (auto f = access::first_field_not_self_writable(fields); !manager && !f.empty()) {
        forbidden(c, "a member may change its own name, email and attributes, not '" + f + "'");
        return;
      }
      if (manager && doc.contains("roles") && doc["roles"].is_array()) {
        std::vector<std::string> roles;
        for (const auto& r : doc["roles"])
          if (r.is_string())
            roles.push_back(r.get<std::string>());
        if (auto r = access::first_ungrantable(c->who, roles); !r.empty() && access::is_tenant_role(r)) {
          forbidden(c, "this credential may not grant the role '" + r + "'");
          return;
        }
      }
      command cmd;
      cmd.what = op::patch_user;
      cmd.meta.owner_powers = owner_powers(*c);
      cmd.user_id = uid;
      cmd.text = c->req.body;
      cmd.if_match = if_match(c);
      send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd),
           [](entity_reply& r) { return entity_response(r, 200); });
    });
  }

  void delete_user(std::shared_ptr<call> c) {
    auto uid = user_id(c);
    if (!uid)
      return;
    bool erase = false;
    if (auto it = c->query.find("erase"); it != c->query.end()) {
      if (it->second != "true" && it->second != "false") {
        invalid_param(c, "erase", "must be true or false");
        return;
      }
      erase = it->second == "true";
    }
    with_tenant(c, [this, c, uid = *uid, erase](std::string tid) {
      command cmd;
      cmd.what = op::remove_user;
      cmd.meta.owner_powers = owner_powers(*c);
      cmd.user_id = uid;
      cmd.if_match = if_match(c);
      if (!erase) {
        send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [](entity_reply&) {
          return api_response{204, "", "", {}, {}};
        });
        return;
      }
      // GDPR erasure: delete the user (if still there), then remove its
      // personal data from every event, delivery and audit detail, leaving
      // a user.erased tombstone. A user deleted earlier can still be erased.
      cmd.meta.request_id = c->req.request_id;
      cmd.meta.traceparent = c->req.traceparent;
      cmd.meta.actor = c->who.credential;
      cmd.meta.client = c->req.client_addr;
      auto timeout = opts.request_timeout;
      post([this, c, tid, uid, cmd = std::move(cmd), timeout, entities = ctx.entities](caf::event_based_actor* self) mutable {
        auto target = entities->route(entity_key{entity_kind::tenant, tid, tid});
        if (!target) {
          c->respond(api::failure_response(actors::fail(errc::unavailable, "the node is shutting down"), c->req.request_id));
          return;
        }
        self->request(target, timeout, std::move(cmd))
          .then(
            [this, c, tid, uid](entity_reply& r) {
              if (r.error && r.error->code != errc::not_found) {
                c->respond(api::failure_response(*r.error, c->req.request_id));
                return;
              }
              erase_user(c, tid, uid);
            },
            [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
      });
    });
  }

  void erase_user(const std::shared_ptr<call>& c, const std::string& tid, const std::string& uid) {
    v1::Event ev;
    ev.set_id(protocol::new_uuid_v7());
    ev.set_type("user.erased");
    ev.set_tenant_id(tid);
    ev.set_aggregate_kind("user");
    ev.set_aggregate_id(uid);
    auto now = protocol::now_us();
    protocol::set_timestamp(*ev.mutable_occurred_at(), now);
    ev.set_request_id(c->req.request_id);
    ev.set_traceparent(c->req.traceparent);
    ev.mutable_user_deleted()->set_user_id(uid);
    user_data_op op;
    op.erase = true;
    op.tenant_id = tid;
    op.user_id = uid;
    op.now_us = now;
    op.tombstone.push_back(outbox_event{ev.id(), ev.type(), ev.SerializeAsString()});
    op.audit.push_back(audit_of(*c, tid, "user.erased", "user:" + uid, "success", 204, {}));
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([this, c, op = std::move(op), store, timeout, uid](caf::event_based_actor* self) mutable {
      self->request(store, timeout, user_data_atom::value, std::move(op))
        .then(
          [this, c, uid](user_data& r) {
            if (r.status == store_status::not_found) {
              // No user of this tenant by that id (another tenant's, or
              // none), or erased before: the store wrote nothing.
              fail(c, 404, "not-found", "Not found", "no user with id " + uid + " in this tenant");
              return;
            }
            if (r.status != store_status::ok) {
              c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                               c->req.request_id));
              return;
            }
            log::info("user erased", {{"request_id", c->req.request_id},
                                      {"events", static_cast<int>(r.events_scrubbed)},
                                      {"deliveries", static_cast<int>(r.deliveries_scrubbed)},
                                      {"audit_records", static_cast<int>(r.audit_scrubbed)}});
            c->respond(api_response{204, "", "", {}, {}});
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  /// GDPR export: the user's state, its events and the audit records about
  /// it, as one JSON document.
  void export_user(std::shared_ptr<call> c) {
    auto uid = user_id(c);
    if (!uid)
      return;
    with_tenant(c, [this, c, uid = *uid](std::string tid) {
      command cmd;
      cmd.what = op::get;
      cmd.meta.request_id = c->req.request_id;
      auto timeout = opts.request_timeout;
      post([this, c, tid, uid, cmd = std::move(cmd), timeout, entities = ctx.entities,
            store = ctx.store](caf::event_based_actor* self) mutable {
        auto target = entities->route(entity_key{entity_kind::user, tid, uid});
        if (!target) {
          c->respond(api::failure_response(actors::fail(errc::unavailable, "the node is shutting down"), c->req.request_id));
          return;
        }
        self->request(target, timeout, std::move(cmd))
          .then(
            [this, c, tid, uid, store, timeout, self](entity_reply& r) {
              if (r.error && r.error->code != errc::not_found) {
                c->respond(api::failure_response(*r.error, c->req.request_id));
                return;
              }
              auto user = r.error ? nlohmann::json(nullptr)
                                  : nlohmann::json::parse(r.entity ? protocol::to_json(*r.entity)
                                                                   : protocol::bytes_to_json(r.type, *r.bytes));
              user_data_op op;
              op.tenant_id = tid;
              op.user_id = uid;
              self->request(store, timeout, user_data_atom::value, std::move(op))
                .then(
                  [this, c, tid, uid, user](user_data& d) {
                    if (d.status != store_status::ok) {
                      c->respond(api::failure_response(
                        actors::fail(errc::unavailable, "the store is unavailable; retry later"), c->req.request_id));
                      return;
                    }
                    if (user.is_null() && d.events.empty()) {
                      fail(c, 404, "not-found", "Not found", "no user with id " + uid + " in this tenant");
                      return;
                    }
                    auto events = nlohmann::json::array();
                    v1::Event ev;
                    for (const auto& e : d.events)
                      if (ev.ParseFromString(e))
                        events.push_back(nlohmann::json::parse(protocol::to_json(ev)));
                    auto audit_records = nlohmann::json::array();
                    for (const auto& a : d.audit)
                      audit_records.push_back({{"id", a.id}, {"at", protocol::format_rfc3339(a.at_us)},
                                               {"actor", a.actor}, {"action", a.action}, {"target", a.target},
                                               {"requestId", a.request_id}, {"outcome", a.outcome},
                                               {"status", a.status}, {"detail", a.detail}});
                    nlohmann::json doc{{"exportedAt", protocol::format_rfc3339(protocol::now_us())},
                                       {"tenantId", tid},
                                       {"userId", uid},
                                       {"user", user},
                                       {"events", events},
                                       {"auditRecords", audit_records}};
                    auto resp = json(200, doc.dump(-1, ' ', false, replace_invalid));
                    resp.headers.emplace_back("Content-Disposition",
                                              "attachment; filename=\"user-" + uid + ".json\"");
                    c->respond(std::move(resp));
                  },
                  [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
            },
            [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
      });
    });
  }

  // -- audit -------------------------------------------------------------------

  /// An audit record of this request.
  static audit_record audit_of(const call& c, std::string tenant, std::string action, std::string target,
                               std::string outcome, int status, std::string detail) {
    audit_record a;
    a.id = protocol::new_uuid_v7();
    a.tenant_id = std::move(tenant);
    a.at_us = protocol::now_us();
    a.actor = c.who.credential.empty() ? std::string{"anonymous"} : c.who.credential;
    a.action = std::move(action);
    a.target = protocol::valid_utf8(target);
    a.request_id = c.req.request_id;
    a.client = c.req.client_addr;
    a.outcome = std::move(outcome);
    a.status = status;
    a.detail = protocol::valid_utf8(detail.substr(0, 300));
    return a;
  }

  /// Records the answers that leave no change behind but must be accounted
  /// for: authentication failures, denials (403, and 404 for another
  /// tenant's resource), and refused writes. Successful changes are recorded
  /// with their commit.
  void audit_answer(const call& c, const api_response& r) {
    if (r.status < 400)
      return;
    bool write = c.req.method == "POST" || c.req.method == "PATCH" || c.req.method == "DELETE";
    auto path = c.req.target.substr(0, std::min<std::size_t>(c.req.target.find('?'), 200));
    auto detail = [&] {
      auto doc = nlohmann::json::parse(r.body, nullptr, false);
      return doc.is_object() && doc.contains("detail") && doc["detail"].is_string() ? doc["detail"].get<std::string>()
                                                                                     : std::string{};
    };
    if (r.status == 401)
      audit->record(audit_of(c, {}, "auth.failed", c.req.method + " " + path, "failure", 401, detail()));
    else if (c.hidden || (r.status == 403 && r.body.find("/problems/forbidden\"") != std::string::npos))
      audit->record(audit_of(c, c.who.tenant_id, "access.denied", c.req.method + " " + path, "denied", r.status,
                             c.hidden ? "another tenant's resource" : detail()));
    else if (write && c.route != "unmatched")
      audit->record(audit_of(c, c.tenant_id.empty() ? c.who.tenant_id : c.tenant_id, "request.refused",
                             c.req.method + " " + path, "failure", r.status, detail()));
  }

  bool audit_params(const std::shared_ptr<call>& c, audit_op& q) {
    for (const char* f : {"actor", "action", "target"})
      if (auto it = c->query.find(f); it != c->query.end()) {
        if (it->second.size() > 300) {
          invalid_param(c, f, "must be at most 300 characters");
          return false;
        }
        (std::string{f} == "actor" ? q.actor : std::string{f} == "action" ? q.action : q.target) = it->second;
      }
    for (const char* f : {"from", "to"})
      if (auto it = c->query.find(f); it != c->query.end()) {
        google::protobuf::Timestamp ts;
        if (!google::protobuf::util::TimeUtil::FromString(it->second, &ts)) {
          invalid_param(c, f, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z");
          return false;
        }
        (std::string{f} == "from" ? q.from_us : q.to_us) = protocol::timestamp_us(ts);
      }
    if (auto it = c->query.find("limit"); it != c->query.end()) {
      int n = 0;
      auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
      if (ec != std::errc{} || p != it->second.data() + it->second.size() || n < 1 || n > 500) {
        invalid_param(c, "limit", "must be an integer from 1 to 500");
        return false;
      }
      q.limit = n;
    }
    if (auto it = c->query.find("cursor"); it != c->query.end()) {
      auto pos = decode_audit_cursor(it->second);
      if (!pos) {
        invalid_param(c, "cursor", "is not a cursor returned by this list");
        return false;
      }
      q.before = *pos;
    }
    return true;
  }

  void run_audit(const std::shared_ptr<call>& c, audit_op q) {
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    auto limit = q.limit;
    q.limit = limit + 1;
    post([c, q = std::move(q), store, timeout, limit](caf::event_based_actor* self) mutable {
      self->request(store, timeout, audit_atom::value, std::move(q))
        .then(
          [c, limit](audit_page& page) {
            if (page.status != store_status::ok) {
              c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                               c->req.request_id));
              return;
            }
            bool more = page.rows.size() > static_cast<std::size_t>(limit);
            if (more)
              page.rows.resize(static_cast<std::size_t>(limit));
            auto arr = nlohmann::json::array();
            for (const auto& a : page.rows)
              arr.push_back({{"id", a.id},
                             {"tenantId", a.tenant_id},
                             {"at", protocol::format_rfc3339(a.at_us)},
                             {"actor", a.actor},
                             {"action", a.action},
                             {"target", a.target},
                             {"requestId", a.request_id},
                             {"client", a.client},
                             {"outcome", a.outcome},
                             {"status", a.status ? nlohmann::json(a.status) : nlohmann::json(nullptr)},
                             {"detail", a.detail}});
            nlohmann::json doc{{"data", arr}};
            doc["nextCursor"] = more ? nlohmann::json(encode_audit_cursor(page.rows.back().position))
                                     : nlohmann::json(nullptr);
            c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
          },
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  void tenant_audit_log(std::shared_ptr<call> c) {
    audit_op q;
    if (!audit_params(c, q))
      return;
    with_existing_tenant(c, [this, c, q](std::string tid) mutable {
      q.tenant_id = tid;
      run_audit(c, std::move(q));
    });
  }

  void platform_audit_log(std::shared_ptr<call> c) {
    audit_op q;
    if (!audit_params(c, q))
      return;
    if (auto it = c->query.find("tenantId"); it != c->query.end())
      q.tenant_id = it->second; // "" (platform records) is allowed
    else
      q.all_tenants = true;
    run_audit(c, std::move(q));
  }

  // -- authentication --------------------------------------------------------

  /// 401 with the RFC 6750 challenge. Without any credential the challenge
  /// carries no error code (RFC 6750 §3.1).
  void unauthorized(const std::shared_ptr<call>& c, const std::string& error, const std::string& reason) {
    log::info("authentication failed", {{"request_id", c->req.request_id}, {"route", c->route},
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
    auto r = api::problem(401, "unauthorized", "Unauthorized",
                          error.empty() ? "send Authorization: Bearer <token or API key>" : description,
                          c->req.request_id);
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
  void authenticate(const std::shared_ptr<call>& c, std::function<void()> next) {
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
      unauthorized(c, "invalid_token", "a JWT, but this node accepts API keys only (auth-jwt-hs256-secret, auth-jwks unset)");
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

  void with_api_key(const std::shared_ptr<call>& c, std::string token, std::function<void()> next) {
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
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    auto generation = revocations.load();
    post([this, c, op = std::move(op), accept, store, timeout, generation](caf::event_based_actor* self) mutable {
      self->request(store, timeout, api_key_atom::value, std::move(op))
        .then(
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
          [c](caf::error& err) { c->respond(api::failure_response(failure_from(err), c->req.request_id)); });
    });
  }

  // -- Idempotency-Key ---------------------------------------------------------

  /// POST with Idempotency-Key (IETF httpapi-idempotency-key, as Stripe does
  /// it): the first answer is kept per credential, route, path and key for
  /// http.idempotency-ttl; a repeat with the same request replays it, another
  /// request with the key is 422, a repeat while the first runs is 409. An
  /// entity change marks the key committed in its own transaction, so after
  /// a crash between the commit and the stored answer the repeat is answered
  /// from the entity instead of applying the change twice.
  void with_idempotency(const std::shared_ptr<call>& c, std::function<void()> next) {
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
    ask_store<idempotency_result>(c, idempotency_atom::value, std::move(op), "idempotency keys",
                                  [this, c, scope, next](idempotency_result& r) {
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
        case o::replay:
          c->respond(replayed(r));
          return;
        case o::committed:
          answer_committed(c, r);
          return;
        case o::started:
          break;
      }
      c->idem_scope = scope;
      c->before_answer = [this, c, scope](api_response resp, std::function<void(api_response)> send_on) {
        store_answer(c, scope, std::move(resp), std::move(send_on));
      };
      next();
    });
  }

  /// The record of `resp` as the answer of Idempotency-Key `scope`.
  idempotency_op answer_record(const std::string& scope, const api_response& resp) const {
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
  std::optional<idempotency_op> answer_in_transaction(const std::shared_ptr<call>& c, const api_response& resp) {
    if (c->idem_scope.empty())
      return std::nullopt;
    return answer_record(c->idem_scope, resp);
  }

  /// Keeps the answer with the key, then lets it leave. Answers a retry may
  /// change (5xx, 429) are not kept: the key is released instead.
  void store_answer(const std::shared_ptr<call>& c, const std::string& scope, api_response resp,
                    std::function<void(api_response)> send_on) {
    idempotency_op op;
    if (resp.status >= 500 || resp.status == 429) {
      op.what = idempotency_op::kind::release;
      op.scope = scope;
    } else {
      op = answer_record(scope, resp);
    }
    auto store = ctx.store;
    auto timeout = opts.request_timeout;
    post([c, op = std::move(op), store, timeout, resp = std::move(resp),
          send_on = std::move(send_on)](caf::event_based_actor* self) mutable {
      self->request(store, timeout, idempotency_atom::value, std::move(op))
        .then(
          [c, resp, send_on](idempotency_result& r) mutable {
            if (r.status != store_status::ok)
              log::warn("the answer of an Idempotency-Key was not stored; a repeat may run again",
                        {{"request_id", c->req.request_id}});
            send_on(std::move(resp));
          },
          [c, resp, send_on](caf::error&) mutable {
            log::warn("the answer of an Idempotency-Key was not stored; a repeat may run again",
                      {{"request_id", c->req.request_id}});
            send_on(std::move(resp));
          });
    });
  }

  api_response replayed(const idempotency_result& r) const {
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
  void answer_committed(const std::shared_ptr<call>& c, const idempotency_result& r) {
    bool creation = c->route == "/v1/tenants" || c->route == "/v1/tenants/{tenantId}/users";
    auto kind = r.ref_kind == static_cast<int>(entity_kind::user) ? entity_kind::user : entity_kind::tenant;
    command cmd;
    cmd.what = op::get;
    auto tid = kind == entity_kind::user ? r.ref_tenant : r.ref_id;
    send(c, entity_key{kind, tid, r.ref_id}, std::move(cmd), [creation, kind, r](entity_reply& e) {
      auto resp = entity_response(e, creation ? 201 : 200);
      if (creation)
        resp.headers.emplace_back("Location", kind == entity_kind::user
                                                ? "/v1/tenants/" + r.ref_tenant + "/users/" + r.ref_id
                                                : "/v1/tenants/" + r.ref_id);
      resp.headers.emplace_back("Idempotency-Replayed", "true");
      return resp;
    });
  }

  // -- dispatch --------------------------------------------------------------

  /// The methods of the routes whose template matches `path` (for 405's
  /// Allow and CORS preflights); empty if no route does.
  std::vector<std::string> methods_at(std::string_view path) const {
    auto segs = split_path(path);
    std::vector<std::string> methods;
    for (const auto& r : routes) {
      if (r.segs.size() != segs.size())
        continue;
      bool match = true;
      for (std::size_t i = 0; i < segs.size() && match; ++i)
        match = (r.segs[i].size() > 2 && r.segs[i].front() == '{') || r.segs[i] == segs[i];
      if (match && std::find(methods.begin(), methods.end(), r.method) == methods.end())
        methods.push_back(r.method);
    }
    return methods;
  }

  void dispatch(std::shared_ptr<call> c) {
    std::string_view target = c->req.target;
    auto qpos = target.find('?');
    auto path = target.substr(0, qpos);
    if (qpos != std::string_view::npos)
      c->query = parse_query(target.substr(qpos + 1));
    auto segs = split_path(path);
    std::vector<std::string> methods; // of routes whose path matches, for 405
    auto is_param = [](const std::string& t) { return t.size() > 2 && t.front() == '{' && t.back() == '}'; };
    for (const auto& r : routes) {
      if (r.segs.size() != segs.size())
        continue;
      bool match = true;
      for (std::size_t i = 0; i < segs.size() && match; ++i)
        match = is_param(r.segs[i]) || r.segs[i] == segs[i];
      if (!match)
        continue;
      if (r.method != c->req.method && !(r.method == "GET" && c->req.method == "HEAD")) {
        methods.push_back(r.method);
        continue;
      }
      // The parameters only of the route taken (building them for every
      // candidate cost ~20 allocations per request).
      for (std::size_t i = 0; i < segs.size(); ++i)
        if (is_param(r.segs[i]))
          c->path[r.segs[i].substr(1, r.segs[i].size() - 2)] = std::move(segs[i]);
      c->route = r.path;
      bool open = !r.perm || std::find(ctx.open_paths.begin(), ctx.open_paths.end(), r.path) != ctx.open_paths.end();
      if (open) {
        (this->*r.fn)(c);
        return;
      }
      c->perm = *r.perm;
      authenticate(c, [this, c, fn = r.fn] {
        // Platform routes are decided here; tenant routes once the tenant is
        // known (with_tenant), but a tenant id in the path that is not the
        // caller's is refused before the body is even looked at.
        if (c->perm == permission::platform) {
          if (access::authorize(c->who, c->perm, {}) != decision::allow) {
            forbidden(c, "only a platform administrator may " + c->req.method + " " + c->route);
            return;
          }
        } else if (auto raw = c->path["tenantId"]; protocol::is_uuid(raw)) {
          if (!this->allowed(c, normalize_email(raw), "no tenant with id " + normalize_email(raw)))
            return;
        }
        if (c->req.method == "POST" && !c->req.idempotency_key.empty()) {
          with_idempotency(c, [this, c, fn] { (this->*fn)(c); });
          return;
        }
        (this->*fn)(c);
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
};

api::api(caf::actor_system& sys, const http_options& opts, api_context ctx)
  : impl_(std::make_unique<impl>(sys, opts, std::move(ctx))) {
  impl_->draining = &draining_;
}

api::~api() = default;

void api::flush(std::chrono::milliseconds timeout) {
  impl_->meter->flush_now(timeout);
  impl_->audit->flush_now(timeout);
}

void api::stop(std::chrono::milliseconds timeout) {
  auto bridges = impl_->bridges;
  bridges.insert(bridges.end(), impl_->body_workers.begin(), impl_->body_workers.end());
  if (bridges.empty())
    return;
  caf::scoped_actor waiter{impl_->sys};
  for (auto& b : bridges) {
    waiter->monitor(b);
    waiter->send_exit(b, caf::exit_reason::user_shutdown);
  }
  std::size_t down = 0;
  bool late = false;
  waiter->receive_while([&] { return down < bridges.size() && !late; })(
    [&](caf::down_msg&) { ++down; },
    caf::after(timeout) >> [&] { late = true; });
  if (late)
    log::warn("HTTP bridges did not stop in time", {{"stopped", static_cast<int>(down)},
                                                    {"bridges", static_cast<int>(bridges.size())}});
}

namespace {

bool origin_allowed(const std::vector<std::string>& allowed, const std::string& origin) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return a == "*" || a == origin; });
}

} // namespace

void api::handle(api_request req, responder done) {
  // CORS by allow-list: an allowed Origin gets it echoed back (never "*", so
  // credentials can be sent), a preflight is answered here, and an Origin not
  // on the list gets no CORS headers (the browser then refuses the answer).
  const auto& cors = impl_->opts.cors_origins;
  bool cors_ok = !req.origin.empty() && origin_allowed(cors, req.origin);
  if (!req.origin.empty() && req.method == "OPTIONS" && !req.cors_method.empty()) {
    if (!cors_ok) {
      done(problem(403, "cors-origin-not-allowed", "Origin not allowed",
                   "the origin '" + req.origin.substr(0, 200) + "' may not call this API from a browser",
                   req.request_id));
      return;
    }
    // The methods of the routes at this path: none is a 404 (a preflight
    // for a path the API does not serve gets no permission).
    auto path = std::string_view{req.target}.substr(0, req.target.find('?'));
    auto methods = impl_->methods_at(path);
    if (methods.empty()) {
      done(problem(404, "not-found", "Not found", "no route for " + protocol::valid_utf8(path.substr(0, 200)),
                   req.request_id));
      return;
    }
    std::string allow;
    for (const auto& m : methods)
      allow += (allow.empty() ? "" : ", ") + m + (m == "GET" ? ", HEAD" : "");
    api_response r{204, "", "", {}, "cors-preflight"};
    r.headers = {{"Access-Control-Allow-Origin", req.origin},
                 {"Vary", "Origin"},
                 {"Access-Control-Allow-Methods", allow},
                 {"Access-Control-Allow-Headers",
                  "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id, traceparent, "
                  "tracestate"},
                 {"Access-Control-Max-Age", "600"}};
    done(std::move(r));
    return;
  }
  if (impl_->opts.fault_injection && req.fault.starts_with("block=")) {
    // Tests only: holds the io thread that read the request, as a parser
    // that never returns would (the shutdown watchdog's test).
    std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(std::atoi(req.fault.c_str() + 6), 0, 600'000)));
  }
  if (impl_->opts.fault_injection && req.fault.starts_with("delay=")) {
    // Tests only (debug.fault-injection): the answer leaves N ms late, to
    // hold requests in flight.
    int ms = std::atoi(req.fault.c_str() + 6);
    auto inner = std::move(done);
    done = [inner, ms](api_response r) {
      std::thread{[inner, ms, r = std::move(r)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(ms, 0, 10'000)));
        inner(std::move(r));
      }}.detach();
    };
  }
  auto c = std::make_shared<call>();
  c->req = std::move(req);
  // The call owns this callback, so the raw pointer lives as long as it.
  c->done = [done = std::move(done), cors_origin = cors_ok ? c->req.origin : std::string{}, self = c.get(),
             impl = impl_.get()](api_response r) {
    if (r.status < 0)
      return;
    impl->audit_answer(*self, r);
    if (!cors_origin.empty()) {
      r.headers.emplace_back("Access-Control-Allow-Origin", cors_origin);
      r.headers.emplace_back("Vary", "Origin");
      r.headers.emplace_back("Access-Control-Expose-Headers",
                             "ETag, Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-Id, traceparent, "
                             "tracestate, Idempotency-Replayed");
    }
    done(std::move(r));
  };
  auto run = [](impl* self, const std::shared_ptr<call>& job) {
    try {
      self->dispatch(job);
    } catch (const std::exception&) {
      job->respond(problem(500, "internal-error", "Internal error",
                           "the request failed unexpectedly; quote request id " + job->req.request_id,
                           job->req.request_id));
    }
  };
  if (c->req.body.size() > inline_body_limit) {
    impl_->post_blocking([run, self = impl_.get(), c](caf::event_based_actor*) { run(self, c); });
    return;
  }
  run(impl_.get(), c);
}

api_response api::problem(int status, std::string_view type, std::string_view title, std::string_view detail,
                          const std::string& request_id) {
  api_response r;
  r.status = status;
  r.content_type = "application/problem+json";
  nlohmann::json doc{{"type", std::string{problem_base} + std::string{type}},
                     {"title", title},
                     {"status", status},
                     {"detail", protocol::valid_utf8(detail)}, // details may quote client text
                     {"requestId", request_id}};
  r.body = doc.dump(-1, ' ', false, replace_invalid);
  return r;
}

api_response api::failure_response(const failure& f, const std::string& request_id) {
  int status = 500;
  std::string_view type = "internal-error", title = "Internal error";
  switch (f.code) {
    case errc::invalid: status = 400; type = "validation-error"; title = "Validation failed"; break;
    case errc::malformed: status = 400; type = "malformed-request"; title = "Malformed request"; break;
    case errc::not_found: status = 404; type = "not-found"; title = "Not found"; break;
    case errc::conflict: status = 409; type = "conflict"; title = "Conflict"; break;
    case errc::illegal_transition: status = 409; type = "illegal-transition"; title = "Illegal state transition"; break;
    case errc::plan_below_usage: status = 409; type = "plan-below-usage"; title = "Plan limits below current usage"; break;
    case errc::precondition_failed: status = 412; type = "precondition-failed"; title = "Precondition failed"; break;
    case errc::limit_exceeded: status = 403; type = "limit-exceeded"; title = "Plan limit exceeded"; break;
    case errc::tenant_suspended: status = 403; type = "tenant-suspended"; title = "Tenant suspended"; break;
    case errc::tenant_cancelled: status = 403; type = "tenant-cancelled"; title = "Tenant cancelled"; break;
    case errc::unavailable: status = 503; type = "unavailable"; title = "Service unavailable"; break;
    case errc::forbidden: status = 403; type = "forbidden"; title = "Forbidden"; break;
    case errc::internal: break;
  }
  std::string detail = f.code == errc::internal
                         ? "the request failed unexpectedly; quote request id " + request_id + " when reporting it"
                         : f.detail;
  auto r = problem(status, type, title, detail, request_id);
  if (!f.errors.empty() || !f.strings.empty() || !f.numbers.empty()) {
    auto doc = nlohmann::json::parse(r.body);
    if (!f.errors.empty()) {
      auto arr = nlohmann::json::array();
      for (const auto& e : f.errors)
        arr.push_back({{"field", e.field}, {"message", e.message}});
      doc["errors"] = std::move(arr);
    }
    for (const auto& [k, v] : f.strings)
      doc[k] = v;
    for (const auto& [k, v] : f.numbers)
      doc[k] = v;
    r.body = doc.dump(-1, ' ', false, replace_invalid);
  }
  if (status == 503)
    r.headers.emplace_back("Retry-After", "1");
  return r;
}

std::optional<std::string> decode_list_cursor(std::string_view cursor, list_query& q) {
  auto raw = base64url_decode(cursor);
  auto doc = raw ? nlohmann::json::parse(*raw, nullptr, false) : nlohmann::json(nlohmann::json::value_t::discarded);
  bool numeric = q.sort_field == "createdAt";
  bool ok = raw && !doc.is_discarded() && doc.is_object() && doc.contains("s") && doc.contains("d") &&
            doc.contains("v") && doc.contains("i") && doc["s"].is_string() && doc["d"].is_boolean() &&
            doc["i"].is_string() && (numeric ? doc["v"].is_number_integer() : doc["v"].is_string());
  if (!ok)
    return "is not a cursor returned by this list";
  if (doc["s"].get<std::string>() != q.sort_field || doc["d"].get<bool>() != q.descending)
    return "was issued for another sort order; send the same sort with it";
  q.has_after = true;
  q.after_id = doc["i"].get<std::string>();
  if (numeric)
    q.after_number = doc["v"].get<std::int64_t>();
  else
    q.after_text = doc["v"].get<std::string>();
  return std::nullopt;
}

std::string encode_list_cursor(const list_query& q, const list_row& last) {
  nlohmann::json cur{{"s", q.sort_field}, {"d", q.descending}, {"i", last.id}};
  if (q.sort_field == "createdAt")
    cur["v"] = last.sort_number;
  else
    cur["v"] = last.sort_text;
  return base64url_encode(cur.dump(-1, ' ', false, replace_invalid));
}

std::optional<std::int64_t> decode_audit_cursor(std::string_view cursor) {
  auto raw = base64url_decode(cursor);
  if (!raw || !raw->starts_with("a:"))
    return std::nullopt;
  std::int64_t pos = 0;
  auto [p, ec] = std::from_chars(raw->data() + 2, raw->data() + raw->size(), pos);
  if (ec != std::errc{} || p != raw->data() + raw->size() || pos <= 0)
    return std::nullopt;
  return pos;
}

std::string encode_audit_cursor(std::int64_t position) { return base64url_encode("a:" + std::to_string(position)); }

std::string pick_request_id(std::string_view incoming) {
  bool ok = !incoming.empty() && incoming.size() <= 128;
  for (char c : incoming)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      ok = false;
  return ok ? std::string{incoming} : protocol::new_uuid_v7();
}

std::string pick_traceparent(std::string_view in) {
  auto hex = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  if (in.size() == 55 && in[2] == '-' && in[35] == '-' && in[52] == '-' && hex(in.substr(0, 2)) &&
      hex(in.substr(3, 32)) && hex(in.substr(36, 16)) && hex(in.substr(53, 2)) && in.substr(0, 2) != "ff" &&
      in.substr(3, 32) != std::string(32, '0') && in.substr(36, 16) != std::string(16, '0'))
    return std::string{in};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[56];
  std::snprintf(buf, sizeof buf, "00-%016llx%016llx-%016llx-01", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() | 1), static_cast<unsigned long long>(rng() | 1));
  return buf;
}

std::string pick_tracestate(std::string_view incoming_parent, std::string_view picked, std::string_view state) {
  if (state.empty() || state.size() > 512 || incoming_parent != picked)
    return {};
  for (char ch : state)
    if (ch < 0x20 || ch > 0x7e)
      return {};
  return std::string{state};
}

std::vector<route_info> api::routes() {
  std::vector<route_info> out;
  for (const auto& r : impl::make_routes())
    out.push_back(route_info{r.method, r.path});
  return out;
}

} // namespace colony::adapters::http

namespace colony::adapters {
std::vector<route_info> api_routes() { return http::api::routes(); }
} // namespace colony::adapters
