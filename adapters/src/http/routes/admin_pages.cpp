// GET /v1/admin/tenants/{t} and /v1/admin/actors/{kind}/{id} (platform): the
// console's tenant and actor pages (docs/console.md). The tenant page adds
// what every member knows of the tenant (live actors, its credentials' calls
// answered there) to what its owner decides (placement, rate bucket) and
// what the tenant itself counts (usage against the plan). The actor page asks
// the owner's directory, then the actor itself if it is live.
#include "admin_gather.hpp"
#include "../core.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "colony/actors/kinds.hpp"
#include "colony/actors/tenant/quota_policy.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/cluster.hpp"
#include "colony/runtime/introspection.hpp"

namespace colony::adapters::http::admin {

using namespace actors;

namespace {
constexpr std::size_t state_cap = 16 * 1024; // bytes of an actor's state snapshot

njson counts_doc(const tenant_traffic::counts& c) {
  return {{"requests", c.requests},
          {"clientErrors", c.client_errors},
          {"serverErrors", c.server_errors},
          {"rateLimited", c.rate_limited},
          {"quotaExceeded", c.quota_exceeded}};
}
} // namespace

njson tenant_here(api_core& a, const std::string& tenant_id) {
  njson doc{{"nodeName", a.opts.node_name}, {"live", 0}, {"byKind", njson::object()}};
  auto now = tenant_traffic::clock::now();
  if (auto v = a.traffic.of(tenant_id, now))
    doc["traffic"] = {
      {"total", counts_doc(v->total)}, {"lastMinute", counts_doc(v->last_minute)}, {"windowSeconds", v->window_s}};
  // The owner's buckets are the ones that decide (pipeline/limits.cpp).
  if (!a.ctx.cluster || a.ctx.cluster->owned_here(tenant_id)) {
    auto b = a.limiter.peek("t:" + tenant_id, now);
    doc["rateBucket"] = b ? njson{{"tokens", b->tokens}, {"full", false}} : njson{{"full", true}};
  }
  if (!a.ctx.local)
    return doc;
  auto t = a.ctx.local->tenant_census(tenant_id);
  doc["live"] = t.total;
  for (const auto& k : builtin_kinds().all()) // the kinds it has live actors of
    if (auto n = t.by_kind[static_cast<std::size_t>(k.kind) % max_kinds]; n > 0)
      doc["byKind"][k.name] = n;
  return doc;
}

std::string key_payload(const entity_key& key) {
  return std::string{to_string(key.kind)} + "\t" + key.tenant_id + "\t" + key.id;
}

std::optional<entity_key> key_of_payload(const std::string& payload) {
  auto t1 = payload.find('\t');
  auto t2 = t1 == std::string::npos ? t1 : payload.find('\t', t1 + 1);
  if (t2 == std::string::npos)
    return std::nullopt;
  auto kind = kind_named(payload.substr(0, t1));
  if (!kind)
    return std::nullopt;
  return entity_key{*kind, payload.substr(t1 + 1, t2 - t1 - 1), payload.substr(t2 + 1)};
}

std::optional<entity_key> actor_key_of(api_core& a, const std::shared_ptr<call>& c) {
  auto kind = kind_named(c->path["kind"]);
  if (!kind) {
    std::string names;
    for (const auto& k : builtin_kinds().all())
      names += (names.empty() ? "" : ", ") + k.name;
    a.invalid_param(c, "kind", "must be one of " + names);
    return std::nullopt;
  }
  auto id = c->path["actorId"];
  std::string tid = *kind == entity_kind::tenant ? id : c->query["tenantId"];
  if (tid.empty()) {
    a.invalid_param(c, "tenantId", "is required for a " + c->path["kind"] + " actor (its tenant's id)");
    return std::nullopt;
  }
  if (tid.size() > 64 || id.size() > 64) {
    a.invalid_param(c, tid.size() > 64 ? "tenantId" : "actorId", "is longer than 64 characters");
    return std::nullopt;
  }
  return entity_key{*kind, tid, id};
}

njson probe_here(const api_core& a, const std::string& payload) {
  njson doc{{"nodeName", a.opts.node_name}, {"live", false}};
  auto parsed = key_of_payload(payload);
  if (!parsed || !a.ctx.local)
    return doc;
  const auto& key = *parsed;
  auto p = a.ctx.local->probe(key);
  // Its lifecycle on this node, newest first: this activation's start, then
  // how the earlier ones ended, as far as the node's rings still hold them
  // (the last 256 passivations and evictions, the last 64 crashes).
  auto lifecycle = njson::array();
  if (p)
    lifecycle.push_back({{"event", "activated"}, {"at", protocol::format_rfc3339(p->activated_ms * 1000)}});
  for (const auto& e : a.ctx.local->lifecycle(key)) {
    using ev = runtime::lifecycle_event;
    njson item{{"event",
                e.what == ev::crashed     ? "crashed"
                  : e.what == ev::evicted ? "evicted"
                                          : "passivated"},
               {"at", protocol::format_rfc3339(e.at_ms * 1000)}};
    if (!e.reason.empty())
      item["reason"] = e.reason;
    lifecycle.push_back(std::move(item));
  }
  doc["lifecycle"] = std::move(lifecycle);
  if (p) {
    doc["live"] = true;
    doc["commandsRouted"] = p->routed;
    doc["idleMs"] = p->idle_ms;
    doc["mailboxDepth"] = p->depth;
    // The last ops it handled, newest first (a zero byte: fewer than 8 yet).
    auto ops = njson::array();
    for (auto packed = p->last_ops; packed != 0 && (packed & 0xff) != 0; packed >>= 8)
      ops.push_back(op_name(static_cast<op>(packed & 0xff)));
    doc["lastHandled"] = std::move(ops);
  }
  return doc;
}

namespace {

njson placement_of(const api_core& a, const std::string& tid) {
  if (!a.ctx.cluster)
    return {{"shard", runtime::cluster::shard_of(tid)}, {"owner", a.opts.node_name}, {"epoch", 0}};
  auto p = a.ctx.cluster->placement(tid);
  return {{"shard", p.shard}, {"owner", p.owner.empty() ? njson(nullptr) : njson(p.owner)}, {"epoch", p.epoch}};
}

/// The calls of the tenant's credentials, added over every node that
/// answered them: the last minute (per second too) and since each node first
/// counted the tenant, and the last minute by node.
njson requests_of(const gathered& g) {
  std::map<std::string, std::uint64_t> minute, total;
  njson by_node = njson::object();
  std::int64_t window = 0;
  for (const auto& n : g.answers) {
    const auto& t = object_at(n, "traffic");
    if (t.empty())
      continue;
    window = std::max(window, t.value("windowSeconds", std::int64_t{0}));
    for (const auto& [k, v] : object_at(t, "lastMinute").items())
      minute[k] += v.get<std::uint64_t>();
    for (const auto& [k, v] : object_at(t, "total").items())
      total[k] += v.get<std::uint64_t>();
    by_node[n.value("nodeName", std::string{})] = object_at(t, "lastMinute").value("requests", std::uint64_t{0});
  }
  auto per_s = [window](std::uint64_t n) {
    return window > 0 ? std::round(static_cast<double>(n) / static_cast<double>(window) * 100) / 100 : 0.0;
  };
  njson last{{"windowSeconds", window},
             {"requests", minute["requests"]},
             {"clientErrors", minute["clientErrors"]},
             {"serverErrors", minute["serverErrors"]},
             {"rateLimited", minute["rateLimited"]},
             {"quotaExceeded", minute["quotaExceeded"]},
             {"requestsPerSecond", per_s(minute["requests"])},
             {"errorsPerSecond", per_s(minute["clientErrors"] + minute["serverErrors"])}};
  return {{"lastMinute", std::move(last)},
          {"total",
           {{"requests", total["requests"]},
            {"clientErrors", total["clientErrors"]},
            {"serverErrors", total["serverErrors"]},
            {"rateLimited", total["rateLimited"]},
            {"quotaExceeded", total["quotaExceeded"]}}},
          {"byNode", std::move(by_node)}};
}

/// The plan's rate against the owner's bucket; null when the plan sets no rate.
njson rate_limit_of(const api_core& a, const gathered& g, const std::string& plan) {
  auto policy = rate_policy_of(a.ctx.rules, plan, a.ctx.credential_rate_percent);
  if (!policy)
    return nullptr;
  njson tokens = nullptr;
  njson owner = nullptr;
  for (const auto& n : g.answers)
    if (const auto& b = object_at(n, "rateBucket"); !b.empty()) {
      tokens = b.value("full", false) ? policy->burst : b.value("tokens", 0.0);
      owner = n.value("nodeName", std::string{});
    }
  njson used = nullptr;
  if (tokens.is_number() && policy->burst > 0)
    used = std::round((1.0 - std::clamp(tokens.get<double>(), 0.0, policy->burst) / policy->burst) * 1000) / 1000;
  return {{"plan", plan},
          {"ratePerSecond", policy->rate},
          {"burst", policy->burst},
          {"credentialRatePerSecond", policy->credential_rate},
          {"tokensLeft", tokens.is_number() ? njson(std::floor(tokens.get<double>() * 100) / 100) : njson(nullptr)},
          {"burstUsed", used},
          {"reportedBy", owner}};
}

} // namespace

void tenant_page(api_core& a, std::shared_ptr<call> c) {
  a.with_existing_tenant(c, [&a, c](std::string tid) {
    auto placement = placement_of(a, tid);
    auto base = envelope(a, {});
    gather(a, "admin.tenant", tid, tenant_here(a, tid), [&a, c, tid, base, placement](gathered g) mutable {
      njson by_node = njson::object();
      njson by_kind = njson::object();
      std::int64_t live = 0;
      for (const auto& n : g.answers) {
        auto l = n.value("live", std::int64_t{0});
        live += l;
        if (l > 0)
          by_node[n.value("nodeName", std::string{})] = l;
        for (const auto& [k, v] : object_at(n, "byKind").items())
          by_kind[k] = by_kind.value(k, std::int64_t{0}) + v.get<std::int64_t>();
      }
      base["partial"] = !g.unanswered.empty();
      base["unanswered"] = g.unanswered;
      base["tenantId"] = tid;
      base["placement"] = placement;
      base["liveActors"] = {{"total", live}, {"byKind", by_kind}, {"byNode", by_node}};
      base["requests"] = requests_of(g);
      a.with_plan(c, tid, [&a, c, tid, base, g](const std::string& plan) mutable {
        base["rateLimit"] = rate_limit_of(a, g, plan);
        // Usage against the plan's limits: the tenant's own read (it counts
        // its users and the API calls metered this month).
        a.with_month_usage(c, tid, [&a, c, tid, base](std::int64_t now, std::int64_t metered) mutable {
          command cmd;
          cmd.what = op::usage;
          a.call_entity(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd),
                        [c, base, now, metered](entity_reply& r) mutable {
                          auto usage = njson::parse(entity_response(r, 200).body, nullptr, false);
                          if (!usage.is_discarded()) {
                            usage["monthApiCallsMetered"] = metered;
                            usage["asOf"] = protocol::format_rfc3339(now);
                            base["usage"] = std::move(usage);
                          }
                          c->respond(http::json(200, dump(base)));
                        });
        });
      });
    });
  });
}

void actor_page(api_core& a, std::shared_ptr<call> c) {
  auto parsed = actor_key_of(a, c);
  if (!parsed)
    return;
  const auto& key = *parsed;
  const auto& tid = key.tenant_id;
  const auto& id = key.id;
  auto payload = key_payload(key);
  njson doc{{"answeredBy", a.opts.node_name},
            {"kind", c->path["kind"]},
            {"id", id},
            {"tenantId", tid},
            {"placement", placement_of(a, tid)}};
  auto answer = [&a, c, key, doc](njson probe) mutable {
    doc["live"] = probe.value("live", false);
    doc["node"] = probe.contains("nodeName") ? probe["nodeName"] : njson(nullptr);
    doc["lifecycle"] = probe.value("lifecycle", njson::array());
    if (!doc["live"].get<bool>()) {
      doc["state"] = nullptr;
      c->respond(http::json(200, dump(doc)));
      return;
    }
    doc["commandsRouted"] = probe.value("commandsRouted", std::uint64_t{0});
    doc["idleMs"] = probe.value("idleMs", std::int64_t{0});
    doc["mailboxDepth"] = probe.value("mailboxDepth", std::uint64_t{0});
    doc["lastHandled"] = probe.value("lastHandled", njson::array());
    // Live: its state as it answers a read (which keeps it live a little longer).
    command cmd;
    cmd.what = op::get;
    cmd.inspect = true;
    a.call_entity(
      c, key, std::move(cmd),
      [c, doc](entity_reply& r) mutable {
        auto body = entity_response(r, 200).body;
        doc["stateTruncated"] = body.size() > state_cap;
        doc["state"] = body.size() > state_cap ? njson(body.substr(0, state_cap)) : njson::parse(body, nullptr, false);
        c->respond(http::json(200, dump(doc)));
      },
      true);
  };
  // The owner's directory is the one that knows.
  if (!a.ctx.cluster || a.ctx.cluster->owned_here(tid)) {
    answer(probe_here(a, payload));
    return;
  }
  ask_owner_json(a, c, tid, "admin.probe", payload, std::move(answer));
}

void ask_owner_json(api_core& a, const std::shared_ptr<call>& c, const std::string& tenant_id, std::string topic,
                    std::string payload, std::function<void(njson)> then) {
  a.ctx.cluster->ask_owner(tenant_id, std::move(topic), std::move(payload), gather_timeout,
                           [c, then = std::move(then)](std::optional<std::string> reply) {
                             auto doc = reply ? njson::parse(*reply, nullptr, false) : njson();
                             if (doc.is_discarded() || !doc.is_object()) {
                               auto r =
                                 api::problem(503, "owner-unavailable", "Owner unavailable",
                                              "the tenant's owner node did not answer; retry", c->req.request_id);
                               r.headers.emplace_back("Retry-After", "1");
                               c->respond(std::move(r));
                               return;
                             }
                             then(std::move(doc));
                           });
}

} // namespace colony::adapters::http::admin
