// store_port: the contract between entity actors (and the read side of the API)
// and a persistent store. Implemented by the SQLite and PostgreSQL adapters.
//
// - load: an entity's last committed state (protobuf bytes) and version.
// - commit: one entity change plus its outbox events, atomically; the adapter
//   may group many concurrent commits into one transaction (group commit), but
//   each change succeeds or fails on its own.
// - list: a page of tenants or users for the read side (keyset pagination).
// - resolve: tenant slug → id; (system, external id) → tenant id.
// - events: committed outbox rows in commit order (the event feed, the relay).
// - published: marks outbox rows as delivered to Kafka.
// - backlog: how many outbox rows wait for the relay, and since when.
// - timers: due durable timers; timer_done deletes one (if still at that due
//   time), timer_retry moves it later and counts the attempt.
// - api_key: create, list, read, revoke API keys (hashes only).
// - usage: API calls metered per tenant and month (batched increments).
// - audit: append audit records without a change, or read them (newest first).
// - user_data: GDPR export of one user's data, or its erasure.
// - plugin: the plugin registry (published versions, immutable).
// - health: whether the database answers, and why not.
#pragma once

#include <caf/typed_actor.hpp>

#include "colony/actors/ports/store_common.hpp"
#include "colony/actors/ports/idempotency_store.hpp"
#include "colony/actors/ports/entity_store.hpp"
#include "colony/actors/ports/outbox_store.hpp"
#include "colony/actors/ports/timer_store.hpp"
#include "colony/actors/ports/webhook_store.hpp"
#include "colony/actors/ports/credential_store.hpp"
#include "colony/actors/ports/usage_store.hpp"
#include "colony/actors/ports/audit_store.hpp"
#include "colony/actors/ports/personal_data_store.hpp"
#include "colony/actors/ports/plugin_store.hpp"

namespace colony::actors {

/// The whole store: one actor serving every port. A component that needs
/// one concern takes that port's handle (caf::actor_cast of this one: the
/// same actor, no extra hop); a new concern is a new port header here.
using store_port = entity_store::extend_with<outbox_store, timer_store, webhook_store, credential_store, usage_store,
                                             audit_store, personal_data_store, idempotency_store, plugin_store>;

} // namespace colony::actors
