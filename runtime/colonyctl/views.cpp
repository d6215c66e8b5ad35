#include "views.hpp"

#include <algorithm>
#include <cstdio>

namespace colony::ctl {

using njson = nlohmann::json;

std::vector<std::string> table::lines() const {
  std::vector<std::size_t> width;
  for (const auto& r : rows_)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i)
        width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::vector<std::string> out;
  for (const auto& r : rows_) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::string cell(const njson& v) {
  if (v.is_null())
    return "-";
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  return v.dump();
}

std::string duration(std::int64_t s) {
  char buf[32];
  if (s >= 86400)
    std::snprintf(buf, sizeof buf, "%lldd%lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  else if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  return buf;
}

/// j[key] if it is an object, else an empty one (never a temporary: safe to iterate).
const njson& object_at(const njson& j, const char* key) {
  static const njson empty = njson::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

namespace {

void append(std::vector<std::string>& to, std::vector<std::string> more) {
  to.insert(to.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

std::string rate(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f/s", r);
  return buf;
}

} // namespace

std::vector<std::string> partial_note(const njson& doc) {
  std::vector<std::string> out;
  if (!doc.value("partial", false))
    return out;
  std::string line = "partial answer: no answer from";
  for (const auto& u : doc.value("unanswered", njson::array()))
    line += " " + u.value("nodeName", std::string{"?"}) + " (" + u.value("reason", std::string{}) + ")";
  out.push_back(std::move(line));
  return out;
}

std::vector<std::string> nodes_view(const njson& doc) {
  table t({"NODE", "STATUS", "VERSION", "UPTIME", "LEASE", "SHARDS", "TARGET", "ACTORS", "ANSWERED"});
  for (const auto& n : doc.value("nodes", njson::array())) {
    auto lease = n.value("leaseRemainingMs", njson());
    t.row({cell(n.value("nodeName", njson())), cell(n.value("status", njson())), cell(n.value("version", njson())),
           n.contains("uptimeSeconds") ? duration(n["uptimeSeconds"].get<std::int64_t>()) : "-",
           lease.is_number() ? std::to_string(lease.get<std::int64_t>()) + "ms" : "-", cell(n.value("shards", njson())),
           cell(n.value("targetShards", njson())), cell(n.value("liveActors", njson())),
           cell(n.value("answered", njson()))});
  }
  std::vector<std::string> out{"answered by " + cell(doc.value("answeredBy", njson())) +
                               (doc.value("membershipAgrees", true) ? "" : "; MEMBERSHIP VIEWS DISAGREE")};
  append(out, t.lines());
  append(out, partial_note(doc));
  return out;
}

std::vector<std::string> shards_view(const njson& doc) {
  table t({"NODE", "STATUS", "SHARDS", "TARGET", "CONNECTED"});
  for (const auto& m : doc.value("members", njson::array()))
    t.row({cell(m.value("nodeName", njson())), cell(m.value("status", njson())), cell(m.value("shards", njson())),
           cell(m.value("targetShards", njson())), cell(m.value("connected", njson(true)))});
  std::vector<std::string> out{"shards moving " + cell(doc.value("shardsMoving", njson(0))) + ", unowned " +
                               cell(doc.value("shardsUnowned", njson(0))) + " (answered by " +
                               cell(doc.value("answeredBy", njson())) + ")"};
  append(out, t.lines());
  return out;
}

std::vector<std::string> actors_view(const njson& doc, const std::map<std::string, std::vector<double>>& rates,
                                     bool show_rates) {
  std::vector<std::string> head{"KIND", "LIVE", "ACTIVATIONS", "PASSIVATIONS", "CRASHES"};
  if (show_rates)
    append(head, {"ACT/S", "PASS/S", "CRASH/S"});
  table kinds(head);
  for (const auto& k : doc.value("kinds", njson::array())) {
    auto name = k.value("kind", std::string{});
    std::vector<std::string> row{name, cell(k.value("live", njson())), cell(k.value("activations", njson())),
                                 cell(k.value("passivations", njson())), cell(k.value("crashes", njson()))};
    if (auto it = rates.find(name); it != rates.end() && it->second.size() == 3)
      append(row, {rate(it->second[0]), rate(it->second[1]), rate(it->second[2])});
    else if (show_rates)
      append(row, {"-", "-", "-"});
    kinds.row(std::move(row));
  }
  table tenants({"TENANT", "LIVE", "BY KIND", "NODES"});
  for (const auto& t : doc.value("topTenants", njson::array())) {
    std::string by, nodes;
    for (const auto& [k, v] : object_at(t, "byKind").items())
      if (v.get<std::int64_t>() > 0)
        by += (by.empty() ? "" : " ") + k + "=" + v.dump();
    for (const auto& n : t.value("nodes", njson::array()))
      nodes += (nodes.empty() ? "" : ",") + cell(n);
    tenants.row({cell(t.value("tenantId", njson())), cell(t.value("live", njson())), by, nodes});
  }
  std::vector<std::string> out = kinds.lines();
  out.emplace_back("");
  out.push_back("top tenants by live actors (" + cell(doc.value("tenantsLive", njson(0))) + " tenants live)");
  append(out, tenants.lines());
  append(out, partial_note(doc));
  return out;
}

std::vector<std::string> crashes_view(const njson& doc) {
  table t({"AT", "NODE", "KIND", "TENANT", "ID", "REASON"});
  for (const auto& c : doc.value("data", njson::array()))
    t.row({cell(c.value("at", njson())), cell(c.value("node", njson())), cell(c.value("kind", njson())),
           cell(c.value("tenantId", njson())), cell(c.value("id", njson())), cell(c.value("reason", njson()))});
  auto out = t.lines();
  append(out, partial_note(doc));
  return out;
}

namespace {

/// Seconds as milliseconds ("0.84 ms"), "-" for null.
std::string ms(const njson& seconds) {
  if (!seconds.is_number())
    return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", seconds.get<double>() * 1000);
  return buf;
}

/// A bucket's bound in microseconds as "<=2.1s", "<=512us"; "-" for null.
std::string wait(const njson& us) {
  if (!us.is_number())
    return "-";
  auto v = us.get<double>();
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "<=%.1fs", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "<=%.1fms", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "<=%.0fus", v);
  return buf;
}

} // namespace

std::vector<std::string> mailboxes_view(const njson& doc) {
  table kinds(
    {"KIND", "LIVE", "NON-EMPTY", "QUEUED", "P50", "P99", "MAX", "SAMPLED", "WAIT P50", "WAIT P99", "WAIT MAX"});
  for (const auto& k : doc.value("kinds", njson::array())) {
    const auto& w = object_at(k, "queueingWindow");
    kinds.row({cell(k.value("kind", njson())), cell(k.value("live", njson())), cell(k.value("nonEmpty", njson())),
               cell(k.value("queued", njson())), cell(k.value("p50", njson())), cell(k.value("p99", njson())),
               cell(k.value("max", njson())), cell(w.value("samples", njson(0))), wait(w.value("p50Us", njson())),
               wait(w.value("p99Us", njson())), wait(w.value("maxUs", njson()))});
  }
  auto out = kinds.lines();
  out.emplace_back("");
  out.push_back("deepest mailboxes (" + cell(doc.value("growing", njson(0))) + " growing over the last " +
                cell(doc.value("windowMs", njson(0))) + " ms)");
  table deep({"DEPTH", "BEFORE", "GROWING", "NODE", "KIND", "TENANT", "ID"});
  for (const auto& d : doc.value("deepest", njson::array()))
    deep.row({cell(d.value("depth", njson())), cell(d.value("depthBefore", njson())),
              d.value("growing", false) ? "yes" : "no", cell(d.value("node", njson())), cell(d.value("kind", njson())),
              cell(d.value("tenantId", njson())), cell(d.value("id", njson()))});
  append(out, deep.lines());
  append(out, partial_note(doc));
  return out;
}

std::vector<std::string> stores_view(const njson& doc) {
  const auto& totals = object_at(doc, "totals");
  char oldest[32];
  std::snprintf(oldest, sizeof oldest, "%.1f s", totals.value("outboxOldestAgeSeconds", 0.0));
  std::vector<std::string> out{"store " + cell(doc.value("store", njson())) + "; outbox backlog " +
                               cell(totals.value("outboxBacklog", njson(0))) + ", oldest " + oldest +
                               "; consumer lag " + cell(totals.value("consumerLag", njson(0))) + "; webhook backlog " +
                               cell(totals.value("webhookBacklog", njson(0))) + " (quantiles since each node started)"};
  table t({"NODE", "COMMITS", "P50", "P99", "BATCH", "OUTBOX", "PUBLISHED", "KAFKA", "LAG", "WEBHOOKS"});
  for (const auto& n : doc.value("nodes", njson::array())) {
    const auto& commit = object_at(object_at(n, "store"), "commitSeconds");
    const auto& batch = object_at(object_at(n, "store"), "batchSize");
    const auto& outbox = object_at(n, "outbox");
    const auto& kafka = object_at(n, "kafka");
    auto batches = batch.value("count", std::int64_t{0});
    char mean[32] = "-";
    if (batches > 0)
      std::snprintf(mean, sizeof mean, "%.1f", batch.value("sum", 0.0) / static_cast<double>(batches));
    std::string hooks;
    for (const auto& [k, v] : object_at(object_at(n, "webhooks"), "attempts").items())
      hooks += (hooks.empty() ? "" : " ") + k + "=" + v.dump();
    auto configured = kafka.value("configured", false);
    t.row({cell(n.value("nodeName", njson())), cell(commit.value("count", njson(0))), ms(commit.value("p50", njson())),
           ms(commit.value("p99", njson())), mean, cell(outbox.value("backlog", njson(0))),
           cell(outbox.value("published", njson(0))),
           !configured ? "off" : (kafka.value("brokersUp", false) ? "up" : "down"),
           configured ? cell(kafka.value("consumerLagTotal", njson(0))) : "-", hooks});
  }
  append(out, t.lines());
  append(out, partial_note(doc));
  return out;
}

std::vector<std::string> tenant_view(const njson& doc) {
  std::vector<std::string> out;
  const auto& p = doc.value("placement", njson::object());
  const auto& live = doc.value("liveActors", njson::object());
  out.push_back("tenant   " + cell(doc.value("tenantId", njson())));
  out.push_back("owner    " + cell(p.value("owner", njson())) + " (shard " + cell(p.value("shard", njson())) +
                ", epoch " + cell(p.value("epoch", njson())) + ")");
  std::string by, nodes;
  for (const auto& [k, v] : object_at(live, "byKind").items())
    by += (by.empty() ? "" : " ") + k + "=" + v.dump();
  for (const auto& [k, v] : object_at(live, "byNode").items())
    nodes += (nodes.empty() ? "" : " ") + k + "=" + v.dump();
  out.push_back("live     " + cell(live.value("total", njson(0))) + " (" + by + ")" +
                (nodes.empty() ? "" : " on " + nodes));
  if (doc.contains("usage")) {
    const auto& u = doc["usage"];
    const auto& usage = u.value("usage", njson::object());
    const auto& limits = u.value("limits", njson::object());
    out.push_back("plan     " + cell(u.value("plan", njson())) + ", month " + cell(usage.value("month", njson())));
    table t({"USAGE", "USED", "LIMIT"});
    static const std::pair<const char*, const char*> pairs[] = {{"users", "maxUsers"},
                                                                {"apiCallsThisMonth", "apiCallsPerMonth"},
                                                                {"storageMb", "storageMb"},
                                                                {"aiRequestsThisMonth", "aiRequestsPerMonth"},
                                                                {"plugins", "maxPlugins"}};
    for (const auto& [used, limit] : pairs)
      t.row({used, cell(usage.value(used, njson(0))), cell(limits.value(limit, njson()))});
    t.row({"requestsPerSecond", "-", cell(limits.value("requestsPerSecond", njson()))});
    append(out, t.lines());
  }
  const auto& req = object_at(doc, "requests");
  const auto& minute = object_at(req, "lastMinute");
  const auto& total = object_at(req, "total");
  char rates[96];
  std::snprintf(rates, sizeof rates, "%.2f/s, errors %.2f/s over the last %llds",
                minute.value("requestsPerSecond", 0.0), minute.value("errorsPerSecond", 0.0),
                static_cast<long long>(minute.value("windowSeconds", std::int64_t{0})));
  out.push_back(std::string("requests ") + rates + " (its credentials, every node)");
  table r({"REQUESTS", "LAST MINUTE", "SINCE START"});
  for (const char* k : {"requests", "clientErrors", "serverErrors", "rateLimited", "quotaExceeded"})
    r.row({k, cell(minute.value(k, njson(0))), cell(total.value(k, njson(0)))});
  append(out, r.lines());
  if (const auto& rl = object_at(doc, "rateLimit"); !rl.empty())
    out.push_back("rate     " + cell(rl.value("ratePerSecond", njson())) + "/s, burst " +
                  cell(rl.value("burst", njson())) + ", " + cell(rl.value("tokensLeft", njson())) + " left at " +
                  cell(rl.value("reportedBy", njson())) + " (burst used " + cell(rl.value("burstUsed", njson())) + ")");
  append(out, partial_note(doc));
  return out;
}

std::vector<std::string> actor_view(const njson& doc) {
  std::vector<std::string> out;
  out.push_back("actor    " + cell(doc.value("kind", njson())) + "/" + cell(doc.value("id", njson())) + " of tenant " +
                cell(doc.value("tenantId", njson())));
  const auto& p = doc.value("placement", njson::object());
  out.push_back("owner    " + cell(p.value("owner", njson())) + " (shard " + cell(p.value("shard", njson())) + ")");
  bool live = doc.value("live", false);
  out.push_back("live     " + std::string(live ? "yes, on " + cell(doc.value("node", njson())) : "no"));
  if (live) {
    out.push_back("routed   " + cell(doc.value("commandsRouted", njson())) + " commands, idle " +
                  cell(doc.value("idleMs", njson())) + " ms, mailbox " + cell(doc.value("mailboxDepth", njson())));
    std::string ops;
    for (const auto& o : doc.value("lastHandled", njson::array()))
      ops += (ops.empty() ? "" : " ") + cell(o);
    out.push_back("handled  " + (ops.empty() ? std::string("-") : ops) + " (newest first)");
    out.push_back("state    " + doc.value("state", njson()).dump(2));
  }
  for (const auto& e : doc.value("lifecycle", njson::array()))
    out.push_back("event    " + cell(e.value("at", njson())) + " " + cell(e.value("event", njson())) +
                  (e.contains("reason") ? ": " + cell(e["reason"]) : std::string{}));
  return out;
}

} // namespace colony::ctl
