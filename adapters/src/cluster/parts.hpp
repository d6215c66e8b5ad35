// The actors of the cluster module (private to adapters/cluster):
// - the membership manager (detached; membership.hpp's connection): lease,
//   view, expiry, votes, claims, hand-offs, drain;
// - the peer manager: a connection and a gateway handle per live member,
//   probes, suspicion reports;
// - the gateway: the one actor published on the cluster port;
// - the router: the entity_router the node's callers use, which routes to
//   the local directory or forwards to the owner's gateway.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <memory>
#include <string>
#include <vector>

#include "colony/actors/entities.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "membership.hpp"
#include "state.hpp"

namespace colony::adapters::cluster {

using tick_atom = caf::atom_constant<caf::atom("cl_tick")>;
using rebalance_atom = caf::atom_constant<caf::atom("cl_rebal")>;
using suspect_atom = caf::atom_constant<caf::atom("cl_suspect")>;
using drain_atom = caf::atom_constant<caf::atom("cl_drain")>;
/// (op_drain_atom, node name, on) to the manager: an operator's drain or undrain.
using op_drain_atom = caf::atom_constant<caf::atom("cl_opdrn")>;
/// (bcast_atom, topic, payload): to the peer manager, which sends it to
/// every connected member's gateway, which hands it to its subscribers.
using bcast_atom = caf::atom_constant<caf::atom("cl_bcast")>;
/// (ask_atom, topic, tenant id, payload) -> string to an owner's gateway
/// (cluster_service::ask_owner); an empty answer: not served or not owned there.
using ask_atom = caf::atom_constant<caf::atom("cl_ask")>;
/// (ask_node_atom, topic, payload) -> string to any member's gateway
/// (cluster_service::ask_members): what it serves for topic, about itself.
using ask_node_atom = caf::atom_constant<caf::atom("cl_askn")>;
using force_atom = caf::atom_constant<caf::atom("cl_force")>;
using view_atom = caf::atom_constant<caf::atom("cl_view")>;
using hello_atom = caf::atom_constant<caf::atom("cl_hello")>;
using ping_atom = caf::atom_constant<caf::atom("cl_ping")>;
/// (fwd_atom, ClusterBatch) to a gateway; (fwd_reply_atom, ClusterReplyBatch) back to the sender.
using fwd_atom = caf::atom_constant<caf::atom("cl_fwd")>;
using fwd_reply_atom = caf::atom_constant<caf::atom("cl_fwdr")>;
/// To itself: send what accumulated since the last flush (link, gateway).
using flush_atom = caf::atom_constant<caf::atom("cl_flush")>;
using dial_atom = caf::atom_constant<caf::atom("cl_dial")>;
using manager_atom = caf::atom_constant<caf::atom("cl_mgr")>;
/// Re-read the tables now (a peer just handed this node shards, or named a newer epoch).
using refresh_atom = caf::atom_constant<caf::atom("cl_fresh")>;

inline constexpr const char* wire_version = "colony-cluster-v3";

/// The membership manager. `db` is connected and joined. It sends every new
/// view to `peers` and evicts the activations of shards that changed hands
/// from `local`.
caf::actor spawn_manager(caf::actor_system& sys, std::shared_ptr<shared_state> st, std::unique_ptr<membership_table> db,
                         caf::actor peers, runtime::entity_registry local);

caf::actor spawn_peers(caf::actor_system& sys, std::shared_ptr<shared_state> st);

/// The gateway: hello, ping and forwarded commands (to `local`).
caf::actor spawn_cluster_gateway(caf::actor_system& sys, std::shared_ptr<shared_state> st,
                                 std::shared_ptr<actors::entity_router> local);

/// `count` links: the actors that forward commands to other nodes (and
/// run them here when their shard arrives meanwhile).
std::vector<caf::actor> spawn_links(caf::actor_system& sys, const std::shared_ptr<shared_state>& st,
                                    const std::shared_ptr<actors::entity_router>& local, std::size_t count);
/// The router over `local`: local shards to it, others to one of `links`.
std::shared_ptr<actors::entity_router> make_cluster_router(caf::actor_system& sys, std::shared_ptr<shared_state> st,
                                                           std::shared_ptr<actors::entity_router> local,
                                                           std::vector<caf::actor> links);
/// An actor for (entity_key, command) messages (timers, Kafka) over `router`.
caf::actor spawn_dispatcher(caf::actor_system& sys, std::shared_ptr<actors::entity_router> router,
                            std::chrono::milliseconds timeout);

/// The actor that sends ask_owner requests and hands back their answers.
caf::actor spawn_asker(caf::actor_system& sys);
/// What the asker gets: the owner's gateway, the request, where the answer goes.
struct ask_job {
  caf::actor gateway;
  std::string topic, tenant, payload; // tenant empty: ask_node_atom (about the node, not a tenant)
  std::chrono::milliseconds timeout;
  std::function<void(std::optional<std::string>)> answer;
};

/// A hello of this node (with its proof when a secret is configured), and
/// the check of a peer's: empty when fine, else why not.
std::string make_hello(const shared_state& st);
std::string check_hello(const shared_state& st, const std::string& bytes, std::string* node_name,
                        std::string* incarnation);

} // namespace colony::adapters::cluster

// Local messages only (never across nodes).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::adapters::cluster::drain_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<colony::adapters::cluster::ask_job>)
