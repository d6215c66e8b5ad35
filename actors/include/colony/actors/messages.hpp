// Messages between the HTTP edge, the entity registry and entity actors.
//
// An entity is addressed by (kind, tenant id, entity id). A command names the
// operation; bodies arrive already parsed into colony.v1 messages (creates) or
// as a JSON merge patch (patches). Replies carry an immutable snapshot of the
// entity, shared rather than copied, or a failure.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/domain.hpp"

namespace google::protobuf {
class Message;
}

namespace colony::actors {

/// The kind of an entity: an id registered in the kind registry (kinds.hpp),
/// where every kind, built in or added, says how it is spawned and which
/// timers it answers. The two built-in kinds are named here.
enum class entity_kind : std::uint8_t { tenant = 1, user = 2, plugin = 3 };

/// The registered name of a kind ("tenant"); "unknown" if none is registered.
[[nodiscard]] const char* to_string(entity_kind k) noexcept;

struct entity_key {
  entity_kind kind = entity_kind::tenant;
  std::string tenant_id; // for a tenant: its own id
  std::string id;

  [[nodiscard]] std::string str() const; // "tenant/<tid>/<id>", unique per entity
};

/// What a command asks of its entity.
enum class op : std::uint8_t {
  get = 1,
  create,
  patch,
  remove,
  activate,
  suspend,
  cancel,
  usage,
  // Addressed to the tenant, which gates and forwards them to the user actor:
  create_user,
  patch_user,
  remove_user,
  // From the billing provider (payload v1::BillingChange):
  billing,
  // Tracked usage (payload v1::TrackActivity):
  track_usage,
  // Fired by durable timers:
  expire_trial,
  // A tenant's plugins (payload v1::EnablePluginRequest resolved to a
  // v1::PluginBinding at the edge; text: the plugin's name):
  enable_plugin,
  disable_plugin,
  // To a plugin's activation (payload v1::PluginCall), answered with a v1::PluginOutcome:
  plugin_call,
  // To a tenant: its plugin `text` broke its limits too often (the circuit breaker).
  suspend_plugin,
  // To a plugin's activation: its tenant has events after its on_event cursor (the pump).
  plugin_events,
};

/// The op's name as the console shows it ("create_user"); "op_<n>" for a number no op has.
[[nodiscard]] std::string op_name(op what);

/// Who asked, for logs and for the outbox rows.
struct request_meta {
  std::string request_id;
  std::string traceparent;
  std::string message_key; // non-empty: an external message applied at most once (Stripe event, Kafka command)
  std::string actor;       // who asked, for the audit log: a credential id, "stripe", "kafka"; empty: not audited
  std::string client;      // the caller's address, for the audit log
  // The caller holds an owner's powers in the tenant (an owner, the platform,
  // or a trusted integration). An admin does not: it may not change the
  // roles or status of an owner, nor delete one (user_model: owner_guard).
  bool owner_powers = true;
  // Idempotency-Key: the change marks this key's record committed in its own
  // transaction (store_port: change::idempotency_scope).
  std::string idempotency_scope;
};

struct command {
  op what = op::get;
  std::shared_ptr<const google::protobuf::Message> payload; // create bodies (parsed at the edge)
  std::string text;                                         // merge patch, or transition reason
  std::vector<std::uint32_t> if_match;                      // If-Match: versions any of which may match; empty: none
  std::string user_id;                                      // for the *_user operations
  bool new_id = false; // user_id was just minted here (UUIDv7): a creation with nothing to load first
  request_meta meta;
  // The console's read of the actor's state: handled as a get, but left out
  // of the actor's last handled ops (they show its own traffic, not the
  // operator looking at it).
  bool inspect = false;
  bool inject_crash = false;        // fault injection (enabled by configuration only)
  std::int32_t inject_stall_ms = 0; // fault injection: a user entity blocks this long before handling (tests only)
};

struct entity_reply {
  std::shared_ptr<const google::protobuf::Message> entity; // set on success (except deletes and reads)
  // A read answers with the entity's binary encoding instead (a user keeps
  // bytes, so building a message only to have it serialized again for JSON
  // is skipped); `type` names its message, e.g. "colony.v1.User".
  std::shared_ptr<const std::string> bytes;
  std::string type; // a literal short enough for the small-string buffer: no allocation
  std::uint32_t version = 0;
  bool created = false;
  bool duplicate = false; // the message key was applied before; nothing changed
  std::optional<failure> error;

  static entity_reply fail(failure f) {
    entity_reply r;
    r.error = std::move(f);
    return r;
  }
};

// Atoms (CAF 0.17: at most 10 characters).
using load_atom = caf::atom_constant<caf::atom("load")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using resolve_atom = caf::atom_constant<caf::atom("resolve")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
/// An operator asks an entity to passivate now (it answers whether it went).
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using batch_atom = caf::atom_constant<caf::atom("batch")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using events_atom = caf::atom_constant<caf::atom("events")>;
using published_atom = caf::atom_constant<caf::atom("published")>;
using backlog_atom = caf::atom_constant<caf::atom("backlog")>;
using webhook_atom = caf::atom_constant<caf::atom("webhook")>;
using api_key_atom = caf::atom_constant<caf::atom("apikey")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using audit_atom = caf::atom_constant<caf::atom("audit")>;
using user_data_atom = caf::atom_constant<caf::atom("userdata")>;
using idempotency_atom = caf::atom_constant<caf::atom("idem")>;
using processed_atom = caf::atom_constant<caf::atom("processed")>;
using timers_atom = caf::atom_constant<caf::atom("timers")>;
using timer_done_atom = caf::atom_constant<caf::atom("timerdone")>;
using timer_retry_atom = caf::atom_constant<caf::atom("timerretry")>;
using plugin_atom = caf::atom_constant<caf::atom("plugin")>;

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::entity_key)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::entity_reply)
