// The router the node's callers use (HTTP, timers, Kafka commands): a
// tenant's shard owned here goes to the local directory (one hop, as on a
// single node); any other to a link, which sends it to the owner's gateway
// as a colony.v1.ClusterEnvelope and hands back the reply. A link batches:
// the commands it queued for one owner while its mailbox was being handled
// leave in one message (a ClusterBatch) at the flush that follows.
//
// When the owner cannot be reached the link waits (within the request
// deadline) for the routing table to name a reachable owner (the dead
// member's shards being claimed), and gives up with 503 otherwise. A
// forward that timed out has an unknown outcome and is never retried: the
// client retries with its Idempotency-Key. MOVED answers patch the table
// and are retried, at most three times.
#include <caf/all.hpp>

#include "colony/actors/wire.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/cluster.pb.h"
#include "colony/v1/entity.pb.h"
#include "parts.hpp"

namespace colony::adapters::cluster {

const char* to_string(status s) {
  switch (s) {
    case status::joining: return "joining";
    case status::active: return "active";
    case status::draining: return "draining";
    case status::dead: return "dead";
  }
  return "unknown";
}

const member* routing::find(const std::string& incarnation) const {
  for (const auto& m : members)
    if (m.incarnation == incarnation)
      return &m;
  return nullptr;
}

routing::targets routing::placement_targets() const {
  targets t;
  t.per_member.assign(members.size(), 0);
  std::vector<std::size_t> index; // candidate -> member
  std::vector<std::string> names;
  for (std::size_t i = 0; i < members.size(); ++i)
    if (members[i].state == status::active && members[i].lease_ms > 0) {
      names.push_back(members[i].node_name);
      index.push_back(i);
    }
  for (std::uint32_t shard = 0; shard < rc::shard_count; ++shard) {
    auto o = owner[shard];
    t.unowned += o < 0 || members[static_cast<std::size_t>(o)].state == status::dead;
    auto best = rc::hrw_owner(shard, names);
    if (!best) {
      ++t.moving;
      continue;
    }
    auto want = index[*best];
    ++t.per_member[want];
    t.moving += owner[shard] != static_cast<std::int16_t>(want);
  }
  return t;
}

void shared_state::patch(std::uint32_t shard, const std::string& owner_incarnation, std::int64_t epoch) {
  std::lock_guard lock{mu_};
  if (shard >= rc::shard_count || epoch <= routing_->epoch[shard])
    return;
  auto next = std::make_shared<routing>(*routing_);
  next->epoch[shard] = epoch;
  next->owner[shard] = -1;
  for (std::size_t i = 0; i < next->members.size(); ++i)
    if (next->members[i].incarnation == owner_incarnation)
      next->owner[shard] = static_cast<std::int16_t>(i);
  routing_ = std::move(next);
}

namespace {

using actors::command;
using actors::entity_key;
using actors::entity_reply;
using actors::errc;
using actors::keyed_call;

using clock = std::chrono::steady_clock;

entity_reply unavailable(std::string why) {
  return entity_reply::fail(actors::fail(errc::unavailable, std::move(why)));
}

/// A command on its way to its owner node.
struct job {
  entity_key key;
  command cmd;
  // Who waits: the answer of a keyed_call (an HTTP io thread), or an
  // actor's response promise wrapped in one.
  std::shared_ptr<actors::answer_once> answer;
  std::uint32_t shard = 0;
  bool known_new = false;
  clock::time_point started;
  clock::time_point deadline;
  // Waiting: when to try again. Sent: when its answer is overdue.
  clock::time_point wake;
  bool sent = false;
  int moved = 0;
  std::shared_ptr<std::atomic<int>> in_flight; // of the peer it was sent to
  std::string owner_name;
  std::string owner_incarnation; // the one it was sent to
};

/// A link: the forwarding of many keys' commands (the router spreads shards
/// over a few links), each a job in a map until its answer or its deadline.
/// One tick looks at them all, instead of a CAF timeout (an actor-clock
/// entry) and an actor per request.
struct link_state {
  std::shared_ptr<shared_state> st;
  std::shared_ptr<actors::entity_router> local;
  std::unordered_map<std::uint64_t, job> jobs;
  std::uint64_t next_id = 1;
  bool ticking = false;
  // Commands waiting for the next flush, by owner incarnation.
  struct outgoing {
    caf::actor gateway;
    v1::ClusterBatch batch;
    std::size_t bytes = 0;
  };
  std::unordered_map<std::string, outgoing> out;
  bool flushing = false;
  static inline const char* name = "colony.cluster.link";
};

using link_actor = caf::stateful_actor<link_state>;

constexpr auto link_tick = std::chrono::milliseconds(20);

void deliver(job& j, entity_reply r) { (*j.answer)(r); }

void count(link_actor* self, const char* outcome, const job& j) {
  if (auto* m = self->state.st->metrics()) {
    m->count("colony_cluster_forwarded_total", "Commands forwarded to their owner node, by outcome",
             {{"outcome", outcome}});
    m->observe("colony_cluster_forward_duration_seconds", "Round trip of a forwarded command", {},
               std::chrono::duration<double>(clock::now() - j.started).count());
  }
}

void ensure_ticking(link_actor* self) {
  if (!self->state.ticking) {
    self->state.ticking = true;
    self->delayed_send(self, link_tick, tick_atom::value);
  }
}

// A batch is sent at once past these; otherwise at the flush.
constexpr int batch_max_commands = 128;
constexpr std::size_t batch_max_bytes = 256 * 1024;
constexpr std::size_t command_max_bytes = 1024 * 1024;

void send_batch(link_actor* self, link_state::outgoing& o) {
  if (auto* m = self->state.st->metrics())
    m->count("colony_cluster_batches_total", "Messages between nodes carrying forwarded commands or their answers",
             {{"direction", "commands"}});
  self->send(o.gateway, fwd_atom::value, o.batch.SerializeAsString());
  o.batch.Clear();
  o.bytes = 0;
}

/// Sends every batch: what the mailbox held when the first of them was
/// queued has been handled by then, so one message carries all of it.
void flush(link_actor* self) {
  auto& s = self->state;
  s.flushing = false;
  for (auto it = s.out.begin(); it != s.out.end();) {
    if (it->second.batch.commands_size() == 0) {
      it = s.out.erase(it); // idle since the last flush (a peer gone, say)
      continue;
    }
    send_batch(self, it->second);
    ++it;
  }
}

/// Tries `j` again after `pause`.
void wait(link_actor* self, job& j, std::chrono::milliseconds pause) {
  j.sent = false;
  j.wake = clock::now() + pause;
  ensure_ticking(self);
}

/// One attempt at `j`; true when it is answered (and done with).
bool attempt(link_actor* self, std::uint64_t id, job& j) {
  auto& s = self->state;
  auto now = clock::now();
  if (now >= j.deadline) {
    deliver(j, unavailable("the owner of this tenant cannot be reached right now; retry"));
    return true;
  }
  auto table = s.st->table();
  auto idx = table->owner[j.shard];
  if (idx >= 0 && idx == table->self && s.st->serving()) { // owned here now (a claim, a MOVED)
    auto target = s.local->route(j.key, j.known_new);
    if (!target) {
      deliver(j, unavailable("the node is shutting down"));
      return true;
    }
    self->request(target, caf::infinite, std::move(j.cmd))
      .then([answer = j.answer](entity_reply& r) { (*answer)(r); },
            [answer = j.answer](caf::error& e) {
              auto r = entity_reply::fail(actors::failure_from(e));
              (*answer)(r);
            });
    return true;
  }
  const member* owner = idx >= 0 ? &table->members[static_cast<std::size_t>(idx)] : nullptr;
  auto link = owner ? s.st->link(owner->incarnation) : std::nullopt;
  if (!owner || owner->state == status::dead || !link) {
    // No reachable owner: a dead member's shard not yet claimed, or a peer
    // being (re)connected. Wait for the table to change.
    wait(self, j, std::chrono::milliseconds(100));
    return false;
  }
  const auto& cfg = s.st->cfg();
  if (link->in_flight->load() >= cfg.cluster_peer_max_in_flight) {
    count(self, "overloaded", j);
    deliver(j, unavailable("too many requests in flight to node " + owner->node_name + "; retry"));
    return true;
  }
  auto command = actors::to_wire(j.key, j.cmd).SerializeAsString();
  if (command.size() > command_max_bytes) {
    deliver(j, entity_reply::fail(actors::fail(errc::invalid, "the request is too large to forward")));
    return true;
  }
  auto& o = s.out[owner->incarnation];
  o.gateway = link->gateway; // the newest connection's
  auto* env = o.batch.add_commands();
  env->set_job(id);
  env->set_request_id(j.cmd.meta.request_id);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(j.deadline - now);
  env->set_deadline_unix_ms(protocol::now_us() / 1000 + left.count());
  env->set_shard(j.shard);
  env->set_epoch_seen(table->epoch[j.shard]);
  env->set_to_incarnation(owner->incarnation);
  env->set_from_incarnation(s.st->me().incarnation);
  o.bytes += command.size() + 128;
  env->set_command(std::move(command));
  link->in_flight->fetch_add(1);
  j.in_flight = link->in_flight;
  j.owner_name = owner->node_name;
  j.owner_incarnation = owner->incarnation;
  j.sent = true;
  j.wake = now + std::min(left, cfg.cluster_forward_timeout);
  if (o.batch.commands_size() >= batch_max_commands || o.bytes >= batch_max_bytes) {
    send_batch(self, o);
  } else if (!s.flushing) {
    s.flushing = true;
    self->send(self, flush_atom::value);
  }
  ensure_ticking(self);
  return false;
}

void run(link_actor* self, std::uint64_t id) {
  auto& jobs = self->state.jobs;
  auto it = jobs.find(id);
  if (it != jobs.end() && attempt(self, id, it->second))
    jobs.erase(it);
}

/// The owner's answer to its job `j`; true when the job is done with.
bool answered(link_actor* self, job& j, v1::ClusterReply& r) {
  auto& s = self->state;
  j.in_flight->fetch_sub(1);
  j.sent = false;
  switch (r.status()) {
    case v1::ClusterReply::OK: {
      v1::EntityReply w;
      w.ParseFromString(r.reply());
      count(self, "ok", j);
      deliver(j, actors::from_wire(w));
      return true;
    }
    case v1::ClusterReply::MOVED:
      count(self, "moved", j);
      ++j.moved;
      if (!r.owner_hint().empty())
        s.st->patch(j.shard, r.owner_hint(), r.epoch());
      // The shard is changing hands: both tables catch up within a
      // refresh; retried (with a growing pause) until the deadline.
      if (auto m = s.st->manager())
        self->send(m, refresh_atom::value);
      wait(self, j, std::chrono::milliseconds(std::min(20 * j.moved, 200)));
      return false;
    case v1::ClusterReply::EXPIRED:
      count(self, "expired", j);
      deliver(j, unavailable("the request's deadline passed before its owner could start it; retry"));
      return true;
    default:
      count(self, "refused", j);
      log::warn("cluster: a forwarded command was refused", {{"peer", j.owner_name}, {"detail", r.detail()}});
      deliver(j, unavailable("node " + j.owner_name + " refused the command; retry"));
      return true;
  }
}

/// No answer from the owner in time; true when the job is done with.
bool overdue(link_actor* self, job& j) {
  j.in_flight->fetch_sub(1);
  count(self, "unreachable", j);
  if (j.cmd.what == actors::op::get || j.cmd.what == actors::op::usage) {
    // A read changes nothing: try again (the owner may be declared dead
    // meanwhile, and its shard claimed) until the deadline.
    wait(self, j, std::chrono::milliseconds(100));
    return false;
  }
  // A write's outcome is unknown: it may have run. Never retried here.
  log::debug("cluster: a forwarded command got no answer", {{"peer", j.owner_name}});
  auto f = actors::fail(errc::unavailable,
                        "node " + j.owner_name +
                          " (the owner of this tenant) did not answer; retry with the same "
                          "Idempotency-Key");
  f.outcome_unknown = true;
  deliver(j, entity_reply::fail(std::move(f)));
  return true;
}

void start(link_actor* self, entity_key key, command cmd, std::shared_ptr<actors::answer_once> answer) {
  auto& s = self->state;
  auto id = s.next_id++;
  job j;
  j.answer = std::move(answer);
  j.shard = rc::shard_of(key.tenant_id);
  j.key = std::move(key);
  j.known_new = cmd.new_id;
  j.cmd = std::move(cmd);
  j.started = clock::now();
  j.deadline = j.started + s.st->cfg().request_timeout - std::chrono::milliseconds(100);
  auto it = s.jobs.emplace(id, std::move(j)).first;
  if (attempt(self, id, it->second))
    s.jobs.erase(it);
}

/// The member `j` was sent to has been declared dead: its answer will not
/// come, so a read is retried now rather than at its forward timeout, and a
/// write gets its unknown outcome now. (A live owner that handed the shard
/// on still answers: the command's result, or MOVED.)
bool gone(const routing& table, const job& j) {
  const auto* m = table.find(j.owner_incarnation);
  return m == nullptr || m->state == status::dead;
}

caf::behavior link_behavior(link_actor* self, std::shared_ptr<shared_state> st,
                            std::shared_ptr<actors::entity_router> local) {
  self->state.st = std::move(st);
  self->state.local = std::move(local);
  return {
    [self](entity_key& key, command& cmd) -> caf::result<entity_reply> {
      auto rp = self->make_response_promise<entity_reply>();
      start(self, std::move(key), std::move(cmd),
            std::make_shared<actors::answer_once>([rp](entity_reply& r) mutable { rp.deliver(std::move(r)); }));
      return rp;
    },
    [self](keyed_call& c) { start(self, std::move(c.key), std::move(c.cmd), std::move(c.answer)); },
    [self](fwd_reply_atom, const std::string& bytes) {
      v1::ClusterReplyBatch batch;
      if (!batch.ParseFromString(bytes)) {
        // Its jobs are answered as overdue (unknown outcome) at their time.
        log::warn("cluster: a malformed reply batch from a peer");
        return;
      }
      auto& jobs = self->state.jobs;
      for (auto& r : *batch.mutable_replies()) {
        auto it = jobs.find(r.job());
        if (it == jobs.end() || !it->second.sent)
          continue; // answered late: its deadline went by
        if (answered(self, it->second, r))
          jobs.erase(it);
      }
    },
    [self](flush_atom) { flush(self); },
    [self](tick_atom) {
      auto& s = self->state;
      auto now = clock::now();
      auto table = s.st->table();
      std::vector<std::uint64_t> due;
      for (auto it = s.jobs.begin(); it != s.jobs.end();) {
        auto& j = it->second;
        if (j.sent && now < j.wake && gone(*table, j)) // no answer will come: as overdue, now
          j.wake = now;
        if (now < j.wake) {
          ++it;
        } else if (j.sent && overdue(self, j)) {
          it = s.jobs.erase(it);
        } else {
          if (!j.sent)
            due.push_back(it->first);
          ++it;
        }
      }
      for (auto id : due)
        run(self, id);
      s.ticking = !s.jobs.empty();
      if (s.ticking)
        self->delayed_send(self, link_tick, tick_atom::value);
    },
  };
}

/// route()'s answer for a key owned elsewhere, for a caller that sends the
/// command alone: hands it to the link with its key, then ends.
caf::behavior keyed_adapter(caf::event_based_actor* self, caf::actor link, entity_key key) {
  return {
    [self, link, key](command& cmd) {
      self->delegate(link, key, std::move(cmd));
      self->quit();
    },
  };
}

class cluster_router final : public actors::entity_router {
public:
  cluster_router(caf::actor_system& sys, std::shared_ptr<shared_state> st, std::shared_ptr<actors::entity_router> local,
                 std::vector<caf::actor> links)
    : sys_(sys), st_(std::move(st)), local_(std::move(local)), links_(std::move(links)) {}

  using actors::entity_router::route;

  caf::actor route(const entity_key& key, bool known_new) override {
    auto t = target_of(key, known_new);
    if (!t.keyed)
      return t.to;
    return sys_.spawn(keyed_adapter, t.to, key);
  }
  target target_of(const entity_key& key, bool known_new) override {
    if (!st_->serving())
      return {};
    auto shard = rc::shard_of(key.tenant_id);
    if (st_->table()->owned_here(shard))
      return {local_->route(key, known_new), false};
    // One link per shard: a tenant's forwarded commands stay in order.
    return {links_[shard % links_.size()], true};
  }
  bool release(const entity_key& key, const caf::actor_addr& who, std::uint64_t handled) override {
    return local_->release(key, who, handled);
  }
  void crashed(const entity_key& key, const caf::actor_addr& who, const std::string& reason) override {
    local_->crashed(key, who, reason);
  }
  void stray_error(const entity_key& key, const std::string& error) override { local_->stray_error(key, error); }

private:
  caf::actor_system& sys_;
  std::shared_ptr<shared_state> st_;
  std::shared_ptr<actors::entity_router> local_;
  std::vector<caf::actor> links_;
};

caf::behavior dispatcher(caf::event_based_actor* self, std::shared_ptr<actors::entity_router> router,
                         std::chrono::milliseconds timeout) {
  return {
    [self, router, timeout](entity_key& key, command& cmd) -> caf::result<entity_reply> {
      auto target = router->target_of(key, false);
      if (!target.to)
        return unavailable("the node is not serving (shutting down, or its cluster lease is in doubt)");
      if (target.keyed) { // the link keeps the deadline
        self->delegate(target.to, std::move(key), std::move(cmd));
        return caf::delegated<entity_reply>{};
      }
      auto rp = self->make_response_promise<entity_reply>();
      self->request(target.to, timeout, std::move(cmd))
        .then([rp](entity_reply& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(entity_reply::fail(actors::failure_from(e))); });
      return rp;
    },
  };
}

} // namespace

std::vector<caf::actor> spawn_links(caf::actor_system& sys, const std::shared_ptr<shared_state>& st,
                                    const std::shared_ptr<actors::entity_router>& local, std::size_t count) {
  std::vector<caf::actor> links;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, count); ++i)
    links.push_back(sys.spawn(link_behavior, st, local));
  return links;
}

std::shared_ptr<actors::entity_router> make_cluster_router(caf::actor_system& sys, std::shared_ptr<shared_state> st,
                                                           std::shared_ptr<actors::entity_router> local,
                                                           std::vector<caf::actor> links) {
  return std::make_shared<cluster_router>(sys, std::move(st), std::move(local), std::move(links));
}

caf::actor spawn_dispatcher(caf::actor_system& sys, std::shared_ptr<actors::entity_router> router,
                            std::chrono::milliseconds timeout) {
  return sys.spawn(dispatcher, std::move(router), timeout);
}

} // namespace colony::adapters::cluster
