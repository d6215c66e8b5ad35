// Peers: the connection to every live member, its probes, and this node's
// gateway (the one actor published on the cluster port).
//
// A connection is made off every request path: a non-blocking TCP probe
// (1 s) first, then the middleman's asynchronous connect, then a hello each
// way (cluster name, wire version, node name, incarnation and, with a
// cluster secret, an HMAC proof). CAF 0.17's middleman dials with a
// blocking connect(): a black-holed address would stall every other dial
// of the node for about two minutes, which the probe avoids
// (docs/clustering.md).
#include <arpa/inet.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

#include "colony/actors/wire.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/gateway.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/cluster.pb.h"
#include "colony/v1/entity.pb.h"
#include "parts.hpp"

namespace colony::adapters::cluster {

namespace {

std::string proof_of(const std::string& secret, const std::string& text) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string proof_text(const v1::ClusterHello& h) {
  return h.cluster_name() + "|" + h.node_name() + "|" + h.incarnation() + "|" + h.wire_version() + "|" + h.nonce();
}

/// A TCP connect that gives up after `timeout`: true if the port answered.
bool tcp_probe(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr)
    return false;
  bool ok = false;
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
  if (fd >= 0) {
    int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    if (rc == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

// -- the dialer: probe, then the middleman's asynchronous connect ------------------

caf::behavior dialer(caf::event_based_actor* self, int /*unused: CAF 0.17 needs an argument*/) {
  return {
    [self](dial_atom, const std::string& host, std::uint16_t port) -> caf::result<caf::actor> {
      if (!tcp_probe(host, port, std::chrono::seconds(1)))
        return caf::make_error(caf::sec::cannot_connect_to_node, "no answer from " + host + ":" + std::to_string(port));
      auto rp = self->make_response_promise<caf::actor>();
      auto mm = self->system().middleman().actor_handle();
      self->request(mm, std::chrono::seconds(5), caf::connect_atom::value, host, port)
        .then(
          [rp](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) mutable {
            if (!ptr)
              rp.deliver(caf::make_error(caf::sec::no_actor_published_at_port, "no gateway published there"));
            else
              rp.deliver(caf::actor_cast<caf::actor>(std::move(ptr)));
          },
          [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
  };
}

// -- the peer manager -------------------------------------------------------------

struct peer {
  member info;
  caf::actor gateway;
  bool connected = false;
  bool dialing = false;
  int misses = 0;
  std::chrono::milliseconds backoff{100};
  std::chrono::steady_clock::time_point next_dial{};
};

struct peers_state {
  std::shared_ptr<shared_state> st;
  caf::actor dialer;
  caf::actor manager;
  std::unordered_map<std::string, peer> peers; // by incarnation
  static inline const char* name = "colony.cluster.peers";
};

using peers_actor = caf::stateful_actor<peers_state>;

void drop_link(peers_actor* self, peer& p) {
  if (p.gateway)
    self->demonitor(p.gateway);
  p.gateway = nullptr;
  p.connected = false;
  self->state.st->set_link(p.info.incarnation, std::nullopt);
}

void dial(peers_actor* self, const std::string& incarnation) {
  auto& s = self->state;
  auto& p = s.peers[incarnation];
  if (p.dialing || p.connected || std::chrono::steady_clock::now() < p.next_dial || p.info.host.empty())
    return;
  p.dialing = true;
  auto failed = [self, incarnation](const std::string& why) {
    auto it = self->state.peers.find(incarnation);
    if (it == self->state.peers.end())
      return;
    auto& q = it->second;
    q.dialing = false;
    q.next_dial = std::chrono::steady_clock::now() + q.backoff;
    q.backoff = std::min(q.backoff * 2, std::chrono::milliseconds(2000));
    log::debug("cluster: cannot reach a peer yet", {{"peer", q.info.node_name}, {"error", why}});
  };
  self->request(s.dialer, std::chrono::seconds(8), dial_atom::value, p.info.host, p.info.port)
    .then(
      [self, incarnation, failed](caf::actor& gw) {
        self->request(gw, std::chrono::seconds(3), hello_atom::value, make_hello(*self->state.st))
          .then(
            [self, incarnation, failed, gw](const std::string& reply) {
              std::string name, inc;
              auto why = check_hello(*self->state.st, reply, &name, &inc);
              auto it = self->state.peers.find(incarnation);
              if (it == self->state.peers.end())
                return;
              if (!why.empty() || inc != incarnation) {
                // A stale process on that address, or another cluster.
                failed(why.empty() ? "the address answers as incarnation " + inc + ", not " + incarnation : why);
                return;
              }
              auto& q = it->second;
              q.dialing = false;
              q.connected = true;
              q.misses = 0;
              q.backoff = std::chrono::milliseconds(100);
              q.gateway = gw;
              self->monitor(gw);
              self->state.st->set_link(incarnation, peer_link{gw});
              log::info("cluster: connected to a peer", {{"peer", q.info.node_name}, {"address", q.info.address}});
            },
            [failed](caf::error& e) { failed(caf::to_string(e)); });
      },
      [failed](caf::error& e) { failed(caf::to_string(e)); });
}

void on_view(peers_actor* self, const std::shared_ptr<const routing>& r) {
  auto& s = self->state;
  std::unordered_set<std::string> live;
  for (std::size_t i = 0; i < r->members.size(); ++i) {
    const auto& m = r->members[i];
    if (static_cast<int>(i) == r->self || m.state == status::dead || m.incarnation == s.st->me().incarnation)
      continue;
    live.insert(m.incarnation);
    auto& p = s.peers[m.incarnation];
    p.info = m;
  }
  for (auto it = s.peers.begin(); it != s.peers.end();) {
    if (!live.contains(it->first)) {
      drop_link(self, it->second);
      it = s.peers.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& inc : live)
    dial(self, inc);
}

void probe_all(peers_actor* self) {
  auto& s = self->state;
  const auto& cfg = s.st->cfg();
  for (auto& [inc, p] : s.peers) {
    bool votable = p.info.state == status::active;
    if (!p.connected) {
      if (votable && ++p.misses >= cfg.cluster_missed_probes && s.manager)
        self->send(s.manager, suspect_atom::value, inc);
      dial(self, inc);
      continue;
    }
    auto started = std::chrono::steady_clock::now();
    self->request(p.gateway, cfg.cluster_probe_timeout, ping_atom::value, s.st->me().incarnation)
      .then(
        [self, inc = inc, started](const std::string& who) {
          auto it = self->state.peers.find(inc);
          if (it == self->state.peers.end())
            return;
          if (who != inc) {
            drop_link(self, it->second);
            return;
          }
          it->second.misses = 0;
          if (auto* m = self->state.st->metrics())
            m->observe("colony_cluster_probe_rtt_seconds", "Round trip of a probe to a peer's gateway",
                       {{"peer", it->second.info.node_name}},
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        },
        [self, inc = inc, votable](caf::error&) {
          auto& s2 = self->state;
          auto it = s2.peers.find(inc);
          if (it == s2.peers.end())
            return;
          if (votable && ++it->second.misses >= s2.st->cfg().cluster_missed_probes && s2.manager)
            self->send(s2.manager, suspect_atom::value, inc);
        });
  }
}

caf::behavior peers(peers_actor* self, std::shared_ptr<shared_state> st) {
  auto& s = self->state;
  s.st = std::move(st);
  s.dialer = self->spawn<caf::detached + caf::linked>(dialer, 0);
  self->set_down_handler([self](caf::down_msg& dm) {
    for (auto& [inc, p] : self->state.peers)
      if (p.gateway && p.gateway.address() == dm.source) {
        log::warn("cluster: lost the connection to a peer",
                  {{"peer", p.info.node_name}, {"reason", caf::to_string(dm.reason)}});
        p.gateway = nullptr;
        p.connected = false;
        self->state.st->set_link(inc, std::nullopt);
        p.next_dial = std::chrono::steady_clock::now() + p.backoff;
      }
  });
  self->delayed_send(self, s.st->cfg().cluster_probe_interval, tick_atom::value);
  return {
    [self](manager_atom, caf::actor& m) { self->state.manager = std::move(m); },
    [self](view_atom, const std::shared_ptr<const routing>& r) { on_view(self, r); },
    [self](bcast_atom, const std::string& topic, const std::string& payload) {
      // Sent by an actor of this node, so each gateway knows the sender.
      for (auto& g : self->state.st->gateways())
        self->send(g, bcast_atom::value, topic, payload);
    },
    [self](tick_atom) {
      probe_all(self);
      self->delayed_send(self, self->state.st->cfg().cluster_probe_interval, tick_atom::value);
    },
  };
}

// -- the gateway --------------------------------------------------------------------

struct gateway_state {
  std::shared_ptr<shared_state> st;
  caf::actor manager;
  std::shared_ptr<actors::entity_router> local;
  std::set<caf::node_id> hello_ok; // nodes that said a valid hello
  // Answers waiting for the next flush, by the link that asked.
  struct outgoing {
    caf::actor to;
    v1::ClusterReplyBatch batch;
  };
  std::unordered_map<caf::actor_addr, outgoing> out;
  bool flushing = false;
  static inline const char* name = "colony.cluster.gateway";
};

using gateway_actor = caf::stateful_actor<gateway_state>;

v1::ClusterReply reply_of(v1::ClusterReply::Status status, std::string detail = {}) {
  v1::ClusterReply r;
  r.set_status(status);
  r.set_detail(std::move(detail));
  return r;
}

/// Queues `r` for `to`; answers leave in one message per link at the flush
/// (the entities' answers that arrived meanwhile with them).
void answer(gateway_actor* self, const caf::actor& to, v1::ClusterReply r) {
  auto& s = self->state;
  auto& o = s.out[to.address()];
  o.to = to;
  *o.batch.add_replies() = std::move(r);
  if (!s.flushing) {
    s.flushing = true;
    self->send(self, flush_atom::value);
  }
}

void flush(gateway_actor* self) {
  auto& s = self->state;
  s.flushing = false;
  for (auto it = s.out.begin(); it != s.out.end();) {
    if (it->second.batch.replies_size() == 0) {
      it = s.out.erase(it);
      continue;
    }
    if (auto* m = s.st->metrics())
      m->count("colony_cluster_batches_total", "Messages between nodes carrying forwarded commands or their answers",
               {{"direction", "replies"}});
    self->send(it->second.to, fwd_reply_atom::value, it->second.batch.SerializeAsString());
    it->second.batch.Clear();
    ++it;
  }
}

bool known_sender(gateway_actor* self) {
  auto src = self->current_sender();
  return src && self->state.hello_ok.contains(src->node());
}

/// Runs a forwarded command if this node owns its shard at the sender's
/// epoch or later; `done` gets the colony.v1.ClusterReply, at once or when
/// the entity has answered.
void serve(gateway_actor* self, v1::ClusterEnvelope& env, std::function<void(v1::ClusterReply)> done) {
  auto& s = self->state;
  if (env.to_incarnation() != s.st->me().incarnation)
    return done(reply_of(v1::ClusterReply::REFUSED, "this is incarnation " + s.st->me().incarnation));
  auto now_ms = protocol::now_us() / 1000;
  if (env.deadline_unix_ms() > 0 && now_ms >= env.deadline_unix_ms())
    return done(reply_of(v1::ClusterReply::EXPIRED));
  auto table = s.st->table();
  auto shard = env.shard() % rc::shard_count;
  if (!s.st->serving() || !table->owned_here(shard)) {
    // The sender saw a newer epoch than this node: this node's table is
    // behind (a hand-off to it, a claim): read it again now.
    if (env.epoch_seen() > table->epoch[shard] && s.manager)
      self->send(s.manager, refresh_atom::value);
    v1::ClusterReply r;
    r.set_status(v1::ClusterReply::MOVED);
    auto idx = table->owner[shard];
    if (idx >= 0 && idx != table->self)
      r.set_owner_hint(table->members[static_cast<std::size_t>(idx)].incarnation);
    r.set_epoch(table->epoch[shard]);
    return done(std::move(r));
  }
  auto ok = [done](std::string reply) {
    v1::ClusterReply out;
    out.set_status(v1::ClusterReply::OK);
    out.set_reply(std::move(reply));
    done(std::move(out));
  };
  runtime::serve_wire_command(
    self, *s.local, env.command(),
    [shard](const actors::entity_key& key) {
      return rc::shard_of(key.tenant_id) == shard ? std::string{}
                                                  : "the command's tenant is not in shard " + std::to_string(shard);
    },
    std::move(ok));
}

caf::behavior gateway(gateway_actor* self, std::shared_ptr<shared_state> st,
                      std::shared_ptr<actors::entity_router> local) {
  self->state.st = std::move(st);
  self->state.local = std::move(local);
  return {
    [self](manager_atom, caf::actor& m) { self->state.manager = std::move(m); },
    [self](bcast_atom, const std::string& topic, const std::string& payload) {
      if (known_sender(self))
        self->state.st->deliver(topic, payload);
    },
    [self](ask_atom, const std::string& topic, const std::string& tenant,
           const std::string& payload) -> caf::result<std::string> {
      auto& s = self->state;
      if (!known_sender(self) || !s.st->table()->owned_here(rc::shard_of(tenant)) || !s.st->serving())
        return std::string{};
      auto rp = self->make_response_promise<std::string>();
      if (!s.st->handle(topic, payload, [rp](std::string answer) mutable { rp.deliver(std::move(answer)); }))
        return std::string{};
      return rp;
    },
    [self](ask_node_atom, const std::string& topic, const std::string& payload) -> caf::result<std::string> {
      auto& s = self->state;
      if (!known_sender(self) || !s.st->serving())
        return std::string{};
      auto rp = self->make_response_promise<std::string>();
      if (!s.st->handle(topic, payload, [rp](std::string answer) mutable { rp.deliver(std::move(answer)); }))
        return std::string{};
      return rp;
    },
    [self](refresh_atom) {
      if (known_sender(self) && self->state.manager)
        self->send(self->state.manager, refresh_atom::value);
    },
    [self](hello_atom, const std::string& bytes) -> std::string {
      std::string name, inc;
      auto why = check_hello(*self->state.st, bytes, &name, &inc);
      if (!why.empty()) {
        log::warn("cluster: refused a peer's hello", {{"reason", why}});
        return std::string{};
      }
      if (auto src = self->current_sender())
        self->state.hello_ok.insert(src->node());
      return make_hello(*self->state.st);
    },
    [self](ping_atom, const std::string&) -> std::string {
      if (!known_sender(self))
        return std::string{};
      return self->state.st->me().incarnation;
    },
    [self](fwd_atom, const std::string& bytes) {
      // Answered with messages of its own (fwd_reply_atom, batch), not CAF
      // responses: the sender's link keeps the deadlines, so no response
      // handler waits there for a peer that may never answer.
      auto to = caf::actor_cast<caf::actor>(self->current_sender());
      if (!to)
        return;
      v1::ClusterBatch batch;
      if (!batch.ParseFromString(bytes)) {
        // No job ids to answer: the sender's jobs run into their deadlines.
        log::warn("cluster: a malformed command batch from a peer");
        return;
      }
      bool known = known_sender(self);
      for (auto& env : *batch.mutable_commands()) {
        auto done = [self, to, job = env.job()](v1::ClusterReply r) {
          r.set_job(job);
          answer(self, to, std::move(r));
        };
        if (!known)
          done(reply_of(v1::ClusterReply::REFUSED, "no valid hello from this node"));
        else
          serve(self, env, std::move(done));
      }
    },
    [self](flush_atom) { flush(self); },
  };
}

} // namespace

std::string make_hello(const shared_state& st) {
  v1::ClusterHello h;
  h.set_cluster_name(st.me().cluster);
  h.set_node_name(st.me().node_name);
  h.set_incarnation(st.me().incarnation);
  h.set_wire_version(wire_version);
  h.set_nonce(protocol::new_uuid_v7());
  h.set_secrets_key_id(st.me().secrets_key_id);
  if (!st.cfg().cluster_secret.empty())
    h.set_proof(proof_of(st.cfg().cluster_secret, proof_text(h)));
  return h.SerializeAsString();
}

std::string check_hello(const shared_state& st, const std::string& bytes, std::string* node_name,
                        std::string* incarnation) {
  v1::ClusterHello h;
  if (bytes.empty() || !h.ParseFromString(bytes))
    return "no hello (the peer refused ours, or is not a colonyd cluster port)";
  if (h.cluster_name() != st.me().cluster)
    return "the peer is in cluster '" + h.cluster_name() + "', not '" + st.me().cluster + "'";
  if (h.wire_version() != wire_version)
    return "the peer speaks " + h.wire_version() + ", not " + std::string{wire_version};
  if (!st.cfg().cluster_secret.empty()) {
    auto want = proof_of(st.cfg().cluster_secret, proof_text(h));
    if (h.proof().size() != want.size() || CRYPTO_memcmp(h.proof().data(), want.data(), want.size()) != 0)
      return "the peer's hello has no valid proof of the cluster secret";
  }
  if (!h.secrets_key_id().empty() && !st.me().secrets_key_id.empty() && h.secrets_key_id() != st.me().secrets_key_id)
    return "the peer " + h.node_name() + " has another secrets-key (id " + h.secrets_key_id() + ", here " +
      st.me().secrets_key_id +
      "): every node of a cluster must seal and open webhook secrets under the same key (COLONY_SECRETS_KEY)";
  *node_name = h.node_name();
  *incarnation = h.incarnation();
  return {};
}

caf::actor spawn_peers(caf::actor_system& sys, std::shared_ptr<shared_state> st) {
  return sys.spawn(peers, std::move(st));
}

caf::actor spawn_asker(caf::actor_system& sys) {
  // The int is not used: CAF 0.17 spawns a function actor without arguments
  // by dereferencing a null shared_ptr<tuple<>> (UBSan reports it; bridge.cpp).
  return sys.spawn(
    [](caf::event_based_actor* self, int) -> caf::behavior {
      return {
        [self](const std::shared_ptr<ask_job>& job) {
          auto ok = [job](const std::string& answer) {
            job->answer(answer.empty() ? std::nullopt : std::optional<std::string>{answer});
          };
          auto failed = [job](caf::error&) { job->answer(std::nullopt); };
          if (job->tenant.empty())
            self->request(job->gateway, job->timeout, ask_node_atom::value, job->topic, job->payload).then(ok, failed);
          else
            self->request(job->gateway, job->timeout, ask_atom::value, job->topic, job->tenant, job->payload)
              .then(ok, failed);
        },
      };
    },
    0);
}

caf::actor spawn_cluster_gateway(caf::actor_system& sys, std::shared_ptr<shared_state> st,
                                 std::shared_ptr<actors::entity_router> local) {
  return sys.spawn(gateway, std::move(st), std::move(local));
}

} // namespace colony::adapters::cluster
