// GET /v1/cluster and GET /v1/cluster/placement/{tenantId} (platform): the
// membership view of the node that answers, and where a tenant lives. On a
// single node (no cluster-listen) the view is that node alone and every
// tenant is placed on it.
#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "colony/runtime/cluster.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::permission;

namespace {

void cluster_view(api_core& a, std::shared_ptr<call> c) {
  nlohmann::json doc;
  if (!a.ctx.cluster) {
    doc = {{"clusterName", nullptr},
           {"clustering", false},
           {"answeredBy", a.opts.node_name},
           {"version", 0},
           {"members",
            nlohmann::json::array({{{"nodeName", a.opts.node_name},
                                    {"status", "active"},
                                    {"http", a.opts.host + ":" + std::to_string(a.opts.port)},
                                    {"shards", runtime::cluster::shard_count},
                                    {"targetShards", runtime::cluster::shard_count}}})},
           {"shardsMoving", 0},
           {"shardsUnowned", 0}};
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
    return;
  }
  auto v = a.ctx.cluster->view();
  auto members = nlohmann::json::array();
  for (const auto& m : v.members)
    members.push_back({{"nodeName", m.node_name},
                       {"incarnation", m.incarnation},
                       {"status", m.status},
                       {"address", m.address},
                       {"http", m.http},
                       {"leaseRemainingMs", m.lease_ms},
                       {"shards", m.shards},
                       {"targetShards", m.target_shards},
                       {"connected", m.connected},
                       {"deadReason", m.dead_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.dead_reason)},
                       {"drainedBy", m.drained_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.drained_by)}});
  doc = {{"clusterName", v.cluster_name},
         {"clustering", true},
         {"answeredBy", v.node_name},
         {"incarnation", v.incarnation},
         {"status", v.status},
         {"version", v.version},
         {"shardsMoving", v.shards_moving},
         {"shardsUnowned", v.shards_unowned},
         {"members", std::move(members)}};
  c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
}

void placement(api_core& a, std::shared_ptr<call> c) {
  a.with_existing_tenant(c, [&a, c](std::string tid) {
    nlohmann::json doc;
    if (!a.ctx.cluster) {
      doc = {{"tenantId", tid}, {"shard", runtime::cluster::shard_of(tid)}, {"owner", a.opts.node_name}, {"epoch", 0}};
    } else {
      auto p = a.ctx.cluster->placement(tid);
      doc = {{"tenantId", tid},
             {"shard", p.shard},
             {"owner", p.owner.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.owner)},
             {"ownerIncarnation",
              p.owner_incarnation.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.owner_incarnation)},
             {"epoch", p.epoch}};
    }
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

} // namespace

// POST /v1/cluster/members/{nodeName}/drain and .../undrain (platform), and
// the console's POST /v1/admin/nodes/{nodeName}/drain and .../undrain: an
// operator moves a node's shards to the other active members without
// stopping it (202), or lets them come back. The answer is the member's
// status; GET /v1/cluster shows its shard count fall to 0. Audited.
void drain_member(api_core& a, std::shared_ptr<call> c, bool on) {
  auto name = c->path["nodeName"];
  c->audited_action = on ? "node.drain" : "node.undrain";
  c->audited_target = "node:" + name.substr(0, 100);
  if (!a.ctx.cluster) {
    c->respond(api::problem(409, "not-clustered", "Clustering is off",
                            "this node runs alone (no cluster-listen): there is nothing to drain to",
                            c->req.request_id));
    return;
  }
  auto cluster = a.ctx.cluster;
  a.bridges.post_blocking(c, [c, name, on, cluster](caf::event_based_actor*) {
    auto r = cluster->drain(name, on);
    if (!r.error.empty()) {
      static const std::map<int, std::pair<const char*, const char*>> kinds{
        {404, {"member-not-found", "No such member"}},
        {409, {"member-state-conflict", "Member state conflict"}},
        {503, {"cluster-unavailable", "Cluster unavailable"}}};
      auto it = kinds.find(r.code);
      auto [type, title] = it != kinds.end() ? it->second : std::pair{"internal-error", "Internal error"};
      auto resp = api::problem(r.code, type, title, r.error, c->req.request_id);
      if (r.code == 503)
        resp.headers.emplace_back("Retry-After", "1");
      c->respond(std::move(resp));
      return;
    }
    nlohmann::json doc{{"nodeName", name}, {"status", r.status}};
    c->respond(json(r.code, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

namespace {

// Test hook (debug.fault-injection only): this node takes the tenant's
// shard whatever its owner, as a split brain would: the old owner's next
// write must be refused by the fence.
void force_claim(api_core& a, std::shared_ptr<call> c) {
  if (!a.opts.fault_injection || !a.ctx.cluster) {
    c->respond(api::problem(404, "not-found", "Not found", "no such route", c->req.request_id));
    return;
  }
  auto tid = c->path["tenantId"];
  auto cluster = a.ctx.cluster;
  a.bridges.post_blocking(c, [c, tid, cluster](caf::event_based_actor*) {
    auto epoch = cluster->force_claim(tid);
    nlohmann::json doc{{"tenantId", tid}, {"shard", runtime::cluster::shard_of(tid)}, {"epoch", epoch}};
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

} // namespace

void add_cluster_routes(router& r) {
  using p = permission;
  r.add("GET", "/v1/cluster", p::observe, cluster_view);
  r.add("GET", "/v1/cluster/placement/{tenantId}", p::observe, placement);
  r.add("POST", "/v1/cluster/members/{nodeName}/drain", p::platform,
        [](api_core& a, std::shared_ptr<call> c) { drain_member(a, std::move(c), true); });
  r.add("POST", "/v1/cluster/members/{nodeName}/undrain", p::platform,
        [](api_core& a, std::shared_ptr<call> c) { drain_member(a, std::move(c), false); });
  r.add("POST", "/v1/cluster/debug/claim/{tenantId}", p::platform, force_claim);
}

} // namespace colony::adapters::http
