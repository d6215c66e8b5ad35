// GET /v1/admin/* (platform): the introspection API under the console and
// colonyctl (docs/console.md). Cluster-wide answers are gathered by the
// answering node from every other live member (cluster_service::ask_members,
// each member answering what it serves for an admin.* topic about itself);
// every such answer names the node that answered and the members that did
// not ("partial"). Everything is computed when asked and bounded (top-N,
// the last crashes, one actor by its exact key): a node nobody watches does
// no work for these.
#include "groups.hpp"
#include "admin_gather.hpp"
#include "../core.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "colony/actors/kinds.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/cluster.hpp"
#include "colony/runtime/introspection.hpp"
#include "colony/runtime/metrics.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::permission;
using njson = nlohmann::json;

namespace admin {

std::optional<entity_kind> kind_named(std::string_view name) {
  for (const auto& k : builtin_kinds().all())
    if (k.name == name)
      return k.kind;
  return std::nullopt;
}

const njson& object_at(const njson& j, const char* key) {
  static const njson empty = njson::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

std::string dump(const njson& j) { return j.dump(-1, ' ', false, replace_invalid); }

// -- gathering ----------------------------------------------------------------------

void gather(api_core& a, std::string topic, std::string payload, njson local, std::function<void(gathered)> merge) {
  gathered g;
  g.answers.push_back(std::move(local));
  if (!a.ctx.cluster) {
    merge(std::move(g));
    return;
  }
  a.ctx.cluster->ask_members(
    std::move(topic), std::move(payload), gather_timeout,
    [g = std::move(g),
     merge = std::move(merge)](std::vector<runtime::cluster::cluster_service::member_answer> all) mutable {
      for (auto& m : all) {
        njson parsed = m.answer ? njson::parse(*m.answer, nullptr, false) : njson();
        if (parsed.is_discarded() || parsed.is_null())
          g.unanswered.push_back({{"nodeName", m.node_name}, {"reason", m.answer ? "unreadable answer" : m.why}});
        else
          g.answers.push_back(std::move(parsed));
      }
      merge(std::move(g));
    });
}

njson envelope(const api_core& a, const gathered& g) {
  return {{"answeredBy", a.opts.node_name}, {"partial", !g.unanswered.empty()}, {"unanswered", g.unanswered}};
}

} // namespace admin

using namespace admin;

namespace {

// -- what each node answers about itself ------------------------------------------

njson node_self(const api_core& a) {
  njson doc{{"nodeName", a.opts.node_name},
            {"version", a.ctx.version},
            {"startedAt", protocol::format_rfc3339(a.started_us)},
            {"uptimeSeconds", (protocol::now_us() - a.started_us) / 1'000'000},
            {"http", a.opts.host + ":" + std::to_string(a.opts.port)}};
  std::int64_t live = 0;
  if (a.ctx.local)
    for (const auto& k : a.ctx.local->take_census(0).kinds)
      live += k.live;
  doc["liveActors"] = live;
  if (a.ctx.cluster) {
    auto v = a.ctx.cluster->view();
    auto active = njson::array();
    for (const auto& m : v.members)
      if (m.status == "active")
        active.push_back(m.node_name);
    std::sort(active.begin(), active.end());
    doc["membershipVersion"] = v.version;
    doc["activeMembers"] = std::move(active);
  }
  return doc;
}

njson node_census(const api_core& a, std::size_t top) {
  njson doc{{"nodeName", a.opts.node_name}, {"kinds", njson::array()}, {"topTenants", njson::array()}};
  if (!a.ctx.local)
    return doc;
  auto c = a.ctx.local->take_census(top);
  for (const auto& k : c.kinds)
    doc["kinds"].push_back({{"kind", to_string(k.kind)},
                            {"live", k.live},
                            {"activations", k.activations},
                            {"passivations", k.passivations},
                            {"crashes", k.crashes}});
  for (const auto& t : c.top_tenants) {
    njson by = njson::object();
    for (const auto& k : builtin_kinds().all()) // the kinds it has live actors of
      if (auto n = t.by_kind[static_cast<std::size_t>(k.kind) % max_kinds]; n > 0)
        by[k.name] = n;
    doc["topTenants"].push_back({{"tenantId", t.tenant_id}, {"live", t.total}, {"byKind", std::move(by)}});
  }
  doc["tenantsLive"] = c.tenants_live;
  return doc;
}

njson node_crashes(const api_core& a) {
  auto out = njson::array();
  if (a.ctx.local)
    for (const auto& r : a.ctx.local->recent_crashes())
      out.push_back({{"kind", to_string(r.kind)},
                     {"tenantId", r.tenant_id},
                     {"id", r.id},
                     {"reason", r.reason},
                     {"node", a.opts.node_name},
                     {"at", protocol::format_rfc3339(r.at_ms * 1000)}});
  return out;
}

/// Sampled queueing times (wait_histogram counts, summed over nodes by the
/// gatherer): how many, and p50/p99/max in microseconds as the upper bound
/// of the bucket the rank falls in (null past the last finite bound, ~17 s).
njson waits_doc(const std::vector<std::uint64_t>& counts) {
  std::uint64_t total = 0;
  for (auto n : counts)
    total += n;
  auto bound = [&](std::size_t b) -> njson {
    return b + 1 >= wait_histogram::n ? njson(nullptr) : njson(std::uint64_t{1} << b);
  };
  auto quantile = [&](double q) -> njson {
    auto rank = q * static_cast<double>(total);
    std::uint64_t cum = 0;
    for (std::size_t b = 0; b < counts.size(); ++b) {
      cum += counts[b];
      if (counts[b] > 0 && static_cast<double>(cum) >= rank)
        return bound(b);
    }
    return nullptr;
  };
  njson max = nullptr;
  for (std::size_t b = counts.size(); b-- > 0;)
    if (counts[b] > 0) {
      max = bound(b);
      break;
    }
  if (total == 0)
    return {{"samples", 0}, {"p50Us", nullptr}, {"p99Us", nullptr}, {"maxUs", nullptr}};
  return {{"samples", total}, {"p50Us", quantile(0.5)}, {"p99Us", quantile(0.99)}, {"maxUs", max}};
}

/// This node's mailbox depths: per kind the buckets (merged by the gatherer),
/// and its deepest activations.
njson node_mailboxes(const api_core& a, std::size_t top) {
  njson doc{{"nodeName", a.opts.node_name}, {"kinds", njson::array()}, {"deepest", njson::array()}};
  if (!a.ctx.local)
    return doc;
  auto m = a.ctx.local->mailboxes(top);
  doc["windowMs"] = m.window_ms;
  for (const auto& k : m.kinds) {
    auto buckets = njson::array();
    for (const auto& [le, n] : k.buckets)
      buckets.push_back({le, n});
    doc["kinds"].push_back({{"kind", to_string(k.kind)},
                            {"live", k.live},
                            {"nonEmpty", k.non_empty},
                            {"queued", k.queued},
                            {"max", k.max},
                            {"buckets", std::move(buckets)},
                            {"waits", k.waits},
                            {"waitsWindow", k.waits_window}});
  }
  for (const auto& d : m.deepest)
    doc["deepest"].push_back({{"kind", to_string(d.kind)},
                              {"tenantId", d.tenant_id},
                              {"id", d.id},
                              {"node", a.opts.node_name},
                              {"depth", d.depth},
                              {"depthBefore", d.depth_before ? njson(*d.depth_before) : njson(nullptr)},
                              {"growing", d.growing},
                              {"commandsRouted", d.routed},
                              {"idleMs", d.idle_ms}});
  return doc;
}

/// A histogram as counted since the node started: count, sum, estimated
/// p50/p99 (the upper bound of the bucket the rank falls in; null past the
/// last finite bound), and the cumulative buckets, so that a watcher can
/// take the difference of two answers for a window of its own.
njson histogram_doc(const runtime::metrics::sample& s) {
  auto quantile = [&](double q) -> njson {
    if (s.count == 0)
      return nullptr;
    auto rank = q * static_cast<double>(s.count);
    for (const auto& [le, cum] : s.buckets)
      if (std::isfinite(le) && static_cast<double>(cum) >= rank)
        return le;
    return nullptr;
  };
  auto buckets = njson::array();
  for (const auto& [le, cum] : s.buckets)
    if (std::isfinite(le))
      buckets.push_back({le, cum});
  return {{"count", s.count}, {"sum", s.value}, {"p50", quantile(0.5)}, {"p99", quantile(0.99)}, {"buckets", buckets}};
}

/// The stores, the outbox, Kafka and webhooks as this node's metrics have them.
njson node_stores(const api_core& a) {
  static const std::vector<std::string> families{"colony_store_commit_duration_seconds",
                                                 "colony_store_commit_batch_size",
                                                 "colony_outbox_backlog_events",
                                                 "colony_outbox_oldest_event_age_seconds",
                                                 "colony_events_published_total",
                                                 "colony_kafka_brokers_up",
                                                 "colony_kafka_consumer_lag",
                                                 "colony_webhook_attempts_total",
                                                 "colony_timers_fired_total"};
  njson commit = histogram_doc({}), batch = histogram_doc({});
  double backlog = 0, age = 0, published = 0, brokers_up = 0, timers = 0;
  std::int64_t lag_total = 0;
  auto lag = njson::array();
  njson attempts = {{"delivered", 0}, {"retry", 0}, {"dead", 0}};
  if (a.ctx.metrics)
    for (const auto& m : a.ctx.metrics->read(families)) {
      auto label = [&](const char* name) {
        for (const auto& [k, v] : m.series_labels)
          if (k == name)
            return v;
        return std::string{};
      };
      if (m.family == "colony_store_commit_duration_seconds")
        commit = histogram_doc(m);
      else if (m.family == "colony_store_commit_batch_size")
        batch = histogram_doc(m);
      else if (m.family == "colony_outbox_backlog_events")
        backlog = m.value;
      else if (m.family == "colony_outbox_oldest_event_age_seconds")
        age = m.value;
      else if (m.family == "colony_events_published_total")
        published = m.value;
      else if (m.family == "colony_kafka_brokers_up")
        brokers_up = m.value;
      else if (m.family == "colony_timers_fired_total")
        timers = m.value;
      else if (m.family == "colony_webhook_attempts_total")
        attempts[label("outcome")] = static_cast<std::int64_t>(m.value);
      else if (m.family == "colony_kafka_consumer_lag") {
        auto n = static_cast<std::int64_t>(m.value);
        lag_total += n;
        lag.push_back({{"topic", label("topic")}, {"partition", std::atoi(label("partition").c_str())}, {"lag", n}});
      }
    }
  std::sort(lag.begin(), lag.end(), [](const njson& x, const njson& y) { return x["partition"] < y["partition"]; });
  return {{"nodeName", a.opts.node_name},
          {"store", {{"commitSeconds", commit}, {"batchSize", batch}}},
          {"outbox",
           {{"backlog", static_cast<std::int64_t>(backlog)},
            {"oldestAgeSeconds", age},
            {"published", static_cast<std::int64_t>(published)}}},
          {"kafka",
           {{"configured", a.ctx.kafka},
            {"brokersUp", a.ctx.kafka ? njson(brokers_up > 0) : njson(nullptr)},
            {"consumerLag", lag},
            {"consumerLagTotal", lag_total}}},
          {"webhooks", {{"attempts", attempts}}},
          {"timersFired", static_cast<std::int64_t>(timers)}};
}

/// node_stores and this node's webhook backlog, read from the store: the
/// pending deliveries of the shards this node sends (all of them on one
/// node); null when the store did not answer.
void node_stores_with_backlog(api_core& a, std::function<void(njson)> done) {
  auto doc = std::make_shared<njson>(node_stores(a));
  webhook_op op;
  op.what = webhook_op::kind::backlog;
  op.now_us = protocol::now_us();
  if (a.ctx.chores)
    if (auto mine = a.ctx.chores->shards()) {
      op.scope.all = false;
      op.scope.shards = std::move(*mine);
      op.scope.unsharded = a.ctx.chores->granted("webhooks"); // the rows from before deliveries had a shard
    }
  auto c = std::make_shared<call>();
  c->route = "admin.stores";
  c->done = [doc, done](api_response) { // the store could not be asked
    (*doc)["webhooks"]["backlog"] = nullptr;
    done(std::move(*doc));
  };
  a.ask_store_raw<webhook_result>(
    c,
    [doc, done, now = op.now_us](webhook_result& r) {
      (*doc)["webhooks"]["backlog"] = r.status != store_status::ok
        ? njson(nullptr)
        : njson{{"pending", r.pending},
                {"dueNow", r.due_now},
                {"oldestAgeSeconds",
                 r.oldest_pending_us > 0
                   ? static_cast<double>(std::max<std::int64_t>(0, now - r.oldest_pending_us)) / 1e6
                   : 0.0}};
      done(std::move(*doc));
    },
    webhook_atom::value, std::move(op));
}

} // namespace

// -- the gathered documents (also the console's snapshot) -----------------------------

void admin_nodes(api_core& a, std::function<void(njson)> done) {
  njson members = njson::array();
  if (a.ctx.cluster)
    for (const auto& m : a.ctx.cluster->view().members)
      members.push_back({{"nodeName", m.node_name},
                         {"status", m.status},
                         {"leaseRemainingMs", m.lease_ms},
                         {"shards", m.shards},
                         {"targetShards", m.target_shards},
                         {"connected", m.connected}});
  else
    members.push_back({{"nodeName", a.opts.node_name},
                       {"status", "active"},
                       {"leaseRemainingMs", nullptr},
                       {"shards", runtime::cluster::shard_count},
                       {"targetShards", runtime::cluster::shard_count},
                       {"connected", true}});
  auto base = envelope(a, {});
  gather(a, "admin.node", {}, node_self(a), [done, base, members](gathered g) mutable {
    std::map<std::string, njson> by_name;
    for (auto& n : g.answers)
      if (n.contains("nodeName") && n["nodeName"].is_string()) {
        // The name first: the right side of `=` is evaluated (moved from) before the left.
        auto name = n["nodeName"].get<std::string>();
        by_name[name] = std::move(n);
      }
    // Members that disagree about who is active (a view not yet refreshed,
    // or a partition): the answering node's view is the reference.
    const njson* reference = nullptr;
    if (auto it = by_name.find(base["answeredBy"].get<std::string>()); it != by_name.end())
      reference = &it->second;
    bool agree = true;
    auto out = njson::array();
    for (auto& m : members) {
      auto name = m["nodeName"].get<std::string>();
      // A dead incarnation of a restarted node shares its name: only live members answer.
      auto it = m["status"] == "dead" ? by_name.end() : by_name.find(name);
      m["answered"] = it != by_name.end();
      if (it != by_name.end()) {
        for (auto& [k, v] : it->second.items())
          if (k != "nodeName")
            m[k] = v;
        if (reference != nullptr && m.contains("activeMembers") && reference->contains("activeMembers") &&
            m["activeMembers"] != (*reference)["activeMembers"])
          agree = false;
      }
      out.push_back(std::move(m));
    }
    base["partial"] = !g.unanswered.empty();
    base["unanswered"] = g.unanswered;
    base["membershipAgrees"] = agree;
    base["nodes"] = std::move(out);
    done(std::move(base));
  });
}

void admin_actors(api_core& a, std::int64_t top, std::function<void(njson)> done) {
  auto base = envelope(a, {});
  gather(a, "admin.census", std::to_string(top), node_census(a, static_cast<std::size_t>(top)),
         [done, base, top](gathered g) mutable {
           std::map<std::string, njson> kinds; // kind → totals with byNode
           std::map<std::string, njson> tenants;
           std::int64_t tenants_live = 0;
           for (const auto& n : g.answers) {
             auto node = n.value("nodeName", std::string{});
             tenants_live += n.value("tenantsLive", std::int64_t{0});
             for (const auto& k : n.value("kinds", njson::array())) {
               auto name = k.value("kind", std::string{});
               auto& into = kinds[name];
               if (into.is_null())
                 into = {{"kind", name},      {"live", 0},    {"activations", 0},
                         {"passivations", 0}, {"crashes", 0}, {"byNode", njson::object()}};
               for (const char* f : {"live", "activations", "passivations", "crashes"})
                 into[f] = into[f].get<std::int64_t>() + k.value(f, std::int64_t{0});
               into["byNode"][node] = {{"live", k.value("live", std::int64_t{0})},
                                       {"activations", k.value("activations", std::int64_t{0})},
                                       {"passivations", k.value("passivations", std::int64_t{0})},
                                       {"crashes", k.value("crashes", std::int64_t{0})}};
             }
             for (const auto& t : n.value("topTenants", njson::array())) {
               auto id = t.value("tenantId", std::string{});
               auto& into = tenants[id];
               if (into.is_null())
                 into = {{"tenantId", id}, {"live", 0}, {"byKind", njson::object()}, {"nodes", njson::array()}};
               into["live"] = into["live"].get<std::int64_t>() + t.value("live", std::int64_t{0});
               for (const auto& [k, v] : object_at(t, "byKind").items())
                 into["byKind"][k] = into["byKind"].value(k, std::int64_t{0}) + v.get<std::int64_t>();
               into["nodes"].push_back(node);
             }
           }
           auto kinds_out = njson::array();
           for (auto& [_, k] : kinds)
             kinds_out.push_back(std::move(k));
           std::vector<njson> tops;
           for (auto& [_, t] : tenants)
             tops.push_back(std::move(t));
           std::sort(tops.begin(), tops.end(), [](const njson& x, const njson& y) {
             auto lx = x["live"].get<std::int64_t>(), ly = y["live"].get<std::int64_t>();
             return lx != ly ? lx > ly : x["tenantId"].get<std::string>() < y["tenantId"].get<std::string>();
           });
           if (tops.size() > static_cast<std::size_t>(top))
             tops.resize(static_cast<std::size_t>(top));
           base["partial"] = !g.unanswered.empty();
           base["unanswered"] = g.unanswered;
           base["kinds"] = std::move(kinds_out);
           base["topTenants"] = tops;
           base["tenantsLive"] = tenants_live;
           done(std::move(base));
         });
}

void admin_crashes(api_core& a, std::int64_t limit, std::function<void(njson)> done) {
  auto base = envelope(a, {});
  gather(a, "admin.crashes", {}, {{"nodeName", a.opts.node_name}, {"crashes", node_crashes(a)}},
         [done, base, limit](gathered g) mutable {
           std::vector<njson> all;
           for (auto& n : g.answers)
             for (auto& r : n.value("crashes", njson::array()))
               all.push_back(std::move(r));
           std::sort(all.begin(), all.end(), [](const njson& x, const njson& y) {
             return x.value("at", std::string{}) > y.value("at", std::string{});
           });
           if (all.size() > static_cast<std::size_t>(limit))
             all.resize(static_cast<std::size_t>(limit));
           base["partial"] = !g.unanswered.empty();
           base["unanswered"] = g.unanswered;
           base["data"] = all;
           done(std::move(base));
         });
}

void admin_mailboxes(api_core& a, std::int64_t top, std::function<void(njson)> done) {
  auto base = envelope(a, {});
  gather(a, "admin.mailboxes", std::to_string(top), node_mailboxes(a, static_cast<std::size_t>(top)),
         [done, base, top](gathered g) mutable {
           struct totals {
             std::int64_t live = 0, non_empty = 0, queued = 0;
             std::uint64_t max = 0;
             std::map<std::uint64_t, std::int64_t> buckets;
             std::vector<std::uint64_t> waits, waits_window;
             njson by_node = njson::object();
           };
           auto add = [](std::vector<std::uint64_t>& into, const njson& counts) {
             if (!counts.is_array())
               return;
             into.resize(std::max(into.size(), std::min(counts.size(), wait_histogram::n)));
             for (std::size_t b = 0; b < into.size() && b < counts.size(); ++b)
               if (counts[b].is_number_unsigned())
                 into[b] += counts[b].get<std::uint64_t>();
           };
           std::map<std::string, totals> kinds;
           std::vector<njson> deepest;
           std::int64_t window = 0;
           for (auto& n : g.answers) {
             auto node = n.value("nodeName", std::string{});
             window = std::max(window, n.value("windowMs", std::int64_t{0}));
             for (const auto& k : n.value("kinds", njson::array())) {
               auto& t = kinds[k.value("kind", std::string{})];
               t.live += k.value("live", std::int64_t{0});
               t.non_empty += k.value("nonEmpty", std::int64_t{0});
               t.queued += k.value("queued", std::int64_t{0});
               t.max = std::max(t.max, k.value("max", std::uint64_t{0}));
               for (const auto& b : k.value("buckets", njson::array()))
                 if (b.is_array() && b.size() == 2 && b[0].is_number_unsigned() && b[1].is_number_integer())
                   t.buckets[b[0].get<std::uint64_t>()] += b[1].get<std::int64_t>();
               add(t.waits, k.value("waits", njson::array()));
               add(t.waits_window, k.value("waitsWindow", njson::array()));
               std::vector<std::uint64_t> node_window;
               add(node_window, k.value("waitsWindow", njson::array()));
               t.by_node[node] = {{"live", k.value("live", std::int64_t{0})},
                                  {"nonEmpty", k.value("nonEmpty", std::int64_t{0})},
                                  {"queued", k.value("queued", std::int64_t{0})},
                                  {"max", k.value("max", std::uint64_t{0})},
                                  {"queueingWindow", waits_doc(node_window)}};
             }
             for (auto& d : n.value("deepest", njson::array()))
               deepest.push_back(std::move(d));
           }
           auto kinds_out = njson::array();
           for (auto& entry : kinds) {
             const auto& name = entry.first;
             auto& t = entry.second; // not a structured binding: clang 14 lets no lambda capture one
             // p50/p99 over every live activation of the kind, to the bucket's bound.
             auto quantile = [&t](double q) -> std::uint64_t {
               auto rank = q * static_cast<double>(t.live);
               std::int64_t cum = 0;
               for (const auto& [le, n] : t.buckets) {
                 cum += n;
                 if (static_cast<double>(cum) >= rank)
                   return le;
               }
               return t.max;
             };
             kinds_out.push_back({{"kind", name},
                                  {"live", t.live},
                                  {"nonEmpty", t.non_empty},
                                  {"queued", t.queued},
                                  {"p50", t.live > 0 ? njson(std::min(quantile(0.5), t.max)) : njson(nullptr)},
                                  {"p99", t.live > 0 ? njson(std::min(quantile(0.99), t.max)) : njson(nullptr)},
                                  {"max", t.max},
                                  {"queueing", waits_doc(t.waits)},
                                  {"queueingWindow", waits_doc(t.waits_window)},
                                  {"byNode", std::move(t.by_node)}});
           }
           std::stable_sort(deepest.begin(), deepest.end(), [](const njson& x, const njson& y) {
             return x.value("depth", std::uint64_t{0}) > y.value("depth", std::uint64_t{0});
           });
           if (deepest.size() > static_cast<std::size_t>(top))
             deepest.resize(static_cast<std::size_t>(top));
           std::int64_t growing = 0;
           for (const auto& d : deepest)
             growing += d.value("growing", false) ? 1 : 0;
           base["partial"] = !g.unanswered.empty();
           base["unanswered"] = g.unanswered;
           base["windowMs"] = window;
           base["kinds"] = std::move(kinds_out);
           base["deepest"] = deepest;
           base["growing"] = growing;
           done(std::move(base));
         });
}

void admin_stores(api_core& a, std::function<void(njson)> done) {
  auto base = envelope(a, {});
  base["store"] = a.ctx.store_kind;
  node_stores_with_backlog(a, [&a, done, base](njson local) {
    gather(a, "admin.stores", {}, std::move(local), [done, base](gathered g) mutable {
      std::sort(g.answers.begin(), g.answers.end(), [](const njson& x, const njson& y) {
        return x.value("nodeName", std::string{}) < y.value("nodeName", std::string{});
      });
      std::int64_t backlog = 0, lag = 0, commits = 0, webhooks = 0;
      double oldest = 0, webhooks_oldest = 0;
      for (const auto& n : g.answers) {
        const auto& o = object_at(n, "outbox");
        backlog += o.value("backlog", std::int64_t{0});
        oldest = std::max(oldest, o.value("oldestAgeSeconds", 0.0));
        lag += object_at(n, "kafka").value("consumerLagTotal", std::int64_t{0});
        commits += object_at(object_at(n, "store"), "commitSeconds").value("count", std::int64_t{0});
        const auto& hooks = object_at(object_at(n, "webhooks"), "backlog");
        webhooks += hooks.value("pending", std::int64_t{0});
        webhooks_oldest = std::max(webhooks_oldest, hooks.value("oldestAgeSeconds", 0.0));
      }
      base["partial"] = !g.unanswered.empty();
      base["unanswered"] = g.unanswered;
      base["totals"] = {
        {"commits", commits}, {"outboxBacklog", backlog},   {"outboxOldestAgeSeconds", oldest},
        {"consumerLag", lag}, {"webhookBacklog", webhooks}, {"webhookOldestAgeSeconds", webhooks_oldest}};
      base["nodes"] = std::move(g.answers);
      done(std::move(base));
    });
  });
}

namespace {

void nodes(api_core& a, std::shared_ptr<call> c) {
  admin_nodes(a, [c](njson doc) { c->respond(http::json(200, dump(doc))); });
}

void stores(api_core& a, std::shared_ptr<call> c) {
  admin_stores(a, [c](njson doc) { c->respond(http::json(200, dump(doc))); });
}

void actors_census(api_core& a, std::shared_ptr<call> c) {
  std::int64_t top = 10;
  if (a.int_param<std::int64_t>(c, "top", 1, 100, top))
    admin_actors(a, top, [c](njson doc) { c->respond(http::json(200, dump(doc))); });
}

void mailboxes(api_core& a, std::shared_ptr<call> c) {
  std::int64_t top = 10;
  if (a.int_param<std::int64_t>(c, "top", 1, 100, top))
    admin_mailboxes(a, top, [c](njson doc) { c->respond(http::json(200, dump(doc))); });
}

void crashes(api_core& a, std::shared_ptr<call> c) {
  std::int64_t limit = 20;
  if (a.int_param<std::int64_t>(c, "limit", 1, static_cast<std::int64_t>(runtime::crash_ring), limit))
    admin_crashes(a, limit, [c](njson doc) { c->respond(http::json(200, dump(doc))); });
}

} // namespace

void serve_admin_topics(api_core& a) {
  if (!a.ctx.cluster)
    return;
  auto& cl = *a.ctx.cluster;
  using reply_fn = std::function<void(std::string)>;
  a.admin_subs.push_back(
    cl.serve("admin.node", [&a](const std::string&, reply_fn reply) { reply(dump(node_self(a))); }));
  a.admin_subs.push_back(cl.serve("admin.census", [&a](const std::string& p, reply_fn reply) {
    auto top = std::clamp<std::size_t>(static_cast<std::size_t>(std::atoi(p.c_str())), 1, 100);
    reply(dump(node_census(a, top)));
  }));
  a.admin_subs.push_back(cl.serve("admin.mailboxes", [&a](const std::string& p, reply_fn reply) {
    auto top = std::clamp<std::size_t>(static_cast<std::size_t>(std::atoi(p.c_str())), 1, 100);
    reply(dump(node_mailboxes(a, top)));
  }));
  a.admin_subs.push_back(cl.serve("admin.crashes", [&a](const std::string&, reply_fn reply) {
    reply(dump(njson{{"nodeName", a.opts.node_name}, {"crashes", node_crashes(a)}}));
  }));
  a.admin_subs.push_back(
    cl.serve("admin.tenant", [&a](const std::string& p, reply_fn reply) { reply(dump(tenant_here(a, p))); }));
  a.admin_subs.push_back(cl.serve("admin.stores", [&a](const std::string&, reply_fn reply) {
    node_stores_with_backlog(a, [reply](njson doc) { reply(dump(doc)); });
  }));
  a.admin_subs.push_back(
    cl.serve("admin.probe", [&a](const std::string& p, reply_fn reply) { reply(dump(probe_here(a, p))); }));
  serve_passivate_topic(a);
}

void add_admin_routes(router& r) {
  using p = permission;
  r.add("GET", "/v1/admin/nodes", p::observe, nodes);
  r.add("GET", "/v1/admin/actors", p::observe, actors_census);
  r.add("GET", "/v1/admin/crashes", p::observe, crashes);
  r.add("GET", "/v1/admin/mailboxes", p::observe, mailboxes);
  r.add("GET", "/v1/admin/stores", p::observe, stores);
  r.add("GET", "/v1/admin/tenants/{tenantId}", p::observe, tenant_page);
  r.add("GET", "/v1/admin/actors/{kind}/{actorId}", p::observe, actor_page);
}

} // namespace colony::adapters::http
