#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/actors/tenant/quota_policy.hpp"

#include <cmath>

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

/// Runs `next` if the tenant's bucket and the credential's bucket (sized by
/// the tenant's plan) each give a token and the monthly quota has room; 429
/// otherwise. Either way the answer carries RateLimit-Policy and RateLimit
/// (IETF draft httpapi-ratelimit-headers). Platform credentials are not
/// limited here: they are the operator's, and must not eat a tenant's
/// budget. On a cluster the buckets and the meter of a tenant are those of
/// its owner node, so the limits hold cluster-wide (docs/clustering.md).
void api_core::rate_limited(const std::shared_ptr<call>& c, const std::string&, std::function<void()> next) {
  if (c->who.tenant_id.empty()) {
    next();
    return;
  }
  if (ctx.cluster && !ctx.cluster->owned_here(c->who.tenant_id))
    limit_at_owner(c, std::move(next));
  else
    limit_here(c, std::move(next));
}

namespace {
constexpr std::chrono::milliseconds owner_patience{500};
} // namespace

/// Asks the owner of the caller's tenant to take the tokens and count the
/// call; relays its refusal as is. When there is no other owner to ask
/// (moving, unreachable, slow) this node's own buckets decide: the limits
/// then hold per node until the owner answers again.
void api_core::limit_at_owner(const std::shared_ptr<call>& c, std::function<void()> next) {
  nlohmann::json q{{"tenant", c->who.tenant_id}, {"credential", c->who.credential}, {"requestId", c->req.request_id}};
  ctx.cluster->ask_owner(
    c->who.tenant_id, limits_topic, q.dump(-1, ' ', false, replace_invalid), owner_patience,
    [this, c, next](std::optional<std::string> answer) {
      auto doc = answer ? nlohmann::json::parse(*answer, nullptr, false) : nlohmann::json();
      if (!doc.is_object() || !doc.contains("allowed")) {
        if (auto* m = ctx.metrics.get())
          m->count("colony_limits_owner_fallbacks_total",
                   "Rate and quota checks this node decided itself: the tenant's owner could not be asked", {});
        limit_here(c, next);
        return;
      }
      if (doc.value("allowed", false)) {
        c->rate_headers = doc.value("rateHeaders", std::vector<std::pair<std::string, std::string>>{});
        next();
        return;
      }
      api_response r;
      r.status = doc.value("status", 429);
      r.content_type = doc.value("contentType", std::string{"application/problem+json"});
      r.body = doc.value("body", std::string{});
      r.headers = doc.value("headers", std::vector<std::pair<std::string, std::string>>{});
      r.problem_type = doc.value("problemType", std::string{});
      c->respond(std::move(r));
    });
}

/// The owner's side of limit_at_owner: the same check as for a call that
/// reached this node, on a call that carries only who asks.
void api_core::serve_limits(const std::string& payload, std::function<void(std::string)> reply) {
  auto q = nlohmann::json::parse(payload, nullptr, false);
  if (!q.is_object() || !q.contains("tenant") || !q["tenant"].is_string()) {
    reply(std::string{});
    return;
  }
  auto c = std::make_shared<call>();
  c->route = "limits";
  if (q.value("what", std::string{}) == "usage") {
    c->req.request_id = q.value("requestId", std::string{});
    c->done = [reply](api_response) { reply(std::string{}); }; // the store could not be read: the asker reads it
    with_month_usage(c, q["tenant"].get<std::string>(), [reply](std::int64_t, std::int64_t used) {
      reply(nlohmann::json{{"used", used}}.dump());
    });
    return;
  }
  c->who.tenant_id = q["tenant"].get<std::string>();
  c->who.credential = q.value("credential", std::string{});
  c->req.request_id = q.value("requestId", std::string{});
  c->done = [reply](api_response r) {
    nlohmann::json a{{"allowed", false},          {"status", r.status},   {"contentType", r.content_type},
                     {"body", std::move(r.body)}, {"headers", r.headers}, {"problemType", r.problem_type}};
    reply(a.dump(-1, ' ', false, replace_invalid));
  };
  limit_here(c, [c, reply] {
    nlohmann::json a{{"allowed", true}, {"rateHeaders", c->rate_headers}};
    reply(a.dump(-1, ' ', false, replace_invalid));
  });
}

/// This node's buckets and meter (alone, or as the tenant's owner).
void api_core::limit_here(const std::shared_ptr<call>& c, std::function<void()> next) {
  with_plan(c, c->who.tenant_id, [this, c, next](const std::string& plan) {
    auto policy = rate_policy_of(ctx.rules, plan, ctx.credential_rate_percent);
    if (!policy) {
      metered(c, c->who.tenant_id, plan, next, true);
      return;
    }
    if (policy->rate <= 0) {
      fail(c, 429, "rate-limited", "Too many requests", "the plan '" + plan + "' allows no API calls");
      return;
    }
    auto now = actors::rate_limiter::clock::now();
    auto tenant_key = "t:" + c->who.tenant_id;
    auto credential_key = "c:" + c->who.credential;
    auto t = limiter.take(tenant_key, policy->rate, policy->burst, now);
    auto k = limiter.take(credential_key, policy->credential_rate, policy->credential_burst, now);
    // A call refused by one bucket costs the other nothing: else a
    // credential over its share would eat its tenant's rate for nothing.
    if (t.allowed != k.allowed) {
      limiter.give_back(t.allowed ? tenant_key : credential_key);
      ++(t.allowed ? t : k).remaining;
    }
    c->rate_headers = {{"RateLimit-Policy",
                        "\"tenant\";q=" + std::to_string(static_cast<std::int64_t>(policy->burst)) +
                          ";w=" + std::to_string(policy->window_s) +
                          ", \"credential\";q=" + std::to_string(static_cast<std::int64_t>(policy->credential_burst)) +
                          ";w=" + std::to_string(policy->credential_window_s)},
                       {"RateLimit",
                        "\"tenant\";r=" + std::to_string(t.remaining) + ";t=" + std::to_string(t.reset_s) +
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
void api_core::metered(const std::shared_ptr<call>& c, const std::string& tid, const std::string& plan,
                       std::function<void()> next, bool first_try) {
  auto limit = monthly_quota(ctx.rules, plan);
  auto now = protocol::now_us();
  auto month = month_of(now);
  switch (meter->count(tid, month, limit)) {
    case api_meter::verdict::counted: next(); return;
    case api_meter::verdict::over_quota: {
      auto wait = quota_retry_after_s(now);
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
void api_core::load_usage(const std::shared_ptr<call>& c, const std::string& tid, const std::string& month,
                          std::function<void()> next) {
  api_usage_op op;
  op.rows.push_back(api_usage_row{tid, month, 0});
  ask_store_raw<api_usage_result>(
    c,
    [this, c, next](api_usage_result& r) {
      if (r.status != store_status::ok || r.rows.empty()) {
        c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                         c->req.request_id));
        return;
      }
      meter->loaded(r.rows.front().tenant_id, r.rows.front().month, r.rows.front().calls);
      next();
    },
    usage_atom::value, std::move(op));
}

/// The tenant's plan, cached for 30 s (a plan change applies within that).
void api_core::with_plan(const std::shared_ptr<call>& c, const std::string& tid,
                         std::function<void(const std::string&)> next) {
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
  call_entity(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [this, tid, next](entity_reply& r) {
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
  });
}

/// Runs `next(now, calls metered this month)` once the meter knows the
/// tenant's stored count for this month. GET /v1/tenants/{t} and
/// GET /v1/tenants/{t}/usage both report through it, so they agree.
void api_core::with_month_usage(const std::shared_ptr<call>& c, const std::string& id,
                                std::function<void(std::int64_t, std::int64_t)> next) {
  auto now = protocol::now_us();
  auto month = month_of(now);
  auto report = [this, id, month, now, next] { next(now, meter->used(id, month).value_or(0)); };
  auto here = [this, c, id, month, report] {
    if (meter->used(id, month))
      report();
    else
      load_usage(c, id, month, report);
  };
  if (!ctx.cluster || ctx.cluster->owned_here(id)) {
    here();
    return;
  }
  // The owner meters the tenant's calls: its count is the current one.
  nlohmann::json q{{"what", "usage"}, {"tenant", id}, {"requestId", c->req.request_id}};
  ctx.cluster->ask_owner(id, limits_topic, q.dump(-1, ' ', false, replace_invalid), owner_patience,
                         [now, next, here](std::optional<std::string> answer) {
                           auto doc = answer ? nlohmann::json::parse(*answer, nullptr, false) : nlohmann::json();
                           if (doc.is_object() && doc.contains("used") && doc["used"].is_number_integer())
                             next(now, doc["used"].get<std::int64_t>());
                           else
                             here();
                         });
}

} // namespace colony::adapters::http
