// The membership manager: one detached actor per node with its own
// PostgreSQL connection. Every renewal period it renews the lease, marks
// dead the members whose lease ran out, casts the suspicion votes the peer
// manager reported, reads the view and the shard table, turns the node
// active once it reaches every active peer, claims the shards it wins that
// have no live owner, hands off (a bounded number per round) those another
// active member wins, and publishes the new routing table.
#include <caf/all.hpp>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "colony/runtime/log.hpp"
#include "parts.hpp"

namespace colony::adapters::cluster {

namespace {

struct manager_state {
  std::shared_ptr<shared_state> st;
  std::unique_ptr<membership_table> db;
  caf::actor peers;
  runtime::entity_registry local;
  std::set<std::string> suspects;
  std::chrono::steady_clock::time_point join_started = std::chrono::steady_clock::now();
  bool rebalance_pending = false;
  bool stopping = false;
  std::chrono::steady_clock::time_point last_refresh{};
  static inline const char* name = "colony.cluster.manager";
};

using manager_actor = caf::stateful_actor<manager_state>;

template <class F>
void guarded(const char* what, F f) {
  try {
    f();
  } catch (const std::exception& e) {
    log::warn(std::string{"cluster: "} + what + " failed; retrying next round", {{"error", e.what()}});
  }
}

[[noreturn]] void fatal(const std::string& why) {
  log::error("cluster: this node must stop now", {{"reason", why}});
  log::flush();
  std::_Exit(75);
}

void metrics_of(const shared_state& st, const routing& r) {
  auto* m = st.metrics();
  if (m == nullptr)
    return;
  std::unordered_map<std::string, int> by_status{{"joining", 0}, {"active", 0}, {"draining", 0}, {"dead", 0}};
  for (const auto& mem : r.members)
    ++by_status[to_string(mem.state)];
  for (const auto& [s, n] : by_status)
    m->gauge("colony_cluster_members", "Members in this node's view of the cluster, by status", {{"status", s}}, n);
  int owned = 0;
  for (auto o : r.owner)
    owned += r.self >= 0 && o == r.self;
  m->gauge("colony_cluster_shards_owned", "Shards this node owns", {}, owned);
  auto t = r.placement_targets();
  m->gauge("colony_cluster_shards_moving", "Shards not yet on the member the placement rule names (this node's view)",
           {}, static_cast<double>(t.moving));
  m->gauge("colony_cluster_shards_unowned", "Shards without a live owner (this node's view)", {},
           static_cast<double>(t.unowned));
  m->gauge("colony_cluster_view_version", "Version of the membership view this node last read", {},
           static_cast<double>(r.version));
}

/// Publishes `next`; the activations of every shard whose owner is or was
/// this node and changed are ended (their state may be stale).
void publish(manager_actor* self, std::shared_ptr<routing> next) {
  auto& s = self->state;
  auto prev = s.st->table();
  std::vector<bool> changed(rc::shard_count, false);
  bool any = false;
  for (std::uint32_t i = 0; i < rc::shard_count; ++i) {
    bool was = prev->owned_here(i);
    bool is = next->owned_here(i);
    if (was != is || (is && prev->epoch[i] != next->epoch[i])) {
      changed[i] = true;
      any = true;
    }
  }
  std::shared_ptr<const routing> frozen = next;
  s.st->publish(frozen);
  if (any && s.local.router) {
    auto n = runtime::evict_where(s.local, [&](const std::string& tenant) { return changed[rc::shard_of(tenant)]; });
    if (n > 0)
      log::info("cluster: ended activations of shards that changed owner", {{"activations", static_cast<int>(n)}});
  }
  self->send(s.peers, view_atom::value, frozen);
  metrics_of(*s.st, *next);
}

std::vector<std::string> candidates(const routing& r, bool include_self) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < r.members.size(); ++i) {
    const auto& m = r.members[i];
    if (m.state == status::active && m.lease_ms > 0 && (include_self || static_cast<int>(i) != r.self))
      names.push_back(m.node_name);
  }
  return names;
}

const member* by_name(const routing& r, const std::string& name) {
  for (const auto& m : r.members)
    if (m.node_name == name && m.state == status::active)
      return &m;
  return nullptr;
}

/// Claims and hand-offs of one round. True if hand-offs remain.
bool rebalance(manager_actor* self, std::shared_ptr<routing>& r, bool leaving) {
  auto& s = self->state;
  if (r->self < 0 || s.st->fenced.load()) // a fenced node is on its way out: it takes nothing
    return false;
  auto mine = r->members[static_cast<std::size_t>(r->self)].state;
  auto names = candidates(*r, !leaving && mine == status::active);
  std::vector<std::uint32_t> claims;
  std::unordered_map<std::string, std::vector<std::uint32_t>> handoffs;
  std::size_t budget = leaving ? rc::shard_count : static_cast<std::size_t>(s.st->cfg().cluster_handoff_max);
  std::size_t planned = 0;
  bool more = false;
  for (std::uint32_t shard = 0; shard < rc::shard_count; ++shard) {
    auto best = rc::hrw_owner(shard, names);
    auto idx = r->owner[shard];
    bool owner_live = idx >= 0 && r->members[static_cast<std::size_t>(idx)].state != status::dead;
    if (!best)
      continue;
    const auto& want = names[*best];
    if (want == s.st->me().node_name) {
      if (!owner_live)
        claims.push_back(shard);
    } else if (idx == r->self) {
      if (planned < budget) {
        if (const auto* to = by_name(*r, want)) {
          handoffs[to->incarnation].push_back(shard);
          ++planned;
        }
      } else {
        more = true;
      }
    }
  }
  bool changed = false;
  if (!claims.empty()) {
    auto got = s.db->claim(claims);
    if (!got.empty()) {
      changed = true;
      log::info("cluster: claimed shards", {{"shards", static_cast<int>(got.size())}});
      if (auto* m = s.st->metrics())
        m->count("colony_cluster_shard_claims_total", "Shards this node claimed (no live owner)", {},
                 static_cast<double>(got.size()));
    }
  }
  for (const auto& [to, shards] : handoffs) {
    auto moved = s.db->hand_off(shards, to);
    if (!moved.empty()) {
      changed = true;
      // The new owner learns it now, not at its next round: requests the
      // old owner answers MOVED are served at once.
      if (auto link = s.st->link(to))
        self->send(link->gateway, refresh_atom::value);
      if (auto* m = s.st->metrics())
        m->count("colony_cluster_shard_handoffs_total", "Shards this node handed to their next owner", {},
                 static_cast<double>(moved.size()));
    }
  }
  if (leaving && names.empty()) {
    if (s.db->release_all() > 0)
      changed = true;
  }
  if (changed)
    r = s.db->read();
  return more;
}

void maybe_activate(manager_actor* self, std::shared_ptr<routing>& r) {
  auto& s = self->state;
  if (s.st->state.load() != status::joining || r->self < 0)
    return;
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < r->members.size(); ++i) {
    const auto& m = r->members[i];
    if (static_cast<int>(i) != r->self && m.state == status::active && m.lease_ms > 0 &&
        !s.st->connected(m.incarnation))
      missing.push_back(m.node_name);
  }
  auto waited = std::chrono::steady_clock::now() - s.join_started;
  if (!missing.empty() && waited < s.st->cfg().cluster_join_timeout)
    return;
  if (!missing.empty()) {
    // Orleans's rule: a node that cannot reach every active member must not
    // take shards (the others could not forward to it). Leave and let a
    // supervisor try again.
    std::string names;
    for (const auto& n : missing)
      names += (names.empty() ? "" : ",") + n;
    log::error("cluster: cannot reach every active member within cluster.join-timeout", {{"unreachable", names}});
    guarded("leaving after a failed join", [&] { s.db->set_status(status::dead, "join failed"); });
    fatal("the join failed");
  }
  s.db->set_status(status::active);
  s.st->state = status::active;
  log::info("cluster: joined; this node is active", {{"node", s.st->me().node_name}});
  r = s.db->read();
}

/// An operator's drain or undrain of this node, as its row in the table
/// says: the node's state follows (a SIGTERM drain is never undone). True if
/// it changed.
bool follow_own_row(manager_actor* self, const routing& r) {
  auto& s = self->state;
  if (r.self < 0 || s.stopping)
    return false;
  auto row = r.members[static_cast<std::size_t>(r.self)].state;
  auto now = s.st->state.load();
  if (now == status::active && row == status::draining) {
    s.st->state = status::draining;
    log::info("cluster: an operator drains this node; its shards go to the other members");
    return true;
  }
  if (now == status::draining && row == status::active) {
    s.st->state = status::active;
    log::info("cluster: an operator undrained this node; it takes its shards back");
    return true;
  }
  return false;
}

/// Claims and hand-offs run while the node is active, or drained by an
/// operator (then it only hands off: it is no candidate).
bool may_rebalance(const manager_state& s) {
  auto now = s.st->state.load();
  return !s.stopping && (now == status::active || now == status::draining);
}

/// Hand-offs remain after a round's budget: another round in 100 ms.
void again_soon(manager_actor* self, bool more) {
  auto& s = self->state;
  if (more && !s.rebalance_pending) {
    s.rebalance_pending = true;
    self->delayed_send(self, std::chrono::milliseconds(100), rebalance_atom::value);
  }
}

/// Reads the tables and publishes them; an operator's drain or undrain of
/// this node starts its hand-offs now.
void reread(manager_actor* self) {
  auto& s = self->state;
  auto r = s.db->read();
  bool more = follow_own_row(self, *r) && may_rebalance(s) && rebalance(self, r, false);
  publish(self, r);
  again_soon(self, more);
}

void round(manager_actor* self) {
  auto& s = self->state;
  if (!s.db->connected())
    s.db->connect();
  auto sent = steady_ns();
  if (!s.db->renew())
    fatal("declared dead in the membership table");
  s.st->renewed_sent_ns = sent;
  auto expired = s.db->expire(s.st->cfg().cluster_renew_interval);
  for (const auto& n : expired)
    log::warn("cluster: declared dead a member whose lease expired", {{"member", n}});
  auto suspects = std::move(s.suspects);
  s.suspects.clear();
  for (const auto& target : suspects)
    guarded("a suspicion vote", [&] {
      if (s.db->suspect(target))
        log::warn("cluster: a member was declared dead by suspicion votes", {{"incarnation", target}});
    });
  auto r = s.db->read();
  maybe_activate(self, r);
  follow_own_row(self, *r);
  bool more = false;
  if (may_rebalance(s))
    more = rebalance(self, r, false);
  publish(self, r);
  again_soon(self, more);
}

caf::behavior manager(manager_actor* self, std::shared_ptr<shared_state> st, std::unique_ptr<membership_table>* db,
                      caf::actor peers, runtime::entity_registry local) {
  auto& init = self->state;
  init.st = std::move(st);
  init.db = std::move(*db);
  init.peers = std::move(peers);
  init.local = std::move(local);
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) {
      auto& s = self->state;
      if (s.stopping)
        return;
      guarded("a membership round", [&] { round(self); });
      self->delayed_send(self, s.st->cfg().cluster_renew_interval, tick_atom::value);
    },
    [self](rebalance_atom) {
      auto& s = self->state;
      s.rebalance_pending = false;
      if (!may_rebalance(s))
        return;
      guarded("a rebalance", [&] {
        auto r = s.db->read();
        bool more = rebalance(self, r, false);
        publish(self, r);
        again_soon(self, more);
      });
    },
    [self](suspect_atom, const std::string& incarnation) {
      // Voted at once: a kill -9 is then declared within the probe budget,
      // not at the next round.
      auto& s = self->state;
      if (s.stopping || s.st->state.load() != status::active)
        return;
      guarded("a suspicion vote", [&] {
        if (!s.db->connected())
          return;
        if (s.db->suspect(incarnation)) {
          log::warn("cluster: a member was declared dead by suspicion votes", {{"incarnation", incarnation}});
          auto r = s.db->read();
          rebalance(self, r, false);
          publish(self, r);
        }
      });
    },
    [self](refresh_atom) {
      auto& s = self->state;
      auto now = std::chrono::steady_clock::now();
      if (s.stopping || now - s.last_refresh < std::chrono::milliseconds(20))
        return;
      s.last_refresh = now;
      guarded("a refresh", [&] {
        if (s.db->connected())
          reread(self);
      });
    },
    [self](force_atom, std::uint32_t shard) -> std::int64_t {
      auto& s = self->state;
      std::int64_t epoch = 0;
      guarded("a forced claim", [&] {
        epoch = s.db->force_claim(shard);
        publish(self, s.db->read());
      });
      return epoch;
    },
    [self](op_drain_atom, const std::string& node_name, bool on) -> drain_outcome {
      // An operator's drain or undrain of any member, written here; the
      // member follows at once (a refresh) or at its next round.
      auto& s = self->state;
      drain_outcome out;
      out.code = 503;
      out.error = "the membership table cannot be reached right now";
      if (s.stopping)
        return out;
      guarded("a drain request", [&] {
        if (!s.db->connected())
          s.db->connect();
        out = s.db->set_drain(node_name, on);
        if (!out.error.empty() || out.code == 200)
          return;
        if (out.incarnation != s.st->me().incarnation)
          if (auto link = s.st->link(out.incarnation))
            self->send(link->gateway, refresh_atom::value);
        reread(self);
      });
      return out;
    },
    [self](drain_atom) -> bool {
      // SIGTERM: draining (others stop choosing this node), every shard to
      // its next owner, then "left".
      auto& s = self->state;
      s.stopping = true;
      bool ok = true;
      try {
        auto sent = steady_ns();
        if (s.db->renew())
          s.st->renewed_sent_ns = sent;
        // Also when an operator drained it already: the row loses the
        // operator's reason, so no undrain can bring back a node that stops.
        if (s.st->state.load() != status::dead) {
          s.db->set_status(status::draining);
          s.st->state = status::draining;
        }
        // Peers may still hand shards to this node until they see it
        // draining: a few rounds.
        auto r = s.db->read();
        int left = 0;
        for (int round = 0; round < 5; ++round) {
          rebalance(self, r, true);
          r = s.db->read();
          publish(self, r);
          left = 0;
          for (auto o : r->owner)
            left += r->self >= 0 && o == r->self;
          if (left == 0)
            break;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (left > 0) {
          log::warn("cluster: shards still owned when leaving; they are released", {{"shards", left}});
          s.db->release_all();
        }
        s.db->set_status(status::dead, "left");
        s.st->state = status::dead;
        for (const auto& m : r->members) // the others need not wait for their next round
          if (auto link = s.st->link(m.incarnation))
            self->send(link->gateway, refresh_atom::value);
        log::info("cluster: left the cluster", {{"node", s.st->me().node_name}});
      } catch (const std::exception& e) {
        ok = false;
        log::warn("cluster: could not leave cleanly; the others will expire this node's lease", {{"error", e.what()}});
      }
      return ok;
    },
  };
}

} // namespace

caf::actor spawn_manager(caf::actor_system& sys, std::shared_ptr<shared_state> st, std::unique_ptr<membership_table> db,
                         caf::actor peers, runtime::entity_registry local) {
  // The table moves into the actor's state; a pointer to it keeps the
  // spawn arguments copyable.
  auto holder = std::make_shared<std::unique_ptr<membership_table>>(std::move(db));
  return sys.spawn<caf::detached>(
    [holder](manager_actor* self, std::shared_ptr<shared_state> s, caf::actor p, runtime::entity_registry l) {
      return manager(self, std::move(s), holder.get(), std::move(p), std::move(l));
    },
    std::move(st), std::move(peers), std::move(local));
}

} // namespace colony::adapters::cluster
