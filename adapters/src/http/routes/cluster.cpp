// GET /v1/cluster and GET /v1/cluster/placement/{tenantId} (platform): the
// membership view of the node that answers, and where a tenant lives. On a
// single node (no cluster-listen) the view is that node alone and every
// tenant is placed on it.
#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
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
                                    {"shards", runtime::cluster::shard_count}}})}};
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
    return;
  }
  auto v = a.ctx.cluster->view();
  auto members = nlohmann::json::array();
  for (const auto& m : v.members)
    members.push_back(
      {{"nodeName", m.node_name},
       {"incarnation", m.incarnation},
       {"status", m.status},
       {"address", m.address},
       {"http", m.http},
       {"leaseRemainingMs", m.lease_ms},
       {"shards", m.shards},
       {"connected", m.connected},
       {"deadReason", m.dead_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.dead_reason)}});
  doc = {{"clusterName", v.cluster_name}, {"clustering", true}, {"answeredBy", v.node_name},
         {"incarnation", v.incarnation},  {"status", v.status}, {"version", v.version},
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
  r.add("GET", "/v1/cluster", p::platform, cluster_view);
  r.add("GET", "/v1/cluster/placement/{tenantId}", p::platform, placement);
  r.add("POST", "/v1/cluster/debug/claim/{tenantId}", p::platform, force_claim);
}

} // namespace colony::adapters::http
