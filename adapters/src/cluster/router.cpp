// The router the node's callers use (HTTP, timers, Kafka commands): a
// tenant's shard owned here goes to the local directory (one hop, as on a
// single node); any other to a forwarder that sends it to the owner's
// gateway as a colony.v1.ClusterEnvelope and hands back the reply.
//
// When the owner cannot be reached the forwarder waits (within the request
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

using clock = std::chrono::steady_clock;

entity_reply unavailable(std::string why) {
  return entity_reply::fail(actors::fail(errc::unavailable, std::move(why)));
}

struct forwarder_state {
  std::shared_ptr<shared_state> st;
  std::shared_ptr<actors::entity_router> local;
  entity_key key;
  bool known_new = false;
  std::uint32_t shard = 0;
  clock::time_point deadline;
  int moved = 0;
  // The command waiting for its next attempt (a forwarder carries one).
  std::optional<command> pending;
  caf::response_promise pending_rp;
  static inline const char* name = "colony.cluster.forwarder";
};

using forwarder_actor = caf::stateful_actor<forwarder_state>;

void count(forwarder_actor* self, const char* outcome, clock::time_point started) {
  if (auto* m = self->state.st->metrics()) {
    m->count("colony_cluster_forwarded_total", "Commands forwarded to their owner node, by outcome",
             {{"outcome", outcome}});
    m->observe("colony_cluster_forward_duration_seconds", "Round trip of a forwarded command", {},
               std::chrono::duration<double>(clock::now() - started).count());
  }
}

/// Tries `cmd` again after `wait` (the tick handler of the forwarder).
void later(forwarder_actor* self, command cmd, caf::response_promise rp, std::chrono::milliseconds wait) {
  self->state.pending = std::move(cmd);
  self->state.pending_rp = std::move(rp);
  self->delayed_send(self, wait, caf::tick_atom::value);
}

void attempt(forwarder_actor* self, command cmd, caf::response_promise rp) {
  auto& s = self->state;
  auto now = clock::now();
  if (now >= s.deadline) {
    rp.deliver(unavailable("the owner of this tenant cannot be reached right now; retry"));
    self->quit();
    return;
  }
  auto table = s.st->table();
  auto idx = table->owner[s.shard];
  if (idx >= 0 && idx == table->self && s.st->serving()) { // owned here now (a claim, a MOVED)
    auto target = s.local->route(s.key, s.known_new);
    if (!target) {
      rp.deliver(unavailable("the node is shutting down"));
      self->quit();
      return;
    }
    self->delegate(target, std::move(cmd));
    self->quit();
    return;
  }
  const member* owner = idx >= 0 ? &table->members[static_cast<std::size_t>(idx)] : nullptr;
  auto link = owner ? s.st->link(owner->incarnation) : std::nullopt;
  if (!owner || owner->state == status::dead || !link) {
    // No reachable owner: a dead member's shard not yet claimed, or a peer
    // being (re)connected. Wait for the table to change.
    later(self, std::move(cmd), std::move(rp), std::chrono::milliseconds(100));
    return;
  }
  const auto& cfg = s.st->cfg();
  if (link->in_flight->load() >= cfg.cluster_peer_max_in_flight) {
    count(self, "overloaded", now);
    rp.deliver(unavailable("too many requests in flight to node " + owner->node_name + "; retry"));
    self->quit();
    return;
  }
  v1::ClusterEnvelope env;
  env.set_request_id(cmd.meta.request_id);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.deadline - now);
  env.set_deadline_unix_ms(protocol::now_us() / 1000 + left.count());
  env.set_shard(s.shard);
  env.set_epoch_seen(table->epoch[s.shard]);
  env.set_to_incarnation(owner->incarnation);
  env.set_from_incarnation(s.st->me().incarnation);
  env.set_command(actors::to_wire(s.key, cmd).SerializeAsString());
  auto bytes = env.SerializeAsString();
  if (bytes.size() > 1024 * 1024) {
    rp.deliver(entity_reply::fail(actors::fail(errc::invalid, "the request is too large to forward")));
    self->quit();
    return;
  }
  link->in_flight->fetch_add(1);
  auto in_flight = link->in_flight;
  auto timeout = std::min(left, cfg.cluster_forward_timeout);
  self->request(link->gateway, timeout, fwd_atom::value, std::move(bytes))
    .then(
      [self, cmd, rp, in_flight, now, owner_name = owner->node_name](const std::string& reply) mutable {
        in_flight->fetch_sub(1);
        auto& s2 = self->state;
        v1::ClusterReply r;
        if (!r.ParseFromString(reply)) {
          count(self, "error", now);
          rp.deliver(entity_reply::fail(actors::fail(errc::internal, "a malformed reply from node " + owner_name)));
          self->quit();
          return;
        }
        switch (r.status()) {
          case v1::ClusterReply::OK: {
            v1::EntityReply w;
            w.ParseFromString(r.reply());
            count(self, "ok", now);
            rp.deliver(actors::from_wire(w));
            self->quit();
            return;
          }
          case v1::ClusterReply::MOVED:
            count(self, "moved", now);
            ++s2.moved;
            if (!r.owner_hint().empty())
              s2.st->patch(s2.shard, r.owner_hint(), r.epoch());
            // The shard is changing hands: both tables catch up within a
            // refresh; retried (with a growing pause) until the deadline.
            if (auto m = s2.st->manager())
              self->send(m, refresh_atom::value);
            later(self, std::move(cmd), std::move(rp), std::chrono::milliseconds(std::min(20 * s2.moved, 200)));
            return;
          case v1::ClusterReply::EXPIRED:
            count(self, "expired", now);
            rp.deliver(unavailable("the request's deadline passed before its owner could start it; retry"));
            self->quit();
            return;
          default:
            count(self, "refused", now);
            log::warn("cluster: a forwarded command was refused", {{"peer", owner_name}, {"detail", r.detail()}});
            rp.deliver(unavailable("node " + owner_name + " refused the command; retry"));
            self->quit();
            return;
        }
      },
      [self, cmd, rp, in_flight, now, owner_name = owner->node_name](caf::error& e) mutable {
        in_flight->fetch_sub(1);
        count(self, "unreachable", now);
        if (cmd.what == actors::op::get || cmd.what == actors::op::usage) {
          // A read changes nothing: try again (the owner may be declared
          // dead meanwhile, and its shard claimed) until the deadline.
          later(self, std::move(cmd), std::move(rp), std::chrono::milliseconds(100));
          return;
        }
        // A write's outcome is unknown: it may have run. Never retried here.
        log::debug("cluster: a forwarded command got no answer", {{"peer", owner_name}, {"error", caf::to_string(e)}});
        rp.deliver(unavailable("node " + owner_name +
                               " (the owner of this tenant) did not answer; retry with the same Idempotency-Key"));
        self->quit();
      });
}

caf::behavior forwarder(forwarder_actor* self, std::shared_ptr<shared_state> st,
                        std::shared_ptr<actors::entity_router> local, entity_key key, bool known_new) {
  auto& s = self->state;
  s.st = std::move(st);
  s.local = std::move(local);
  s.shard = rc::shard_of(key.tenant_id);
  s.key = std::move(key);
  s.known_new = known_new;
  s.deadline = clock::now() + s.st->cfg().request_timeout - std::chrono::milliseconds(100);
  return {
    [self](command& cmd) -> caf::result<entity_reply> {
      auto rp = self->make_response_promise<entity_reply>();
      attempt(self, std::move(cmd), rp);
      return rp;
    },
    [self](caf::tick_atom) {
      auto& fs = self->state;
      if (!fs.pending)
        return;
      auto cmd = std::move(*fs.pending);
      fs.pending.reset();
      attempt(self, std::move(cmd), std::move(fs.pending_rp));
    },
  };
}

class cluster_router final : public actors::entity_router {
public:
  cluster_router(caf::actor_system& sys, std::shared_ptr<shared_state> st, std::shared_ptr<actors::entity_router> local)
    : sys_(sys), st_(std::move(st)), local_(std::move(local)) {}

  using actors::entity_router::route;

  caf::actor route(const entity_key& key, bool known_new) override {
    if (!st_->serving())
      return {};
    auto table = st_->table();
    if (table->owned_here(rc::shard_of(key.tenant_id)))
      return local_->route(key, known_new);
    return sys_.spawn(forwarder, st_, local_, key, known_new);
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
};

caf::behavior dispatcher(caf::event_based_actor* self, std::shared_ptr<actors::entity_router> router,
                         std::chrono::milliseconds timeout) {
  return {
    [self, router, timeout](entity_key& key, command& cmd) -> caf::result<entity_reply> {
      auto target = router->route(key);
      if (!target)
        return unavailable("the node is not serving (shutting down, or its cluster lease is in doubt)");
      auto rp = self->make_response_promise<entity_reply>();
      self->request(target, timeout, std::move(cmd))
        .then([rp](entity_reply& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(entity_reply::fail(actors::failure_from(e))); });
      return rp;
    },
  };
}

} // namespace

std::shared_ptr<actors::entity_router> make_cluster_router(caf::actor_system& sys, std::shared_ptr<shared_state> st,
                                                           std::shared_ptr<actors::entity_router> local) {
  return std::make_shared<cluster_router>(sys, std::move(st), std::move(local));
}

caf::actor spawn_dispatcher(caf::actor_system& sys, std::shared_ptr<actors::entity_router> router,
                            std::chrono::milliseconds timeout) {
  return sys.spawn(dispatcher, std::move(router), timeout);
}

} // namespace colony::adapters::cluster
