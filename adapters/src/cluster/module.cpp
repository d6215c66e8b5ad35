// The cluster module (cluster-*, node-name): off while cluster-listen is
// empty. On: joins the membership table, publishes the gateway on the
// cluster port, arms the store's write fence, and puts the cluster router
// in front of the entity directory, so every caller (HTTP, timers, Kafka)
// reaches a tenant at its owner node. At SIGTERM it drains: shards to their
// next owners, then "left". It starts right after the entities and stops
// right before them. See docs/clustering.md.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "colony/adapters/cluster.hpp"
#include "colony/adapters/secrets.hpp"
#include "colony/protocol/time.hpp"
#include "parts.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;
using namespace cluster;

std::optional<std::string> host_port(const std::string& v, std::string* host, std::uint16_t* port) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return "'" + v + "' is not host:port";
  auto p = opt::parse_int(v.substr(colon + 1));
  if (!p || *p < 1 || *p > 65535)
    return "'" + v + "' has no port between 1 and 65535";
  *host = v.substr(0, colon);
  *port = static_cast<std::uint16_t>(*p);
  return std::nullopt;
}

/// The check of cluster-listen and cluster-advertise: empty, or host:port.
std::optional<std::string> empty_or_host_port(node_config&, const std::string& v) {
  std::string h;
  std::uint16_t p = 0;
  return v.empty() ? std::nullopt : host_port(v, &h, &p);
}

class service_impl final : public rc::cluster_service {
public:
  service_impl(caf::actor_system& sys, std::shared_ptr<shared_state> st, caf::actor manager, caf::actor peers,
               caf::actor asker)
    : sys_(sys), st_(std::move(st)), manager_(std::move(manager)), peers_(std::move(peers)), asker_(std::move(asker)) {}

  void broadcast(std::string topic, std::string payload) override {
    caf::anon_send(peers_, bcast_atom::value, std::move(topic), std::move(payload));
  }
  std::uint64_t subscribe(std::string topic, std::function<void(const std::string&)> fn) override {
    return st_->subscribe(std::move(topic), std::move(fn));
  }
  void unsubscribe(std::uint64_t id) override { st_->unsubscribe(id); }
  std::uint64_t serve(std::string topic,
                      std::function<void(const std::string&, std::function<void(std::string)>)> fn) override {
    return st_->serve(std::move(topic), std::move(fn));
  }

  bool owned_here(std::string_view tenant_id) const override {
    return st_->table()->owned_here(rc::shard_of(tenant_id));
  }

  void ask_owner(std::string tenant_id, std::string topic, std::string payload, std::chrono::milliseconds timeout,
                 std::function<void(std::optional<std::string>)> answer) override {
    auto t = st_->table();
    auto idx = t->owner[rc::shard_of(tenant_id)];
    std::optional<peer_link> link;
    if (idx >= 0 && idx != t->self)
      link = st_->link(t->members[static_cast<std::size_t>(idx)].incarnation);
    if (!link) {
      answer(std::nullopt);
      return;
    }
    auto job = std::make_shared<ask_job>(
      ask_job{link->gateway, std::move(topic), std::move(tenant_id), std::move(payload), timeout, std::move(answer)});
    caf::anon_send(asker_, std::move(job));
  }

  void ask_members(std::string topic, std::string payload, std::chrono::milliseconds timeout,
                   std::function<void(std::vector<rc::cluster_service::member_answer>)> done) override {
    using answer_t = rc::cluster_service::member_answer;
    struct gather {
      std::mutex mu;
      std::vector<answer_t> answers;
      std::size_t left = 0;
      std::function<void(std::vector<answer_t>)> done;
    };
    auto g = std::make_shared<gather>();
    g->done = std::move(done);
    auto t = st_->table();
    std::vector<std::pair<std::size_t, peer_link>> asks;
    for (std::size_t i = 0; i < t->members.size(); ++i) {
      const auto& m = t->members[i];
      if (static_cast<int>(i) == t->self || m.state == status::dead)
        continue;
      g->answers.push_back({m.node_name, std::nullopt, {}});
      if (auto link = st_->link(m.incarnation))
        asks.emplace_back(g->answers.size() - 1, std::move(*link));
      else
        g->answers.back().why = "not connected";
    }
    g->left = asks.size();
    if (asks.empty()) {
      g->done(std::move(g->answers));
      return;
    }
    for (auto& [slot, link] : asks) {
      auto job = std::make_shared<ask_job>(
        ask_job{link.gateway, topic, {}, payload, timeout, [g, slot](std::optional<std::string> a) {
                  std::unique_lock lock{g->mu};
                  auto& into = g->answers[slot];
                  if (a)
                    into.answer = std::move(a);
                  else
                    into.why = "no answer (timed out, or not serving it)";
                  if (--g->left > 0)
                    return;
                  auto all = std::move(g->answers);
                  lock.unlock();
                  g->done(std::move(all));
                }});
      caf::anon_send(asker_, std::move(job));
    }
  }

  std::int64_t force_claim(std::string_view tenant_id) override {
    if (!st_->cfg().fault_injection)
      return 0;
    std::int64_t epoch = 0;
    caf::scoped_actor self{sys_};
    self->request(manager_, std::chrono::seconds(5), force_atom::value, rc::shard_of(tenant_id))
      .receive([&](std::int64_t e) { epoch = e; }, [](caf::error&) {});
    return epoch;
  }

  rc::drain_result drain(std::string_view node_name, bool on) override {
    rc::drain_result out{503, "the membership manager did not answer in time", {}};
    caf::scoped_actor self{sys_};
    self->request(manager_, std::chrono::seconds(10), op_drain_atom::value, std::string{node_name}, on)
      .receive(
        [&](drain_outcome& o) {
          out = {o.code, std::move(o.error), std::move(o.status)};
        },
        [](caf::error&) {});
    return out;
  }

  rc::cluster_view view() const override {
    auto t = st_->table();
    rc::cluster_view v;
    v.cluster_name = st_->me().cluster;
    v.node_name = st_->me().node_name;
    v.incarnation = st_->me().incarnation;
    v.status = st_->fenced.load() ? "fenced" : to_string(st_->state.load());
    v.version = t->version;
    std::vector<std::int64_t> owned(t->members.size(), 0);
    for (auto o : t->owner)
      if (o >= 0)
        ++owned[static_cast<std::size_t>(o)];
    auto targets = t->placement_targets();
    v.shards_moving = targets.moving;
    v.shards_unowned = targets.unowned;
    for (std::size_t i = 0; i < t->members.size(); ++i) {
      const auto& m = t->members[i];
      rc::member_view mv;
      mv.node_name = m.node_name;
      mv.incarnation = m.incarnation;
      mv.status = to_string(m.state);
      mv.address = m.address;
      mv.http = m.http;
      mv.lease_ms = m.lease_ms;
      mv.shards = owned[i];
      mv.target_shards = targets.per_member[i];
      if (m.state == status::dead)
        mv.dead_reason = m.dead_reason;
      if (m.state == status::draining)
        mv.drained_by = m.dead_reason == drain_requested ? "operator" : "shutdown";
      mv.connected = static_cast<int>(i) == t->self || st_->connected(m.incarnation);
      v.members.push_back(std::move(mv));
    }
    return v;
  }

  rc::placement_view placement(std::string_view tenant_id) const override {
    auto t = st_->table();
    rc::placement_view p;
    p.shard = rc::shard_of(tenant_id);
    p.epoch = t->epoch[p.shard];
    if (auto idx = t->owner[p.shard]; idx >= 0) {
      p.owner = t->members[static_cast<std::size_t>(idx)].node_name;
      p.owner_incarnation = t->members[static_cast<std::size_t>(idx)].incarnation;
    }
    return p;
  }

private:
  caf::actor_system& sys_;
  std::shared_ptr<shared_state> st_;
  caf::actor manager_;
  caf::actor peers_;
  caf::actor asker_;
};

runtime::readiness_line line_of(const shared_state& st) {
  auto t = st.table();
  int owned = 0;
  for (auto o : t->owner)
    owned += t->self >= 0 && o == t->self;
  std::string where = " in cluster '" + st.me().cluster + "' as '" + st.me().node_name + "'";
  if (st.fenced.load())
    return {'-', "cluster: fenced" + where + " (the lease could not be renewed; the node stops)"};
  switch (st.state.load()) {
    case status::joining: return {'-', "cluster: not joined" + where + " (joining: connecting to the active members)"};
    case status::active:
      return {'+',
              "cluster: active" + where + "; " + std::to_string(t->members.size()) + " members in view, " +
                std::to_string(owned) + " shards owned"};
    case status::draining: return {'-', "cluster: draining" + where};
    case status::dead: return {'-', "cluster: left" + where};
  }
  return {'-', "cluster: unknown state"};
}

/// Chores on a cluster: each is the work of the node that owns its shard
/// (shard_of("chore:<name>")) while that node serves. A claim or hand-off of
/// the shard moves the chore; a node that stops serving (fenced, draining)
/// stops its chores at their next round. Logs each change, which the tests
/// and operators read.
class cluster_chores final : public runtime::singleton {
public:
  explicit cluster_chores(std::shared_ptr<shared_state> st) : st_(std::move(st)) {}

  bool granted(std::string_view chore) override {
    std::string name{chore};
    bool mine = st_->serving() && st_->table()->owned_here(rc::shard_of("chore:" + name));
    std::lock_guard lock{mu_};
    auto it = held_.try_emplace(name, false).first;
    if (it->second != mine) {
      it->second = mine;
      log::info(mine ? "cluster: this node runs a chore" : "cluster: this node no longer runs a chore",
                {{"chore", name}});
    }
    return mine;
  }

  /// The shards this node owns while it serves (none otherwise).
  std::optional<std::vector<std::int32_t>> shards() override {
    std::vector<std::int32_t> out;
    if (!st_->serving())
      return out;
    auto t = st_->table();
    for (std::uint32_t s = 0; s < rc::shard_count; ++s)
      if (t->owned_here(s))
        out.push_back(static_cast<std::int32_t>(s));
    return out;
  }

private:
  std::shared_ptr<shared_state> st_;
  std::mutex mu_;
  std::map<std::string, bool> held_;
};

class cluster_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "cluster"; }
  std::string_view title() const override { return "the cluster membership"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "cluster";
    r.add(m,
          opt::string("cluster-listen",
                      "host:port of the cluster port (CAF; must be on a private network: see docs/clustering.md); "
                      "empty: one node, no cluster",
                      &node_config::cluster_listen, empty_or_host_port));
    r.add(m,
          opt::string("cluster-advertise", "host:port other nodes dial to reach this one; empty: cluster-listen",
                      &node_config::cluster_advertise, empty_or_host_port));
    r.add(m,
          opt::string("cluster-name", "name of the cluster; nodes of another cluster are refused at the hello",
                      &node_config::cluster_name, opt::not_empty));
    r.add(m,
          opt::string("node-name",
                      "this node's name, stable across restarts (placement hashes it); empty: the host name",
                      &node_config::node_name));
    r.add(m,
          opt::secret("cluster.secret",
                      "shared secret every node proves in its hello (HMAC-SHA256); empty: no proof asked",
                      &node_config::cluster_secret));
    r.add(m,
          opt::duration("cluster.heartbeat", "CAF middleman heartbeat interval (the same on every node)",
                        std::chrono::milliseconds(100), std::chrono::seconds(60), &node_config::cluster_heartbeat));
    r.add(m,
          opt::duration("cluster.connection-timeout",
                        "silence after which CAF drops a peer connection (>= 3 x cluster.heartbeat, the same "
                        "on every node)",
                        std::chrono::milliseconds(300), std::chrono::minutes(5),
                        &node_config::cluster_connection_timeout));
    r.add(m,
          opt::duration("cluster.probe-interval", "how often each peer's gateway is probed",
                        std::chrono::milliseconds(100), std::chrono::minutes(1), &node_config::cluster_probe_interval));
    r.add(m,
          opt::duration("cluster.probe-timeout", "how long a probe may take", std::chrono::milliseconds(50),
                        std::chrono::minutes(1), &node_config::cluster_probe_timeout));
    r.add(m,
          opt::integer("cluster.missed-probes", "missed probes in a row before this node votes a peer suspect", 1, 100,
                       &node_config::cluster_missed_probes));
    r.add(m,
          opt::duration("cluster.vote-expiry", "how long a suspicion vote counts", std::chrono::seconds(1),
                        std::chrono::hours(1), &node_config::cluster_vote_expiry));
    r.add(m,
          opt::duration("cluster.lease",
                        "membership lease (database clock); a node that cannot renew it stops serving 2 s "
                        "before it ends and exits when it ends; others take its shards after it ends",
                        std::chrono::seconds(2), std::chrono::minutes(10), &node_config::cluster_lease));
    r.add(m,
          opt::duration("cluster.renew-interval", "how often the lease is renewed and the view re-read",
                        std::chrono::milliseconds(100), std::chrono::minutes(1), &node_config::cluster_renew_interval));
    r.add(m,
          opt::duration("cluster.join-timeout",
                        "longest a joining node waits to reach every active member; then it exits (code 75)",
                        std::chrono::seconds(1), std::chrono::hours(1), &node_config::cluster_join_timeout));
    r.add(m,
          opt::integer("cluster.handoff-max", "most shards handed to another node per rebalance round", 1, 4096,
                       &node_config::cluster_handoff_max));
    r.add(m,
          opt::integer("cluster.peer-max-in-flight", "most forwarded commands in flight to one peer (then 503)", 1,
                       1'000'000, &node_config::cluster_peer_max_in_flight));
    r.add(m,
          opt::duration("cluster.forward-timeout", "longest one forwarded command may take",
                        std::chrono::milliseconds(100), std::chrono::minutes(5),
                        &node_config::cluster_forward_timeout));
    r.add_check([](node_config& c) -> std::optional<std::string> {
      if (c.cluster_listen.empty())
        return std::nullopt;
      if (!c.store.starts_with("postgres"))
        return "--cluster-listen needs the PostgreSQL store (--store postgresql://...): SQLite serves one node only";
      if (c.cluster_connection_timeout < 3 * c.cluster_heartbeat)
        return "--cluster.connection-timeout must be at least 3 x --cluster.heartbeat";
      if (c.cluster_renew_interval * 2 > c.cluster_lease)
        return "--cluster.renew-interval must be at most half of --cluster.lease";
      return std::nullopt;
    });
  }

  void describe(const node_config& cfg, std::vector<log::field>& out) const override {
    out.emplace_back("cluster",
                     cfg.cluster_listen.empty() ? std::string{"off"} : cfg.cluster_name + " on " + cfg.cluster_listen);
    out.emplace_back("node", rc::node_name_of(cfg.node_name));
  }

  void system_config(caf::actor_system_config& c, const node_config& cfg) const override {
    if (cfg.cluster_listen.empty())
      return;
    // Off by default in CAF 0.17.6 and must match on every node.
    c.set("middleman.heartbeat-interval", caf::timespan{cfg.cluster_heartbeat});
    c.set("middleman.connection-timeout", caf::timespan{cfg.cluster_connection_timeout});
    c.set("middleman.app-identifiers", std::vector<std::string>{wire_version});
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    if (cfg.cluster_listen.empty()) {
      node.readiness->add([] { return runtime::readiness_line{'+', "cluster: off (one node)"}; });
      return;
    }
    std::string host, adv_host;
    std::uint16_t port = 0, adv_port = 0;
    host_port(cfg.cluster_listen, &host, &port);
    self_info me;
    me.cluster = cfg.cluster_name;
    me.node_name = rc::node_name_of(cfg.node_name);
    me.incarnation = protocol::new_uuid_v7();
    me.advertise = cfg.cluster_advertise.empty() ? cfg.cluster_listen : cfg.cluster_advertise;
    host_port(me.advertise, &adv_host, &adv_port);
    me.http = cfg.listen;
    me.generation = protocol::now_us() / 1000;
    if (auto box = node.find<const secret_box>())
      me.secrets_key_id = box->key_id();
    st_ = std::make_shared<shared_state>(me, cfg, node.metrics);

    auto db = std::make_unique<membership_table>(cfg.store, me, cfg);
    std::string last;
    for (int attempt = 0; attempt < 50 && !db->connected(); ++attempt) {
      try {
        db->connect();
      } catch (const std::exception& e) {
        last = e.what();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    if (!db->connected())
      throw runtime::start_error("cluster: cannot reach the membership tables in PostgreSQL: " + last, 1);

    local_ = node.entities;
    gateway_ = spawn_cluster_gateway(node.sys, st_, local_.router);
    auto published = node.sys.middleman().publish(gateway_, port, host.c_str(), true);
    if (!published) {
      caf::anon_send_exit(gateway_, caf::exit_reason::user_shutdown);
      throw runtime::start_error(
        "cannot listen on --cluster-listen " + cfg.cluster_listen + ": " + node.sys.render(published.error()), 2);
    }
    port_ = *published;
    try {
      db->join(caf::to_string(node.sys.node()));
    } catch (const std::exception& e) {
      node.sys.middleman().unpublish(gateway_, port_);
      caf::anon_send_exit(gateway_, caf::exit_reason::user_shutdown);
      throw runtime::start_error(std::string{"cluster: cannot join: "} + e.what(), 1);
    }
    st_->renewed_sent_ns = steady_ns();
    node.fence->arm(me.cluster, me.incarnation);
    peers_ = spawn_peers(node.sys, st_);
    asker_ = spawn_asker(node.sys);
    manager_ = spawn_manager(node.sys, st_, std::move(db), peers_, local_);
    caf::anon_send(peers_, manager_atom::value, manager_);
    caf::anon_send(gateway_, manager_atom::value, manager_);
    st_->set_manager(manager_);
    links_ = spawn_links(node.sys, st_, local_.router, static_cast<std::size_t>(runtime::usable_cores()));
    auto router = make_cluster_router(node.sys, st_, local_.router, links_);
    dispatcher_ = spawn_dispatcher(node.sys, router, cfg.request_timeout);
    node.entities = runtime::entity_registry{dispatcher_, router};
    node.chores->use(std::make_shared<cluster_chores>(st_));
    node.provide<rc::cluster_service>(std::make_shared<service_impl>(node.sys, st_, manager_, peers_, asker_));
    node.readiness->add([st = st_] { return line_of(*st); });
    start_watchdog();
    log::info("cluster: joining",
              {{"cluster", me.cluster},
               {"node", me.node_name},
               {"incarnation", me.incarnation},
               {"listen", cfg.cluster_listen},
               {"advertise", me.advertise}});
  }

  std::chrono::milliseconds stop_budget(const node_config& cfg) const override {
    return std::max(std::chrono::milliseconds(5000), cfg.shutdown_timeout);
  }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point deadline) override {
    if (!manager_)
      return;
    {
      caf::scoped_actor self{node.sys};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      self->request(manager_, std::max(left, std::chrono::milliseconds(100)), drain_atom::value)
        .receive([](bool) {},
                 [](caf::error& e) {
                   log::warn("cluster: the drain did not finish", {{"error", caf::to_string(e)}});
                 });
    }
    stop_watchdog_ = true;
    if (watchdog_.joinable())
      watchdog_.join();
    node.entities = local_;
    node.sys.middleman().unpublish(gateway_, port_);
    st_->clear_links();
    st_->set_manager(nullptr);
    for (auto* a : {&dispatcher_, &gateway_, &peers_, &manager_, &asker_}) {
      caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
      *a = nullptr;
    }
    for (auto& l : links_)
      caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
    links_.clear();
  }

private:
  /// The lease self-fence, on its own thread (the manager may be stuck in a
  /// database call): measured from when the last successful renewal was
  /// sent, on the monotonic clock.
  void start_watchdog() {
    watchdog_ = std::thread([this, st = st_] {
      auto lease = std::chrono::duration_cast<std::chrono::nanoseconds>(st->cfg().cluster_lease).count();
      auto margin = std::min<std::int64_t>(2'000'000'000, lease / 5);
      // Once fenced the node goes, even if a renewal gets through after
      // all: its entities stopped mid-flight and another node may be about
      // to take its shards. It exits at the lease of the last renewal sent
      // before the fence (a supervisor starts a new incarnation).
      std::int64_t fenced_renewal = 0;
      while (!stop_watchdog_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (st->state.load() == status::dead)
          continue;
        auto renewal = fenced_renewal != 0 ? fenced_renewal : st->renewed_sent_ns.load();
        auto elapsed = steady_ns() - renewal;
        if (elapsed > lease - margin && !st->fenced.exchange(true)) {
          fenced_renewal = renewal;
          log::error("cluster: the lease was not renewed in time; this node stops serving",
                     {{"since_renewal_ms", static_cast<std::int64_t>(elapsed / 1'000'000)}});
        }
        if (elapsed > lease) {
          log::error("cluster: the lease ran out; exiting so a supervisor starts a new incarnation");
          log::flush();
          std::_Exit(75);
        }
      }
    });
  }

  std::shared_ptr<shared_state> st_;
  runtime::entity_registry local_;
  caf::actor gateway_, peers_, manager_, dispatcher_, asker_;
  std::vector<caf::actor> links_;
  std::uint16_t port_ = 0;
  std::thread watchdog_;
  std::atomic<bool> stop_watchdog_{false};
};

} // namespace

std::unique_ptr<runtime::module> cluster_module() { return std::make_unique<cluster_module_impl>(); }

} // namespace colony::adapters
