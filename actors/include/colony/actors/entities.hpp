// Entity actors: one per live tenant and per live user.
//
// An entity actor is spawned by the entity registry on the first command for
// its key, loads its state from the store (other messages wait in the
// mailbox), answers reads from memory, and replies to a write only after the
// store has committed the new state with its outbox rows. When the registry's
// sweep finds nothing routed to it for `idle_timeout` it sends idle_atom, and
// the entity offers to passivate (entity_router::release).
//
// The tenant actor gates writes to its users: it refuses them while the tenant
// is suspended or cancelled, counts seats against the plan, and forwards to the
// user actor it gets from the directory.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include "colony/actors/kinds.hpp"
#include "colony/actors/messages.hpp"
#include "colony/actors/plugin/plugin_engine.hpp"
#include "colony/actors/ports/outbound_http.hpp"
#include "colony/actors/ports/store_port.hpp"
#include "colony/actors/tenant/tenant_model.hpp"

namespace colony::actors {

/// The entity directory as the entities and their callers see it: the live
/// activation of a key (activated on first use), and the passivation
/// handshake. Implemented by runtime::entity_registry; callers send to the
/// returned actor directly, so a command costs one hop, not two.
class entity_router {
public:
  virtual ~entity_router() = default;
  /// The live activation of `key`, spawned if there is none. Counts one
  /// command as forwarded to it: the caller must send it exactly one.
  /// `known_new`: the id was just minted, so a fresh activation starts
  /// empty instead of loading (saves a read per creation).
  [[nodiscard]] virtual caf::actor route(const entity_key& key, bool known_new) = 0;
  [[nodiscard]] caf::actor route(const entity_key& key) { return route(key, false); }
  /// Where a caller that knows the key sends a command: `to` takes the
  /// `command` alone (an entity's activation), or, when `keyed`, the pair
  /// `(entity_key, command)` or a keyed_call: an actor serving many keys,
  /// such as the cluster's link to the other nodes, which saves an actor
  /// per request. Either answers with one entity_reply. The same counting
  /// as route().
  struct target {
    caf::actor to;
    bool keyed = false;
  };
  [[nodiscard]] virtual target target_of(const entity_key& key, bool known_new) {
    return {route(key, known_new), false};
  }
  /// An idle entity asks to go. True: it is out of the directory and must
  /// quit; false: commands are on their way to it, it stays.
  [[nodiscard]] virtual bool release(const entity_key& key, const caf::actor_addr& self, std::uint64_t handled) = 0;
  /// An entity's handler threw: it is about to end with `reason`. The
  /// directory forgets it (the next command activates a fresh instance),
  /// counts and logs the crash. Entities end in no other way while the node
  /// runs (stray error messages are ignored), so no monitor per entity is
  /// needed.
  virtual void crashed(const entity_key& key, const caf::actor_addr& self, const std::string& reason) = 0;
  /// An entity got an error message nobody waited for; it carries on.
  virtual void stray_error(const entity_key& key, const std::string& error) = 0;
};

/// A command for a keyed target (entity_router::target's `keyed`) from a
/// caller that is not an actor and waits for no reply message, such as an
/// HTTP io thread: the target calls `answer` once, from its own thread. The
/// copies of a keyed_call share one answer_once; if the message is dropped
/// (its target has ended) the last copy answers 503, so the caller always
/// gets an answer.
class answer_once {
public:
  explicit answer_once(std::function<void(entity_reply&)> fn) : fn_(std::move(fn)) {}
  answer_once(const answer_once&) = delete;
  answer_once& operator=(const answer_once&) = delete;
  ~answer_once() {
    if (!fn_)
      return;
    try {
      auto r = entity_reply::fail(fail(errc::unavailable, "the node is shutting down"));
      fn_(r);
    } catch (...) { // NOLINT(bugprone-empty-catch): a destructor throws nothing
    }
  }
  /// The first call answers; later ones do nothing.
  void operator()(entity_reply& r) {
    if (auto fn = std::exchange(fn_, nullptr))
      fn(r);
  }

private:
  std::function<void(entity_reply&)> fn_;
};

struct keyed_call {
  entity_key key;
  command cmd;
  std::shared_ptr<answer_once> answer;
};

/// What every entity actor of a node shares. Immutable once built.
struct entity_env {
  store_port store;
  std::weak_ptr<entity_router> router; // filled in by the registry
  tenant_rules rules;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds store_timeout{std::chrono::seconds(30)};
  bool fault_injection = false; // honour command::inject_crash (tests only)
  // Makes the plugin actors' sandboxes; null: plugins cannot run (hooks fail).
  std::shared_ptr<const plugin_engine> plugins;
  // The circuit breaker: this many broken limits in a row suspend a plugin for its tenant.
  int plugin_fault_threshold = 5;
  // on_event: attempts at one event before it is dead-lettered, and events read per batch.
  int plugin_event_attempts = 5;
  int plugin_event_batch = 100;
  // colony.kv: bytes one (tenant, plugin) may keep (keys, values, 64 a key).
  std::int64_t plugin_kv_quota = 1 << 20;
  // Runs hook code off the actor system's workers; null: on the plugin actor itself.
  std::shared_ptr<plugin_executor> plugin_pool;
  // Steps run on the plugin actor until one takes longer than this (then on
  // the pool, for the rest of the activation); 0: always on the pool.
  std::chrono::microseconds plugin_inline_time{1000};
  // Told of every hook call's end and every suspension (metrics); null: no one.
  std::shared_ptr<plugin_observer> plugin_reports;
  // colony.http.request's client; null: plugins cannot make requests.
  std::shared_ptr<const outbound_http_service> plugin_http;
  // The registry's store of activation::cell: held here too, so it
  // outlives every entity that may still write its cell.
  std::shared_ptr<const void> handled_cells;
};

[[nodiscard]] caf::actor spawn_tenant_actor(caf::actor_system& sys, entity_key key,
                                            std::shared_ptr<const entity_env> env, activation how = {});
[[nodiscard]] caf::actor spawn_plugin_actor(caf::actor_system& sys, entity_key key,
                                            std::shared_ptr<const entity_env> env, activation how = {});
/// `known_new`: start as "no such user" without loading (a just-minted id).
[[nodiscard]] caf::actor spawn_user_actor(caf::actor_system& sys, entity_key key, std::shared_ptr<const entity_env> env,
                                          activation how = {});

/// Turns a transport-level CAF error (a crashed or vanished actor, a timeout)
/// into a failure for the client.
[[nodiscard]] failure failure_from(const caf::error& err);

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::keyed_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::plugin_run)
